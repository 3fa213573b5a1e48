import { openStore } from "../../drivers/open-store.js";
import { runAccount } from "../../engine/sync-account.js";
import type { AccountReport } from "../../model/report.js";
import { type CliContext, configOption, type RegisterCommand } from "./context.js";
import { combineExit, selectAccounts, summarize } from "./run-accounts.js";

export const registerVerify: RegisterCommand = (cli, ctx: CliContext) =>
  cli
    .command(
      "verify [...accounts]",
      "List both sides in full and report every difference from the states (writes nothing)",
    )
    .option("--deep", "Also compare message contents with the recorded digests")
    .option("--json", "Print one JSON document on stdout")
    .action(
      async (
        names: string[],
        options: { config?: string; deep?: boolean; json?: boolean },
      ): Promise<number> => {
        const picked = await selectAccounts(ctx, configOption(options), names);
        if ("exit" in picked) return picked.exit;
        const reports: AccountReport[] = [];
        for (const account of picked.accounts) {
          const report = await runAccount(account, {
            dryRun: false,
            verifyOnly: true,
            deep: options.deep === true,
            force: false,
            resync: false,
            now: Date.now(),
            openStore: (side) =>
              openStore(account[side], { dryRun: true, onWarning: (m) => ctx.err(`tandem: ${m}\n`) }),
            log: () => {},
          });
          reports.push(report);
          if (!options.json) ctx.out(summarize(report, true));
        }
        const exit = combineExit(reports.map((r) => r.exitCode));
        if (options.json) ctx.out(`${JSON.stringify({ exitCode: exit, accounts: reports }, null, 2)}\n`);
        return exit;
      },
    );
