// Small fs helpers with the driver's durability and privacy rules: files 0600, directories 0700,
// and a directory is fsynced after every entry it gains or loses.
import { mkdir, open, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { isErrno } from "./errors.js";

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/** Makes a rename, create or unlink inside `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems refuse fsync on directories; the entry is then as durable as they allow.
    if (!isErrno(err, "EINVAL", "ENOTSUP", "EBADF")) throw err;
  } finally {
    await fh.close();
  }
}

/** Creates `dir` (and parents, 0700) if missing; fsyncs the parent of each directory it created. */
export async function ensureDir(dir: string): Promise<boolean> {
  const first = await mkdir(dir, { recursive: true, mode: DIR_MODE });
  if (first === undefined) return false;
  // Every directory from `first` down to `dir` is new: make each entry durable in its parent.
  let d = dir;
  for (;;) {
    await fsyncDir(dirname(d));
    if (d === first || dirname(d) === d) break;
    d = dirname(d);
  }
  return true;
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    if (isErrno(err, "ENOENT", "ENOTDIR")) return false;
    throw err;
  }
}
