import type { ConflictPolicy } from "../../config/config.js";
import { openStore } from "../../drivers/open-store.js";
import { runAccount } from "../../engine/sync-account.js";
import type { AccountReport } from "../../model/report.js";
import { EXIT } from "../exit.js";
import { type CliContext, configOption, type RegisterCommand } from "./context.js";
import { combineExit, progressLine, selectAccounts, summarize, terminalAsk } from "./run-accounts.js";

const POLICIES: readonly ConflictPolicy[] = ["keep", "left", "right", "fail", "ask"];

interface SyncOptions {
  config?: string;
  dryRun?: boolean;
  maxage?: unknown;
  folder?: string | string[];
  json?: boolean;
  conflict?: string;
  force?: boolean;
  resync?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export const registerSync: RegisterCommand = (cli, ctx: CliContext) =>
  cli
    .command("sync [...accounts]", "Synchronize accounts both ways, then verify that both sides agree")
    .option("--dry-run", "Show what would be done; write nothing")
    .option("--maxage <days>", "Only messages that arrived in the last DAYS days")
    .option("--folder <name>", "Only this folder (repeatable)")
    .option("--conflict <policy>", "Settle conflicts: keep | left | right | fail | ask")
    .option("--force", "Go on past a safety guard")
    .option("--resync", "Forget the state of the selected folders and re-pair messages by content")
    .option("--json", "Print one JSON document on stdout")
    .option("--quiet", "No progress line, only problems")
    .option("--verbose", "More detail, e.g. what the pre-check mended")
    .example("  $ tandem sync work --dry-run")
    .action(async (names: string[], options: SyncOptions): Promise<number> => {
      const maxage = options.maxage === undefined ? undefined : Number(options.maxage);
      if (maxage !== undefined && !(Number.isInteger(maxage) && maxage > 0)) {
        ctx.err(`tandem: --maxage expects a whole number of days, got "${String(options.maxage)}"\n`);
        return EXIT.usage;
      }
      if (options.conflict !== undefined && !POLICIES.includes(options.conflict as ConflictPolicy)) {
        ctx.err(`tandem: --conflict expects one of ${POLICIES.join(", ")}, got "${options.conflict}"\n`);
        return EXIT.usage;
      }
      const picked = await selectAccounts(ctx, configOption(options), names);
      if ("exit" in picked) return picked.exit;
      const folders = options.folder === undefined ? undefined : [options.folder].flat().map(String);
      const reports: AccountReport[] = [];
      for (const account of picked.accounts) {
        const report = await runAccount(account, {
          dryRun: options.dryRun === true,
          force: options.force === true,
          resync: options.resync === true,
          folders,
          maxage,
          policy: options.conflict as ConflictPolicy | undefined,
          now: Date.now(),
          openStore: (side) =>
            openStore(account[side], {
              dryRun: options.dryRun === true,
              onWarning: (msg) => {
                if (!options.quiet) ctx.err(`tandem: ${account.name} ${side}: ${msg}\n`);
              },
            }),
          ask: terminalAsk(ctx),
          log: (msg) => {
            if (options.verbose) ctx.err(`${msg}\n`);
          },
          progress: progressLine(ctx, options.quiet === true || options.json === true),
        });
        reports.push(report);
        if (!options.json) {
          const text = summarize(report, options.verbose === true);
          if (report.exitCode === EXIT.ok) {
            if (!options.quiet) ctx.out(text);
          } else ctx.err(text);
        }
      }
      const exit = combineExit(reports.map((r) => r.exitCode));
      if (options.json) ctx.out(`${JSON.stringify({ exitCode: exit, accounts: reports }, null, 2)}\n`);
      return exit;
    });
