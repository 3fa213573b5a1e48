import { EXIT } from "../cli/exit.js";
import type { AccountReport } from "../model/report.js";

/** The exit status a run earns (README "Exit status"): failure, then guard, then drift/conflict. */
export function exitCodeFor(report: AccountReport): number {
  if (report.failure !== undefined) return EXIT.failure;
  const f = report.folders;
  if (f.some((x) => x.errors.length > 0)) return EXIT.failure;
  if (f.some((x) => x.stops.length > 0)) return EXIT.guard;
  if (f.some((x) => x.drift.length > 0 || x.conflicts.length > 0)) return EXIT.drift;
  return EXIT.ok;
}
