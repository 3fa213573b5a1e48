import { ConfigError, loadConfig } from "../../config/config.js";
import { EXIT } from "../exit.js";
import { type CliContext, configOption, type GlobalOptions, type RegisterCommand } from "./context.js";

export const registerConfigCheck: RegisterCommand = (cli, ctx: CliContext) =>
  cli
    .command("config check", "Load and validate the config file, then exit")
    .example("  $ tandem config check --config ~/.config/tandem/config.toml")
    .action(async (options: GlobalOptions): Promise<number> => {
      try {
        const config = await loadConfig({ configPath: configOption(options), env: ctx.env });
        const names = config.accounts.map((a) => a.name);
        const count = `${names.length} account${names.length === 1 ? "" : "s"}`;
        ctx.out(`config OK: ${config.path} (${count}: ${names.join(", ")})\n`);
        return EXIT.ok;
      } catch (err) {
        if (err instanceof ConfigError) {
          ctx.err(`${err.message}\n`);
          return EXIT.usage;
        }
        throw err;
      }
    });
