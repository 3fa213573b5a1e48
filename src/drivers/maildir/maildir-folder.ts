// One Maildir folder: a directory with tmp/, new/ and cur/.
//
// Invariants:
// - A message's key is its file's unique base name (before `:2,`); moving it new/ → cur/ or changing
//   its flags renames the file but keeps the key.
// - Mail is bytes: files are written and read exactly as given, never parsed beyond the header end.
// - A write resolves only once durable: the file is fsynced before its rename into cur/, and the
//   directory is fsynced after every rename or unlink.
// - Other programs (mutt, notmuch, Dovecot) may rename files at any time. Every lookup by key that
//   misses (ENOENT) rescans the folder once before giving up.

import {
  closeSync,
  type Dirent,
  fsync,
  futimesSync,
  lstatSync,
  open as openCb,
  renameSync,
  type Stats,
  statSync,
  writeSync,
} from "node:fs";
import { type FileHandle, open, readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ListingPrint } from "../../model/fingerprint.js";
import type { Flag, MessageMeta } from "../../model/types.js";
import {
  type AppendInput,
  type ChangeListing,
  DriverError,
  type FlagChange,
  type Folder,
  type FolderMarker,
  type KeyFlags,
  type ListOptions,
} from "../driver.js";
import { letterCache, letterTexts, printEntries } from "./dir-print.js";
import { errnoOf, fsError, isErrno } from "./errors.js";
import { encodeFlags, formatFileName, newBaseName, parseFileName, sortLetters } from "./filename.js";
import { MAILDIR_SUBDIRS } from "./folders.js";
import { ensureDir, FILE_MODE, fsyncDir } from "./fsutil.js";
import { KeywordFile } from "./keywords.js";
import type { KeptPrinter } from "./print-pool.js";

/** What a folder needs from its store. */
export interface MaildirContext {
  readonly label: string;
  readonly warn: (msg: string) => void;
  /** Throws the store-scoped DriverError once the store is closed. */
  checkOpen(): void;
  /** A print worker the store kept from its print batch, if any (printFlags()). */
  printer?(): KeptPrinter | undefined;
}

type Sub = "cur" | "new";
interface Entry {
  sub: Sub;
  name: string;
  /** More files with the same key (a copy left in new/, a crashed rename): one message, removed together. */
  others?: Entry[];
  /** Not a regular file by its directory entry (a directory, a symbolic link, an unknown type). */
  odd?: true;
}

