import { join } from "node:path";
import { SideState, StateError } from "../../state/side-state.js";
import { readStatus } from "../../state/status-file.js";
import { EXIT } from "../exit.js";
import { type CliContext, configOption, type RegisterCommand } from "./context.js";
import { selectAccounts } from "./run-accounts.js";

export const registerStatus: RegisterCommand = (cli, ctx: CliContext) =>
  cli
    .command(
      "status [...accounts]",
      "Show what tandem knows of each account: last run, folders, messages (no network)",
    )
    .option("--json", "Print one JSON document on stdout")
    .action(async (names: string[], options: { config?: string; json?: boolean }): Promise<number> => {
      const picked = await selectAccounts(ctx, configOption(options), names);
      if ("exit" in picked) return picked.exit;
      const out = [];
      let exit: number = EXIT.ok;
      for (const account of picked.accounts) {
        const dir = join(account.stateDir, account.name);
        const last = readStatus(dir);
        const counts: Record<string, { folders: number; messages: number }> = {};
        try {
          for (const side of ["left", "right"] as const) {
            const st = await SideState.open(dir, side, { readOnly: true });
            try {
              counts[side] = { folders: st.folders().length, messages: st.count() };
            } finally {
              st.close();
            }
          }
        } catch (err) {
          // A damaged state file is reported, not a crash (SYNC-MODEL.md "What is written where").
          if (!(err instanceof StateError)) throw err;
          ctx.err(`tandem: ${account.name}: ${err.message}\n`);
          exit = EXIT.failure;
          continue;
        }
        out.push({
          account: account.name,
          stateDir: dir,
          lastRun: last?.lastRun ?? null,
          lastExitCode: last?.report.exitCode ?? null,
          left: counts.left,
          right: counts.right,
        });
      }
      if (options.json) {
        ctx.out(`${JSON.stringify({ accounts: out }, null, 2)}\n`);
      } else {
        for (const a of out) {
          ctx.out(
            `${a.account}: ${a.lastRun ? `last run ${a.lastRun}, exit ${a.lastExitCode}` : "never synced"}; ` +
              `left ${a.left?.messages} messages in ${a.left?.folders} folders, right ${a.right?.messages} in ${a.right?.folders}\n`,
          );
        }
      }
      return exit;
    });
