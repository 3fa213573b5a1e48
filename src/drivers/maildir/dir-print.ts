// The print (model/fingerprint.ts) of a Maildir folder's listFlags() from its directory entries:
// one loop shared by MaildirFolder.printFlags() and the print worker (print-worker.ts), so that
// both print exactly alike.
import type { Dirent } from "node:fs";
import { readdirSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ListingPrint } from "../../model/fingerprint.js";
import type { Flag } from "../../model/types.js";
import { decodeLetters, INFO_SEPARATOR, type KeywordLetters } from "./filename.js";
import { KEYWORDS_FILE, KeywordTable } from "./keywords.js";

/**
 * Decodes info letters once per distinct set (a folder has few): the flag arrays it hands out are
 * shared between messages, so whoever receives one must not change it (nothing does).
 */
export function letterCache(keywords: KeywordLetters): (letters: string) => Flag[] {
  const decoded = new Map<string, Flag[]>();
  return (letters) => {
    let flags = decoded.get(letters);
    if (flags === undefined) {
      flags = decodeLetters(letters, keywords).flags;
      decoded.set(letters, flags);
    }
    return flags;
  };
}

/**
 * Adds the messages of one directory read (cur/ or new/) to `print`: a name's key and the flags
 * of its info letters, dot files skipped. False when an entry is not a plain file: listFlags()
 * looks at such with a stat, and a message file replaced by a directory of its name must not
 * print as that message. A key found in both cur/ and new/ is added twice, as no listFlags()
 * lists it: such a print never matches a proof.
 */
export function printEntries(
  print: ListingPrint,
  entries: readonly Dirent[],
  flagsOf: (letters: string) => Flag[],
): boolean {
  for (const dirent of entries) {
    const name = dirent.name;
    if (name.charCodeAt(0) === 46 /* . */) continue;
    if (!dirent.isFile()) return false;
    // parseFileName's split, without slicing out the key: the print reads it in place.
    const at = name.indexOf(INFO_SEPARATOR);
    print.key(name, at < 0 ? name.length : at);
    print.flags(flagsOf(at < 0 ? "" : name.slice(at + INFO_SEPARATOR.length)));
  }
  return true;
}

type Print = { count: number; fingerprint: string };

/**
 * printFlags() of the folder at `dir`, read synchronously (for the print worker, which has nothing
 * else to do). Undefined where this way cannot tell, and wherever reading fails: the caller then
 * opens the folder and prints it the ordinary way, which reports the failure as it should.
 */
export function printDirSync(dir: string): Print | undefined {
  try {
    let keywords: string;
    try {
      keywords = readFileSync(join(dir, KEYWORDS_FILE), "utf8");
    } catch (err) {
      keywords = noFile(err);
    }
    const subs = ["cur", "new"].map((sub) => readdirSync(join(dir, sub), { withFileTypes: true }));
    return printRead(keywords, subs);
  } catch {
    return undefined;
  }
}

/** printDirSync(), reading without blocking (the main thread's share of a batch: print-pool.ts). */
export async function printDir(dir: string): Promise<Print | undefined> {
  try {
    const keywords = await readFile(join(dir, KEYWORDS_FILE), "utf8").catch(noFile);
    const subs = [];
    for (const sub of ["cur", "new"]) subs.push(await readdir(join(dir, sub), { withFileTypes: true }));
    return printRead(keywords, subs);
  } catch {
    return undefined;
  }
}

/** No keywords file reads as an empty one, as KeywordFile.load() has it. */
function noFile(err: unknown): string {
  if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  return "";
}

/** The print of cur/ and new/ as read, with the keywords file's text. */
function printRead(keywords: string, subs: readonly Dirent[][]): Print | undefined {
  const print = new ListingPrint();
  const flagsOf = letterCache(KeywordTable.parse(keywords));
  for (const entries of subs) if (!printEntries(print, entries, flagsOf)) return undefined;
  return { count: print.count, fingerprint: print.digest() };
}
