import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { AccountReport } from "../model/report.js";

/** The last run's summary, for `tandem status`. Written atomically, private to the owner. */
export interface StatusFile {
  lastRun: string;
  report: AccountReport;
}

/** Best effort: the status is a summary for `tandem status`, never worth failing a run for. */
export function writeStatus(dir: string, status: StatusFile): void {
  try {
    writeStatusFile(dir, status);
  } catch {
    // Disk full or similar: the states were saved; the summary just stays at the last run.
  }
}

function writeStatusFile(dir: string, status: StatusFile): void {
  const file = join(dir, "status.json");
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, `${JSON.stringify(status, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export function readStatus(dir: string): StatusFile | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "status.json"), "utf8")) as StatusFile;
  } catch {
    return undefined;
  }
}
