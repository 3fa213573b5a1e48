// Keywords of one folder, kept the way Dovecot keeps them: the file `dovecot-keywords` in the folder
// directory holds lines `<index> <name>`; index 0 is letter `a`, 1 is `b`, … 25 is `z`.
//
// Invariant: an index, once in the file, keeps its name (other programs' file names depend on it).
// We only ever add lines, and we rewrite the file atomically (temporary file, fsync, rename).
import { randomBytes } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { fsError, isErrno } from "./errors.js";
import type { KeywordLetters } from "./filename.js";
import { FILE_MODE, fsyncDir } from "./fsutil.js";

export const KEYWORDS_FILE = "dovecot-keywords";
export const MAX_KEYWORDS = 26;

/** An IMAP flag-keyword atom: no space, control character or any of `(){%*"\]`. */
const KEYWORD_ATOM = /^[^\s\x00-\x1f\x7f(){%*"\\\]]+$/;

export function isStorableKeyword(name: string): boolean {
  return KEYWORD_ATOM.test(name) && !name.startsWith("\\");
}

export class KeywordTable implements KeywordLetters {
  readonly #names: (string | undefined)[] = new Array(MAX_KEYWORDS).fill(undefined);

  static parse(text: string): KeywordTable {
    const table = new KeywordTable();
    for (const line of text.split("\n")) {
      const m = /^(\d+) (.+?)\r?$/.exec(line);
      if (!m) continue;
      const index = Number(m[1]);
      if (index < MAX_KEYWORDS && table.#names[index] === undefined) table.#names[index] = m[2];
    }
    return table;
  }

  format(): string {
    return this.#names.map((name, i) => (name === undefined ? "" : `${i} ${name}\n`)).join("");
  }

  nameOf(letter: string): string | undefined {
    const index = letter.charCodeAt(0) - 97;
    return letter.length === 1 && index >= 0 && index < MAX_KEYWORDS ? this.#names[index] : undefined;
  }

  /** IMAP keywords compare case-insensitively; an exact match wins. */
  letterOf(keyword: string): string | undefined {
    let index = this.#names.indexOf(keyword);
    if (index < 0) {
      const lower = keyword.toLowerCase();
      index = this.#names.findIndex((n) => n?.toLowerCase() === lower);
    }
    return index < 0 ? undefined : String.fromCharCode(97 + index);
  }

  /** Gives `keyword` the lowest free index; false when all 26 are taken or the name cannot be stored. */
  add(keyword: string): boolean {
    if (this.letterOf(keyword) !== undefined) return true;
    if (!isStorableKeyword(keyword)) return false;
    const free = this.#names.indexOf(undefined);
    if (free < 0) return false;
    this.#names[free] = keyword;
    return true;
  }
}

/** The keywords file of one folder directory, re-read whenever freshness matters. */
export class KeywordFile {
  readonly #dir: string;
  #table = new KeywordTable();

  constructor(dir: string) {
    this.#dir = dir;
  }

  get table(): KeywordTable {
    return this.#table;
  }

  get path(): string {
    return join(this.#dir, KEYWORDS_FILE);
  }

  async load(): Promise<KeywordTable> {
    try {
      this.#table = KeywordTable.parse(await readFile(this.path, "utf8"));
    } catch (err) {
      if (!isErrno(err, "ENOENT")) {
        throw fsError(err, { action: "read keywords file", path: this.path, scope: "folder" });
      }
      this.#table = new KeywordTable();
    }
    return this.#table;
  }

  /**
   * Makes sure every storable keyword of `keywords` has a letter, appending to the file if needed.
   * Returns the table to encode with. Keywords that do not fit are left out (the encoder reports them).
   */
  async ensure(keywords: readonly string[]): Promise<KeywordTable> {
    if (keywords.every((k) => this.#table.letterOf(k) !== undefined)) return this.#table;
    // Another program may have added keywords since we last looked: start from the file.
    const table = await this.load();
    let changed = false;
    for (const k of keywords) {
      if (table.letterOf(k) === undefined && table.add(k)) changed = true;
    }
    if (changed) await this.#write(table.format());
    return table;
  }

  async #write(text: string): Promise<void> {
    const tmp = join(this.#dir, `${KEYWORDS_FILE}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    const ctx = { action: "write keywords file", path: this.path, scope: "folder" as const, writing: true };
    try {
      const fh = await open(tmp, "wx", FILE_MODE);
      try {
        await fh.writeFile(text, "utf8");
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      await fsyncDir(this.#dir);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw fsError(err, ctx);
    }
  }
}