const HEADER_CAP = 256 * 1024;
const HEADER_CHUNK = 16 * 1024;
const READ_CHUNK = 64 * 1024;

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Offset just past the first empty line (LF LF, LF CR LF, or one at the very start), or -1. */
export function headerEnd(buf: Uint8Array, from = 0): number {
  if (from === 0) {
    if (buf[0] === 0x0a) return 1;
    if (buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  }
  for (let i = Math.max(0, from); i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

function isKeywordFlag(flag: string): boolean {
  return !flag.startsWith("\\");
}

/** The entries of cur/ or new/; a directory that cannot be read fails loudly (never reads as empty). */
async function readSubdir(path: string): Promise<Dirent[]> {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch (err) {
    // An empty listing would read as "all gone".
    throw fsError(err, { action: "list directory", path, scope: "folder" });
  }
}

/** Reads cur/ and new/ of `dir` into a key index. A key found in both is taken from cur/. */
async function scanMaildir(dir: string, warn: (msg: string) => void): Promise<Map<string, Entry>> {
  const index = new Map<string, Entry>();
  for (const sub of ["cur", "new"] as const) {
    const path = join(dir, sub);
    const names = await readSubdir(path);
    // No sort of the whole directory: only the rare key found twice needs an order, and there the
    // smaller name wins, whatever order readdir gave (cur/ is read first and always wins over new/).
    for (const dirent of names) {
      const name = dirent.name;
      if (name.charCodeAt(0) === 46 /* . */) continue;
      const { key } = parseFileName(name);
      const seen = index.get(key);
      if (seen === undefined) {
        // The entry's type comes with the directory read: no stat. Only listFlags() looks at it.
        index.set(key, dirent.isFile() ? { sub, name } : { sub, name, odd: true });
        continue;
      }
      let kept = seen;
      let dropped: Entry = { sub, name };
      if (seen.sub === sub && compareKeys(name, seen.name) < 0) {
        kept = { sub, name, others: seen.others, ...(dirent.isFile() ? {} : { odd: true as const }) };
        dropped = { sub: seen.sub, name: seen.name };
        index.set(key, kept);
      }
      (kept.others ??= []).push(dropped);
      if (kept.sub === dropped.sub) {
        warn(
          `Ignoring message file "${join(path, dropped.name)}": "${kept.name}" in the same directory has the same key`,
        );
      }
    }
  }
  return index;
}

/** Every Maildir folder's identity: its keys (file names) never all change at once. */
export const MAILDIR_IDENTITY = "maildir";

type Found<T> = { ok: true; value: T } | { ok: false };

const fsyncAsync = promisify(fsync);
const openAsync = promisify(openCb);

export class MaildirFolder implements Folder {
  readonly name: string;
  readonly identity = MAILDIR_IDENTITY;
  readonly #dir: string;
  readonly #ctx: MaildirContext;
  readonly #keywords: KeywordFile;
  /**
   * key → where the file was last seen. Read by every listing (not at open: the first listing
   * would read the directories again anyway), kept up to date by our own writes, and read again
   * whenever a key is not where it was.
   */
  #index = new Map<string, Entry>();
  /** The index holds every file as of a whole read of cur/ and new/ (else only our own writes). */
  #complete = false;
  /** The flags the caller's state gives keys it is about to write (expect()): a first guess at a name. */
  #expected = new Map<string, readonly Flag[]>();

  private constructor(ctx: MaildirContext, name: string, dir: string, keywords: KeywordFile) {
    this.#ctx = ctx;
    this.name = name;
    this.#dir = dir;
    this.#keywords = keywords;
  }

  /** The count as of the last listing and our own writes since. */
  get marker(): FolderMarker {
    return this.#complete ? { count: this.#index.size } : {};
  }

  expect(known: ReadonlyMap<string, readonly Flag[]>): void {
    for (const [key, flags] of known) this.#expected.set(key, flags);
  }

  /**
   * Opens the folder at `dir` (which must already be a Maildir), creating missing cur/, new/, tmp/
   * — unless it is opened only to be listed (`lookOnly`): a listing needs none of that.
   */
  static async open(
    ctx: MaildirContext,
    name: string,
    dir: string,
    lookOnly = false,
  ): Promise<MaildirFolder> {
    const keywords = new KeywordFile(dir);
    if (lookOnly) return new MaildirFolder(ctx, name, dir, keywords);
    for (const sub of MAILDIR_SUBDIRS) {
      const path = join(dir, sub);
      try {
        await ensureDir(path);
      } catch (err) {
        throw fsError(err, { action: "create directory", path, scope: "folder", writing: true });
      }
    }
    await keywords.load();
    return new MaildirFolder(ctx, name, dir, keywords);
  }

  #path(e: Entry): string {
    return join(this.#dir, e.sub, e.name);
  }

  async #rescan(): Promise<Map<string, Entry>> {
    this.#index = await scanMaildir(this.#dir, this.#ctx.warn);
    this.#complete = true;
    return this.#index;
  }

  /**
   * Where `key`'s file is by the name its expected flags make (cur/, or new/ without flags), found
   * by one stat instead of a read of the whole folder (thousands of names) for the first key a run
   * writes in a folder it did not list. Undefined when there is no such plain file: the caller
   * then reads the folder. A copy of the same key elsewhere is not looked for: the run's
   * verification reads the folder afterwards, and such a file would show there as a difference.
   */
  #guess(key: string): Entry | undefined {
    const flags = this.#complete ? undefined : this.#expected.get(key);
    if (flags === undefined) return undefined;
    const { letters, dropped } = encodeFlags(flags, this.#keywords.table);
    if (dropped.length > 0) return undefined;
    const sorted = sortLetters(letters);
    const candidates: Entry[] = [{ sub: "cur", name: formatFileName(key, sorted) }];
    if (sorted === "") candidates.push({ sub: "new", name: key });
    for (const e of candidates) {
      try {
        // Synchronous: a few microseconds, where a thread-pool round trip costs ten times that.
        if (lstatSync(this.#path(e)).isFile()) return e;
      } catch {
        // not there (or not readable): the next candidate, then the folder's read
      }
    }
    return undefined;
  }

  /**
   * Runs `op` on the file of `key`, looking the key up again once if the file moved away.
   * `{ ok: false }` when the message does not exist (any more). Other fs errors are mapped.
   */
  async #onKey<T>(
    key: string,
    what: { action: string; writing: boolean },
    op: (e: Entry) => Promise<T>,
  ): Promise<Found<T>> {
    const entry = this.#index.get(key) ?? this.#guess(key) ?? (await this.#rescan()).get(key);
    if (entry === undefined) return { ok: false };
    let used = entry;
    try {
      // A mail client may rename the file (flags, new/ → cur/) at any moment, even several times
      // while we look: follow the key a few times before calling it gone.
      for (let attempt = 0; ; attempt++) {
        try {
          return { ok: true, value: await op(used) };
        } catch (err) {
          if (!isErrno(err, "ENOENT") || attempt >= 8) throw err;
          const again = (await this.#rescan()).get(key);
          if (again === undefined) return { ok: false };
          // Even the same name again is worth another try: the client may have renamed it back.
          used = again;
        }
      }
    } catch (err) {
      throw fsError(err, {
        action: what.action,
        path: this.#path(used),
        scope: "message",
        writing: what.writing,
      });
    }
  }

  #missing(key: string): DriverError {
    return new DriverError(
      `Cannot find message "${key}" in folder "${this.name}" (${this.#dir}): it does not exist`,
      {
        scope: "message",
        code: "ENOENT",
      },
    );
  }

  async *list(opts: ListOptions = {}): AsyncGenerator<MessageMeta> {
    this.#ctx.checkOpen();
    const keywords = await this.#keywords.load();
    // Plain sort(): keys are strings, and its code-unit order is compareKeys' order.
    const keys = [...(await this.#rescan()).keys()].sort();
    const skipStat = opts.minDate === undefined ? opts.known : undefined;
    const flagsOf = letterCache(keywords);
    for (const key of keys) {
      this.#ctx.checkOpen();
      if (skipStat?.has(key)) {
        // Known to the caller: its size and date are in the caller's state; only flags are needed.
        const entry = this.#index.get(key);
        if (entry === undefined) continue;
        yield { key, flags: flagsOf(parseFileName(entry.name).letters), size: Number.NaN, date: Number.NaN };
        continue;
      }
      const found = await this.#statForListing(key);
      if (found === undefined) continue;
      const date = Math.round(found.st.mtimeMs);
      if (opts.minDate !== undefined && date < opts.minDate) continue;
      yield { key, flags: flagsOf(parseFileName(found.entry.name).letters), size: found.st.size, date };
    }
  }

  /**
   * Driver contract (listDiff): one read of cur/ and new/; a known key's flags are compared as
   * text with the caller's, so only the new files are stat'ed and only the differing ones become
   * entries, as list({ known }) gives them.
   */
  async listDiff(known: ReadonlyMap<string, string>): Promise<ChangeListing> {
    this.#ctx.checkOpen();
    const flagsOf = letterCache(await this.#keywords.load());
    // The flag arrays are shared per letter set: their text is made once per set.
    const texts = new Map<Flag[], string>();
    const changed: MessageMeta[] = [];
    let seen = 0;
    const index = await this.#rescan();
    for (const key of [...index.keys()].sort()) {
      this.#ctx.checkOpen();
      const was = known.get(key);
      if (was !== undefined) {
        seen++;
        const entry = index.get(key)!;
        const flags = flagsOf(parseFileName(entry.name).letters);
        let text = texts.get(flags);
        if (text === undefined) {
          text = flags.join(" ");
          texts.set(flags, text);
        }
        if (text !== was) changed.push({ key, flags, size: Number.NaN, date: Number.NaN });
        continue;
      }
      const found = await this.#statForListing(key);
      if (found === undefined) continue;
      const flags = flagsOf(parseFileName(found.entry.name).letters);
      changed.push({ key, flags, size: found.st.size, date: Math.round(found.st.mtimeMs) });
    }
    const vanished: string[] = [];
    if (seen < known.size) for (const key of known.keys()) if (!index.has(key)) vanished.push(key);
    return { changed, vanished };
  }

  /** Keys and flags from a fresh read of cur/ and new/: the file names say it all, nothing is stat'ed. */
  async listFlags(): Promise<KeyFlags[]> {
    this.#ctx.checkOpen();
    const keywords = await this.#keywords.load();
    const out: KeyFlags[] = [];
    const flagsOf = letterCache(keywords);
    for (const [key, entry] of await this.#rescan()) {
      // As list() would: only what is (or links to) a regular file is a message.
      if (entry.odd && !isRegularFile(this.#path(entry))) continue;
      out.push({ key, flags: flagsOf(parseFileName(entry.name).letters) });
    }
    return out;
  }

  /**
   * listFlags()' print from the directory entries alone: no index, no entry objects. Undefined when
   * an entry is not a plain file (listFlags() looks at such with a stat): a message file replaced
   * by a directory of its name must not print as that message. A key found twice (in cur/ and
   * new/) is printed twice, as no listFlags() lists it: such a print never matches a proof.
   */
  async printFlags(): Promise<{ count: number; fingerprint: string } | undefined> {
    this.#ctx.checkOpen();
    // On the store's kept print worker where there is one: the same loop, off the main thread
    // (server-change runs at 100,000 messages print each folder they wrote once more).
    const kept = await this.#ctx.printer?.()?.print(this.#dir);
    if (kept) return kept;
    const flagsOf = letterTexts(await this.#keywords.load());
    const print = new ListingPrint();
    for (const sub of ["cur", "new"] as const) {
      if (!printEntries(print, await readSubdir(join(this.#dir, sub)), flagsOf)) return undefined;
    }
    return { count: print.count, fingerprint: print.digest() };
  }

  /** The stat of `key`'s file, or undefined (with a warning when it exists but cannot be used). */
  async #statForListing(key: string): Promise<{ entry: Entry; st: Stats } | undefined> {
    let entry = this.#index.get(key);
    if (entry === undefined) return undefined;
    let st: Stats;
    // Synchronous stat: for a listing of many files it costs a few microseconds each, where the
    // thread-pool round trip of an async stat costs ten times that.
    try {
      st = statSync(this.#path(entry));
    } catch (err) {
      if (!isErrno(err, "ENOENT")) return this.#skip(this.#path(entry), err);
      // Renamed (or removed) by another program between readdir and stat: look once more.
      const again = (await this.#rescan()).get(key);
      if (again === undefined) return undefined;
      const movedAway = again.sub !== entry.sub || again.name !== entry.name;
      entry = again;
      try {
        st = statSync(this.#path(entry));
      } catch (err2) {
        if (isErrno(err2, "ENOENT") && movedAway) return undefined;
        // Still there under the same name, yet not stat-able: e.g. a dangling symbolic link.
        return this.#skip(this.#path(entry), err2);
      }
    }
    if (!st.isFile()) {
      this.#ctx.warn(`Skipping message file "${this.#path(entry)}": it is not a regular file`);
      return undefined;
    }
    return { entry, st };
  }

  #skip(path: string, err: unknown): undefined {
    const code = errnoOf(err) ?? (err instanceof Error ? err.message : String(err));
    this.#ctx.warn(`Skipping message file "${path}": it cannot be read (${code})`);
    return undefined;
  }

  async #openMessage(key: string): Promise<{ fh: FileHandle; path: string }> {
    this.#ctx.checkOpen();
    const r = await this.#onKey(key, { action: "open message file", writing: false }, async (e) => {
      const path = this.#path(e);
      return { fh: await open(path, "r"), path };
    });
    if (!r.ok) throw this.#missing(key);
    return r.value;
  }

  async *read(key: string): AsyncGenerator<Uint8Array> {
    const { fh, path } = await this.#openMessage(key);
    try {
      for await (const chunk of fh.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false })) {
        this.#ctx.checkOpen();
        yield chunk as Buffer;
      }
    } catch (err) {
      throw fsError(err, { action: "read message file", path, scope: "message" });
    } finally {
      await fh.close().catch(() => {});
    }
  }

  async readHeader(key: string): Promise<Uint8Array> {
    const { fh, path } = await this.#openMessage(key);
    try {
      let buf = Buffer.alloc(0);
      while (buf.length < HEADER_CAP) {
        const want = Math.min(HEADER_CHUNK, HEADER_CAP - buf.length);
        const chunk = Buffer.alloc(want);
        const { bytesRead } = await fh.read(chunk, 0, want, buf.length);
        if (bytesRead === 0) break;
        const from = Math.max(0, buf.length - 2);
        buf = Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
        const end = headerEnd(buf, from);
        if (end >= 0) return new Uint8Array(buf.subarray(0, end));
      }
      return new Uint8Array(buf);
    } catch (err) {
      throw fsError(err, { action: "read message file", path, scope: "message" });
    } finally {
      await fh.close().catch(() => {});
    }
  }

  #unsynced = false;

  /** Makes the renames of appended messages durable (fsync of cur/), once for all since the last call. */
  async flush(): Promise<void> {
    if (!this.#unsynced) return;
    this.#unsynced = false;
    const cur = join(this.#dir, "cur");
    try {
      await fsyncDir(cur);
    } catch (err) {
      this.#unsynced = true;
      throw fsError(err, { action: "sync directory", path: cur, scope: "folder", writing: true });
    }
  }

  async append(input: AppendInput): Promise<string> {
    this.#ctx.checkOpen();
    const table = await this.#keywords.ensure(input.flags.filter(isKeywordFlag));
    const { letters, dropped } = encodeFlags(input.flags, table);
    if (dropped.length > 0) {
      this.#ctx.warn(
        `Dropping flags ${dropped.join(" ")} on a message appended to folder "${this.name}": Maildir cannot keep them`,
      );
    }
    const base = newBaseName();
    const tmpPath = join(this.#dir, "tmp", base);
    const writeCtx = { action: "write message file", path: tmpPath, scope: "folder" as const, writing: true };
    // The open and the fsync go to the thread pool: the fsync so that many appends in flight share
    // the disk's commits; the open because creating the inode is the file system's costliest step
    // on the main thread (1.7 s of a 5 s first sync of 10,000 messages here, `--cpu-prof`), and
    // done there it overlaps the main thread's work (first syncs 6% faster, 10 alternating runs).
    // Writes to the page cache stay synchronous (microseconds each); so do futimes and rename (an
    // asynchronous rename measured no faster).
    let fd: number;
    try {
      fd = await openAsync(tmpPath, "wx", FILE_MODE);
    } catch (err) {
      throw fsError(err, writeCtx);
    }
    let size = 0;
    let closed = false;
    try {
      let writing = false;
      try {
        for await (const chunk of input.body) {
          this.#ctx.checkOpen();
          writing = true;
          for (let off = 0; off < chunk.byteLength; )
            off += writeSync(fd, chunk, off, chunk.byteLength - off);
          size += chunk.byteLength;
          writing = false;
        }
        writing = true;
        if (Number.isFinite(input.date)) futimesSync(fd, input.date / 1000, input.date / 1000);
        await fsyncAsync(fd);
      } catch (err) {
        if (writing || err instanceof DriverError) throw fsError(err, writeCtx);
        throw new DriverError(
          `Cannot append to folder "${this.name}": reading the message failed: ${String(err)}`,
          {
            scope: "message",
            code: "EBODY",
            cause: err,
          },
        );
      } finally {
        closed = true;
        try {
          closeSync(fd);
        } catch {
          // Already reported through the write or fsync that failed.
        }
      }
      const key = `${base},S=${size}`;
      const name = formatFileName(key, letters);
      const finalPath = join(this.#dir, "cur", name);
      try {
        renameSync(tmpPath, finalPath);
      } catch (err) {
        throw fsError(err, { ...writeCtx, action: "move message file into cur/", path: finalPath });
      }
      this.#index.set(key, { sub: "cur", name });
      // The rename becomes durable at the next flush(): one directory fsync per batch, not per
      // message. The engine flushes before it records the batch in its state.
      this.#unsynced = true;
      return key;
    } catch (err) {
      if (!closed) closeSync(fd);
      await unlink(tmpPath).catch(() => {});
      throw err;
    }
  }

  async setFlags(keys: string[], add: string[], remove: string[]): Promise<void> {
    await this.setFlagsMany([{ keys, add, remove }]);
  }

  /**
   * Every change's renames, then one fsync of each directory touched: a folder's few distinct
   * flag changes cost one directory fsync, not one each.
   */
  async setFlagsMany(changes: ReadonlyArray<FlagChange>): Promise<void> {
    this.#ctx.checkOpen();
    const work = changes.filter((c) => c.keys.length > 0 && (c.add.length > 0 || c.remove.length > 0));
    if (work.length === 0) return;
    await this.#keywords.load();
    const table = await this.#keywords.ensure(work.flatMap((c) => c.add.filter(isKeywordFlag)));
    const plans = work.map((c) => {
      const adding = encodeFlags(c.add, table);
      if (adding.dropped.length > 0) {
        this.#ctx.warn(
          `Dropping flags ${adding.dropped.join(" ")} in folder "${this.name}": Maildir cannot keep them`,
        );
      }
      return { keys: c.keys, adding: adding.letters, removing: encodeFlags(c.remove, table).letters };
    });
    const touched = new Set<Sub>();
    await this.#durably(touched, async () => {
      for (const { keys, adding, removing } of plans)
        for (const key of keys) await this.#reflag(key, adding, removing, touched);
    });
  }

  /** Renames `key`'s file to carry its letters less `removing`, plus `adding`, in cur/. */
  async #reflag(key: string, adding: string, removing: string, touched: Set<Sub>): Promise<void> {
    this.#ctx.checkOpen();
    const r = await this.#onKey(key, { action: "rename message file", writing: true }, async (e) => {
      const old = sortLetters(parseFileName(e.name).letters);
      const kept = [...old].filter((c) => !removing.includes(c)).join("");
      const next = sortLetters(kept + adding);
      if (next === old && (e.sub === "cur" || next === "")) return;
      const name = formatFileName(key, next);
      await rename(this.#path(e), join(this.#dir, "cur", name));
      touched.add(e.sub).add("cur");
      this.#index.set(key, { sub: "cur", name });
    });
    if (!r.ok) throw this.#missing(key);
  }

  async remove(keys: string[]): Promise<void> {
    this.#ctx.checkOpen();
    const touched = new Set<Sub>();
    await this.#durably(touched, async () => {
      for (const key of keys) {
        this.#ctx.checkOpen();
        // A key already gone is what the caller asked for: removing is idempotent.
        await this.#onKey(key, { action: "remove message file", writing: true }, async (e) => {
          await unlink(this.#path(e));
          touched.add(e.sub);
          for (const other of e.others ?? []) {
            try {
              await unlink(this.#path(other));
              touched.add(other.sub);
            } catch (err) {
              if (!isErrno(err, "ENOENT")) throw err;
            }
          }
        });
        this.#index.delete(key);
      }
    });
  }

  /** Runs `work`, then fsyncs every directory it touched, also when `work` failed halfway. */
  async #durably(touched: Set<Sub>, work: () => Promise<void>): Promise<void> {
    let failure: { error: unknown } | undefined;
    try {
      await work();
    } catch (error) {
      failure = { error };
    }
    for (const sub of touched) {
      const path = join(this.#dir, sub);
      try {
        await fsyncDir(path);
      } catch (err) {
        failure ??= {
          error: fsError(err, { action: "sync directory", path, scope: "folder", writing: true }),
        };
      }
    }
    if (failure) throw failure.error;
  }

  async close(): Promise<void> {}
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
