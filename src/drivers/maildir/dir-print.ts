// The print (model/fingerprint.ts) of a Maildir folder's listFlags() from its directory entries:
// one loop shared by MaildirFolder.printFlags() and the print worker (print-worker.ts), so that
// both print exactly alike.
import type { Dirent } from "node:fs";
import { opendirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ListingPrint } from "../../model/fingerprint.js";
import type { Flag } from "../../model/types.js";
import { decodeLetters, INFO_SEPARATOR, type KeywordLetters } from "./filename.js";
import { KEYWORDS_FILE, KeywordTable } from "./keywords.js";

/** `make` of each distinct set of info letters, made once (a folder has few sets). */
function perLetters<T>(make: (letters: string) => T): (letters: string) => T {
  const made = new Map<string, T>();
  return (letters) => {
    let value = made.get(letters);
    if (value === undefined) {
      value = make(letters);
      made.set(letters, value);
    }
    return value;
  };
}

/**
 * Decodes info letters once per distinct set: the flag arrays it hands out are shared between
 * messages, so whoever receives one must not change it (nothing does).
 */
export function letterCache(keywords: KeywordLetters): (letters: string) => Flag[] {
  return perLetters((letters) => decodeLetters(letters, keywords).flags);
}

/** letterCache() for a print: ListingPrint.flagText() of each distinct set of info letters. */
export function letterTexts(keywords: KeywordLetters): (letters: string) => string {
  return perLetters((letters) => ListingPrint.flagText(decodeLetters(letters, keywords).flags));
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
  flagsOf: (letters: string) => string,
): boolean {
  for (const dirent of entries) if (!printEntry(print, dirent, flagsOf)) return false;
  return true;
}

/** One entry of printEntries(): false when it is not a plain file. */
function printEntry(print: ListingPrint, dirent: Dirent, flagsOf: (letters: string) => string): boolean {
  const name = dirent.name;
  if (name.charCodeAt(0) === 46 /* . */) return true;
  if (!dirent.isFile()) return false;
  // parseFileName's split, without slicing out the key: the print reads it in place.
  const at = name.indexOf(INFO_SEPARATOR);
  print.key(name, at < 0 ? name.length : at);
  print.flagText(flagsOf(at < 0 ? "" : name.slice(at + INFO_SEPARATOR.length)));
  return true;
}

/**
 * printEntries() of the directory at `path`, entry by entry as the file system keeps them, with
 * no array of entries. readdir() sorts every directory it reads (libuv's scandir()) and hands
 * over all entries at once: the bench's 100,000 entries took 77 ms that way and 51 ms this way,
 * on one thread. Throws what reading throws.
 */
export function printDirEntries(
  print: ListingPrint,
  path: string,
  flagsOf: (letters: string) => string,
): boolean {
  const dir = opendirSync(path, { bufferSize: 1024 });
  try {
    for (let e = dir.readSync(); e !== null; e = dir.readSync())
      if (!printEntry(print, e, flagsOf)) return false;
    return true;
  } finally {
    dir.closeSync();
  }
}

type Print = { count: number; fingerprint: string };

/**
 * printFlags() of the folder at `dir`, read synchronously: by the print worker, which has nothing
 * else to do, and by the main thread for its share of a batch (print-pool.ts), one folder per turn
 * of its event loop. Undefined where this way cannot tell, and wherever reading fails: the caller
 * then opens the folder and prints it the ordinary way, which reports the failure as it should.
 */
export function printDirSync(dir: string): Print | undefined {
  try {
    let keywords: string;
    try {
      keywords = readFileSync(join(dir, KEYWORDS_FILE), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      // No keywords file reads as an empty one, as KeywordFile.load() has it.
      keywords = "";
    }
    const print = new ListingPrint();
    const flagsOf = letterTexts(KeywordTable.parse(keywords));
    for (const sub of ["cur", "new"]) if (!printDirEntries(print, join(dir, sub), flagsOf)) return undefined;
    return { count: print.count, fingerprint: print.digest() };
  } catch {
    return undefined;
  }
}
