import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { StateError } from "./side-state.js";

/**
 * One run per account (SYNC-MODEL.md step 1). The lock is a file created exclusively, holding the
 * owner's pid. A lock whose process no longer exists was left by a killed run and is taken over.
 */
export class LockBusyError extends Error {
  constructor(
    readonly account: string,
    readonly pid: number,
  ) {
    super(
      `Cannot sync account "${account}": it is busy, another tandem run (pid ${pid}) holds its lock; try again when it has finished`,
    );
    this.name = "LockBusyError";
  }
}

export interface AccountLock {
  release(): void;
}

export function lockAccount(dir: string, account: string): AccountLock {
  const file = join(dir, "lock");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const fd = openSync(file, "wx", 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } catch (err) {
        closeSync(fd);
        rmSync(file, { force: true });
        throw err;
      }
      closeSync(fd);
      return { release: () => rmSync(file, { force: true }) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== "EEXIST") {
        throw new StateError(
          `Cannot take the lock ${file}: ${e.code ?? ""} ${e.message}`.replace("  ", " "),
          file,
        );
      }
    }
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
      throw new LockBusyError(account, pid);
    // Stale: its owner is gone. Remove it and race for it again; exclusive create decides who wins.
    rmSync(file, { force: true });
  }
  throw new LockBusyError(account, 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
