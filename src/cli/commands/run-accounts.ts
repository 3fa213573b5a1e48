import { type AccountConfig, ConfigError, loadConfig } from "../../config/config.js";
import type { Conflict, Resolution } from "../../model/plan.js";
import type { AccountReport } from "../../model/report.js";
import { EXIT } from "../exit.js";
import type { CliContext } from "./context.js";

/** Loads the config and picks the accounts named on the command line (all when none). */
export async function selectAccounts(
  ctx: CliContext,
  configPath: string | undefined,
  names: string[],
): Promise<{ accounts: AccountConfig[] } | { exit: number }> {
  try {
    const config = await loadConfig({ configPath, env: ctx.env });
    if (names.length === 0) return { accounts: config.accounts };
    const out: AccountConfig[] = [];
    for (const name of names) {
      const a = config.accounts.find((x) => x.name === name);
      if (!a) {
        ctx.err(
          `tandem: no account "${name}" in ${config.path} (accounts: ${config.accounts.map((x) => x.name).join(", ")})\n`,
        );
        return { exit: EXIT.usage };
      }
      out.push(a);
    }
    return { accounts: out };
  } catch (err) {
    if (err instanceof ConfigError) {
      ctx.err(`${err.message}\n`);
      return { exit: EXIT.usage };
    }
    throw err;
  }
}

/** The worst exit status of several accounts: failure, then guard, then drift. */
export function combineExit(codes: number[]): number {
  const rank = [EXIT.ok, EXIT.drift, EXIT.guard, EXIT.failure];
  let worst: number = EXIT.ok;
  for (const c of codes)
    if (rank.indexOf(c as (typeof rank)[number]) > rank.indexOf(worst as (typeof rank)[number])) worst = c;
  return worst;
}

/** Human summary of one account's run, one line per folder that did or found something. */
export function summarize(r: AccountReport, verbose: boolean): string {
  const lines: string[] = [];
  const verb = r.dryRun ? "would copy" : "copied";
  for (const f of r.folders) {
    const parts: string[] = [];
    const name = f.rightName === f.folder ? f.folder : `${f.folder} ↔ ${f.rightName}`;
    for (const side of ["left", "right"] as const) {
      if (f.created.includes(side)) parts.push(`created on ${side}`);
    }
    if (f.removedFolder)
      parts.push(`folder removed on ${f.removedFolder} (it was removed on the other side and was empty)`);
    if (f.copied.left || f.copied.right)
      parts.push(`${verb} ${f.copied.right} → right, ${f.copied.left} → left`);
    if (f.flagged.left || f.flagged.right)
      parts.push(`flags ${f.flagged.right} → right, ${f.flagged.left} → left`);
    if (f.removed.left || f.removed.right)
      parts.push(`removed ${f.removed.right} on right, ${f.removed.left} on left`);
    if (f.conflicts.length) parts.push(`${f.conflicts.length} conflict(s) open`);
    if (f.errors.length) parts.push(`${f.errors.length} error(s)`);
    if (f.stops.length) parts.push("stopped");
    if (f.drift.length) parts.push(`${f.drift.length} drift`);
    else if (f.verified) parts.push("verified");
    if (parts.length === 1 && parts[0] === "verified" && !verbose) continue;
    lines.push(`  ${name}: ${parts.join("; ") || "nothing to do"}`);
    for (const s of f.stops) lines.push(`    ${s.message}`);
    for (const c of f.conflicts) lines.push(`    conflict ${c.pairId}: ${c.text}`);
    for (const e of f.errors) lines.push(`    ${e}`);
    for (const d of f.drift) lines.push(`    drift on ${d.side}${d.key ? ` ${d.key}` : ""}: ${d.what}`);
    if (verbose) for (const m of f.mended) lines.push(`    mended: ${m}`);
  }
  const total = r.folders.length;
  const verified = r.folders.filter((f) => f.verified).length;
  const head = r.failure
    ? `${r.account}: failed: ${r.failure}`
    : r.dryRun
      ? `${r.account}: dry run, nothing written (${total} folder(s))`
      : `${r.account}: ${verified} of ${total} folder(s) verified`;
  const notes = r.notes.map((n) => `  note: ${n}`);
  if (verbose && r.proven)
    notes.push("  note: nothing changed since the last run (every listing matched its proof)");
  return `${[head, ...notes, ...lines].join("\n")}\n`;
}

/** Asks the user to settle a conflict on the terminal (policy `ask`). */
export function terminalAsk(
  ctx: CliContext,
): ((c: Conflict, folder: string) => Promise<Resolution>) | undefined {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  return async (c, folder) => {
    // Loaded at the first question only: most runs never ask (lazy-builtins.ts).
    const { createInterface } = await import("../../lazy-builtins.js");
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      for (;;) {
        const answer = (
          await rl.question(
            `${folder}: message ${c.changed.key} was ${c.text}.\n  [k]eep it on both sides, [r]emove it (${c.removedOn} wins), or [s]kip for now? `,
          )
        )
          .trim()
          .toLowerCase();
        if (answer === "k") return "keep";
        if (answer === "r") return c.removedOn;
        if (answer === "s") return "fail";
        ctx.err("  answer k, r or s\n");
      }
    } finally {
      rl.close();
    }
  };
}

/** A live progress line on stderr when it is a terminal. */
export function progressLine(
  ctx: CliContext,
  quiet: boolean,
): ((folder: string, done: number, total: number) => void) | undefined {
  if (quiet || !process.stderr.isTTY) return undefined;
  let started = Date.now();
  let current = "";
  return (folder, done, total) => {
    if (folder !== current) {
      current = folder;
      started = Date.now();
    }
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = Math.round(done / secs);
    ctx.err(`\r\u001b[K  ${folder}: ${done}/${total} copied, ${rate} msg/s`);
    if (done === total) ctx.err("\r\u001b[K");
  };
}
