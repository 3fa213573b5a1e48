// The Maildir file name codec.
//
// A message file is named `<key>:2,<letters>`; a file without `:2,` (typically in new/) is all key.
// The key never changes while the message lives: moving new/ → cur/ or changing flags only rewrites
// the part after `:2,`. Letters are kept sorted (ASCII order), as the Maildir convention asks.
import { randomFillSync } from "node:crypto";
import { hostname } from "node:os";
import { type Flag, normalizeFlags } from "../../model/types.js";

export const INFO_SEPARATOR = ":2,";

export interface ParsedName {
  key: string;
  /** The info letters after `:2,`, "" when there are none or no `:2,` at all. */
  letters: string;
}

export function parseFileName(name: string): ParsedName {
  const at = name.indexOf(INFO_SEPARATOR);
  if (at < 0) return { key: name, letters: "" };
  return { key: name.slice(0, at), letters: name.slice(at + INFO_SEPARATOR.length) };
}

export function formatFileName(key: string, letters: string): string {
  return `${key}${INFO_SEPARATOR}${sortLetters(letters)}`;
}

export function sortLetters(letters: string): string {
  return [...new Set(letters)].sort().join("");
}

/** System flags and their letters (the Maildir spec's six). */
export const SYSTEM_LETTERS: ReadonlyMap<Flag, string> = new Map([
  ["\\Draft", "D"],
  ["\\Flagged", "F"],
  ["$Forwarded", "P"],
  ["\\Answered", "R"],
  ["\\Seen", "S"],
  ["\\Deleted", "T"],
]);
const LETTER_FLAGS: ReadonlyMap<string, Flag> = new Map([...SYSTEM_LETTERS].map(([f, l]) => [l, f]));

/** How keywords map to the lowercase letters `a`…`z` (the folder's `dovecot-keywords`). */
export interface KeywordLetters {
  nameOf(letter: string): string | undefined;
  letterOf(keyword: string): string | undefined;
}

export interface DecodedLetters {
  /** Normalized (sorted, deduplicated). */
  flags: Flag[];
  /** Letters we cannot name (a keyword letter missing from the table, an unknown capital): kept as is on rename. */
  unknown: string;
}

export function decodeLetters(letters: string, keywords: KeywordLetters): DecodedLetters {
  const flags: Flag[] = [];
  let unknown = "";
  for (const ch of letters) {
    const flag = LETTER_FLAGS.get(ch) ?? (ch >= "a" && ch <= "z" ? keywords.nameOf(ch) : undefined);
    if (flag === undefined) unknown += ch;
    else flags.push(flag);
  }
  return { flags: normalizeFlags(flags), unknown: unknown === "" ? "" : sortLetters(unknown) };
}

export interface EncodedFlags {
  letters: string;
  /** Flags that have no letter (no keyword slot, a non-system `\` flag); the caller decides what to say. */
  dropped: Flag[];
}

/** Letters for `flags`, plus `keep` (unknown letters carried over from the old name). Sorted. */
export function encodeFlags(flags: Iterable<Flag>, keywords: KeywordLetters, keep = ""): EncodedFlags {
  let letters = keep;
  const dropped: Flag[] = [];
  for (const flag of flags) {
    const letter = SYSTEM_LETTERS.get(flag) ?? (flag.startsWith("\\") ? undefined : keywords.letterOf(flag));
    if (letter === undefined) dropped.push(flag);
    else letters += letter;
  }
  return { letters: sortLetters(letters), dropped };
}

let counter = 0;

/**
 * A fresh unique base name: `<seconds>.M<micros>P<pid>Q<counter>R<random>.<host>`.
 * Micros are zero-padded so that names from one process mostly sort in delivery order.
 * Time, process, per-process counter and 64 random bits together make a collision practically
 * impossible even across machines sharing one Maildir; the file is still created with O_EXCL.
 */
export function newBaseName(now: number = performance.timeOrigin + performance.now()): string {
  const seconds = Math.floor(now / 1000);
  const micros = Math.floor((now - seconds * 1000) * 1000);
  counter += 1;
  // Random bytes come from a pool: one call to the CSPRNG per 512 names instead of one per name.
  if (poolAt + 8 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const random = pool.toString("hex", poolAt, poolAt + 8);
  poolAt += 8;
  host ??= sanitizeHost(hostname());
  return `${seconds}.M${String(micros).padStart(6, "0")}P${process.pid}Q${counter}R${random}.${host}`;
}

const pool = Buffer.alloc(4096);
let poolAt = pool.length;
let host: string | undefined;

/**
 * The host part may hold only characters that are safe in every reader's parser:
 * `/` and `:` are escaped as the Maildir spec asks (`\057`, `\072`), as is anything else
 * outside [A-Za-z0-9._-] (each UTF-8 byte as a backslash and three octal digits).
 */
export function sanitizeHost(host: string): string {
  if (host === "") return "localhost";
  let out = "";
  for (const byte of Buffer.from(host, "utf8")) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9._-]/.test(ch) ? ch : `\\${byte.toString(8).padStart(3, "0")}`;
  }
  return out;
}
