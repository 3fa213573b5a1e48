import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Flag, Side } from "../model/types.js";
import { Journal, type JournalOp, type JournalReplay, writeAll } from "./journal.js";
import { type Database, loadSqlJs, type Statement } from "./sqlite.js";

/**
 * The last known state of one side of one account (SYNC-MODEL.md "state").
 * Invariant: the in-memory database equals snapshot + replayed journal; every write goes to both
 * (the journal is fsynced by flush()), so a run killed at any moment loses no flushed step.
 * save() folds the journal into a new snapshot whenever it recorded something (see snapshotPolicy
 * for keeping it across runs instead).
 * Bump SCHEMA_VERSION with a migration in `checkIdentity()` when the schema changes.
 * Version 2: no index on (folder, pairId) (nothing queried it; it was 30-40% of the file), and the
 * file carries a CRC-32 of itself in its header (see SUM_AT), checked at every open.
 * Version 3: a digest is kept as its 32 bytes, not as 64 hex characters (see DIGEST_IN, DIGEST_OUT).
 */
export const SCHEMA_VERSION = 3;

/**
 * A row's digest (lowercase hex in StateRow) goes into the file as the bytes it spells: 32 bytes
 * instead of 64 characters, a quarter of a row. With the smaller rows a 100,000-message state is
 * ~25% smaller, and a run that opens and saves it reads, checks and writes that much less. Text
 * that is not lowercase hex of whole bytes is kept as it is, so every value reads back unchanged.
 */
const notHexBytes = (x: string) => `(${x} GLOB '*[^0-9a-f]*' OR length(${x}) % 2 = 1)`;
/** For the insert's seventh parameter, the digest. */
const DIGEST_IN = `iif(${notHexBytes("?7")}, ?7, unhex(?7))`;
const DIGEST_OUT = "iif(typeof(digest) = 'blob', lower(hex(digest)), digest)";
const APP_ID = "tandem-state";

/**
 * Where a saved state file keeps its checksum: header bytes 72-91 are "reserved for expansion" in
 * the SQLite file format, and SQLite neither reads nor writes them. Bytes 72-75 hold SUM_MAGIC,
 * 76-79 the CRC-32 of the whole file with these 8 bytes zeroed. They are zeroed again before
 * sql.js sees the file, so SQLite only ever sees the format's zeros.
 */
const SUM_AT = 72;
/** Joins a row's text columns in readRows(). */
const SEP = "\u001f";
const SUM_MAGIC = 0x74646d01; // "tdm\x01"

/**
 * When save() writes a snapshot (see snapshotDue()). Below `floor` bytes a state is rewritten at
 * every save that recorded something: SYNC-MODEL.md step 9 asks for exactly that ("write a new
 * file, then rename"), so `floor` is infinite and every state is saved that way. Lowering it keeps
 * a big state's journal across runs until it reaches `ratio` of the snapshot — as crash-safe
 * (see writeSnapshot(); test/state/lazy-snapshots.test.ts runs the scenario table that way), about
 * 10% faster for a run with changes at 100,000 messages, but a departure from the contract's
 * wording that is not ours to make.
 * Measured at 100,000 messages (16.8 MB snapshot): a snapshot costs ~40-100 ms CPU plus the write
 * and fsync of the whole file, and a transient copy of it in memory; replaying a journal at open
 * costs ~25 ms per MB (~5 µs per op; a changed row is ~220 bytes). With per-run growth b, snapshot
 * cost S and replay cost r per byte, the cheapest journal size to snapshot at is sqrt(2·S·b/r):
 * ~0.7 MB for S = 100 ms and a run of 300 changed rows. 1/16 of the snapshot (1 MB here, ~4,700
 * changed rows) is near that, keeps the replay at open under ~30 ms, and writes the 17 MB file
 * every ~16 such runs instead of every run (with `floor` at 1 MB). Tests lower `floor` to run
 * states this way.
 */
export const snapshotPolicy = { floor: Number.POSITIVE_INFINITY, ratio: 1 / 16 };

export interface StateRow {
  folder: string;
  key: string;
  pairId: string;
  /** Agreed flags of the pair (sorted). */
  flags: Flag[];
  size: number;
  /** Arrival date of the pair, ms; the same on both sides so the maxage window treats a pair as one. */
  date: number;
  /** Hex digest of the normalized content ("" if never computed). */
  digest: string;
}

export interface FolderRow {
  name: string;
  identity: string;
  uidNext: number | null;
  highestModseq: string | null;
  count: number | null;
  /** Window start of the run that recorded the marker (0: no maxage); a wider window lists in full. */
  minDate: number;
}

/** A copy about to be made into this side; kept until its result is recorded. */
export interface IntentRow {
  folder: string;
  pairId: string;
  sourceKey: string;
  date: number;
}

export class StateError extends Error {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
    this.name = "StateError";
  }
}

export class SideState {
  private constructor(
    private readonly db: Database,
    private readonly journal: Journal,
    readonly file: string,
    readonly side: Side,
    /** Dry run: nothing is ever written to disk. */
    readonly readOnly: boolean,
  ) {}

  /** Moves a damaged state and its journal aside, so that a resync can start afresh. Returns the state's new name. */
  static moveAside(dir: string, side: Side, now: number): string {
    const file = join(dir, `${side}.db`);
    const suffix = `.damaged-${new Date(now).toISOString().replace(/[:.]/g, "-")}`;
    const journal = join(dir, `${side}.journal`);
    // The journal first: a state file without its journal is an older state, not a fresh start.
    if (existsSync(journal)) renameSync(journal, `${journal}${suffix}`);
    renameSync(file, `${file}${suffix}`);
    return `${file}${suffix}`;
  }

  /**
   * A cheap stamp of a side's state files: size, modification time (ns) and inode of `<side>.db`
   * and `<side>.journal`, "-" for a missing one. Any save that changed the state changes it (the
   * journal grows, or a snapshot replaces the file); opening or a run that recorded nothing does not.
   */
  static fileStamp(dir: string, side: Side): string {
    const part = (name: string): string => {
      try {
        const st = statSync(join(dir, name), { bigint: true });
        return `${st.size}:${st.mtimeNs}:${st.ino}`;
      } catch {
        return "-";
      }
    };
    return `${part(`${side}.db`)}/${part(`${side}.journal`)}`;
  }

  /** Opens (or creates) `<dir>/<side>.db`, replaying its journal. A damaged or foreign file is refused. */
  static async open(dir: string, side: Side, opts: { readOnly?: boolean } = {}): Promise<SideState> {
    const readOnly = opts.readOnly ?? false;
    if (!readOnly) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${side}.db`);
    const journalFile = join(dir, `${side}.journal`);
    const SQL = await loadSqlJs();
    const exists = existsSync(file);
    let db: Database | undefined;
    let image: Buffer | undefined;
    let migrated = false;
    try {
      if (exists) {
        const read = readWithSlack(file);
        image = read.image;
        const bytes = image.subarray(0, read.size);
        // A file this tandem saved is checked whole by its checksum (~5 ms at 100,000 messages);
        // only an older one, without a checksum, pays for SQLite's structural check (30-100 ms).
        const summed = checkFile(bytes, file);
        // SQLite gets the file with its zeroed slack: the header's page count says where the
        // database ends, and the slack takes the pages a run adds without a reallocation.
        db = new SQL.Database(image);
        tune(db);
        if (!summed) quickCheck(db, file);
        migrated = checkIdentity(db, file, side, readOnly);
      } else {
        const fresh = new SQL.Database();
        try {
          createSchema(fresh, side);
          // Moved into a buffer with slack like a file read at open, so that a first sync's state
          // grows in place and is saved without a copy.
          const bytes = fresh.export();
          image = Buffer.alloc(bytes.length + slackFor(bytes.length));
          image.set(bytes);
        } finally {
          fresh.close();
        }
        db = new SQL.Database(image);
        tune(db);
      }
    } catch (err) {
      db?.close();
      throw err;
    }
    const state = new SideState(db, new Journal(journalFile), file, side, readOnly);
    state.image = image;
    state.snapshotBytes = exists ? statSync(file).size : 0;
    try {
      let replay: JournalReplay;
      try {
        state.db.exec("BEGIN");
        replay = Journal.replay(journalFile, (op) => state.guard(() => state.applyOp(op)));
        state.guard(() => state.db.exec("COMMIT"));
      } catch (err) {
        if (err instanceof StateError) throw err;
        throw new StateError(
          `Journal ${journalFile} cannot be read: ${(err as Error).message}; run \`tandem sync --resync\` to move the state aside and rebuild it from both sides`,
          journalFile,
        );
      }
      state.journal.size = replay.intactBytes;
      if (readOnly) return state;
      // A torn tail was never confirmed: cut it off before anything is appended after it.
      if (replay.damaged) state.journal.cut(replay.intactBytes);
      // The journal is kept (replayed again by the next open), unless a snapshot is due anyway.
      if (migrated || !exists) state.save(true);
    } catch (err) {
      state.close();
      throw err;
    }
    return state;
  }

  /**
   * Runs a read or write of the database. sql.js loads the file whole, but SQLite only looks at a
   * page when a query needs it: damage the checks at open could not see (an older file without a
   * checksum) surfaces here, as a StateError naming the file instead of a bare SQLite error.
   */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (isDamage(err)) throw damaged(this.file, (err as Error).message);
      throw err;
    }
  }

  /**
   * The folders table as last read, until a folder is put or deleted: folder() is asked several
   * times per folder and run (a server-change run at 100,000 messages read the table ~7 ms' worth).
   */
  private folderRows: FolderRow[] | undefined;

  folders(): FolderRow[] {
    this.folderRows ??= this.guard(() => this.readFolders());
    // Copies: a caller may change what it is given.
    return this.folderRows.map((f) => ({ ...f }));
  }

  private readFolders(): FolderRow[] {
    const out: FolderRow[] = [];
    const st = this.db.prepare(
      "SELECT name, identity, uidNext, modseq, count, minDate FROM folders ORDER BY name",
    );
    while (st.step()) {
      const [name, identity, uidNext, modseq, count, minDate] = st.get() as [
        string,
        string,
        number | null,
        string | null,
        number | null,
        number,
      ];
      out.push({ name, identity, uidNext, highestModseq: modseq, count, minDate });
    }
    st.free();
    return out;
  }

  folder(name: string): FolderRow | undefined {
    this.folderRows ??= this.guard(() => this.readFolders());
    const row = this.folderRows.find((f) => f.name === name);
    return row && { ...row };
  }

  putFolder(row: FolderRow): void {
    const now = this.folder(row.name);
    if (
      now &&
      now.identity === row.identity &&
      now.uidNext === row.uidNext &&
      now.highestModseq === row.highestModseq &&
      now.count === row.count &&
      now.minDate === row.minDate
    )
      return; // unchanged: a quiet run writes nothing
    this.record({
      o: "fput",
      f: row.name,
      id: row.identity,
      un: row.uidNext,
      ms: row.highestModseq,
      n: row.count,
      md: row.minDate,
    });
  }

  /** Forgets a folder and every message row in it. */
  deleteFolder(name: string): void {
    this.dirty.add(name);
    if (this.watched.has(name)) this.watched.set(name, null);
    this.record({ o: "fdel", f: name });
  }

  /** Folders with a message row written since open (names only: a first sync writes 100,000 rows). */
  private readonly dirty = new Set<string>();
  /** Per watched folder, the keys written since the watch began (null: it cannot tell). */
  private readonly watched = new Map<string, Set<string> | null>();

  /** From now on, note which keys of `folder` are written (see keysWritten). */
  watchWrites(folder: string): void {
    this.watched.set(folder, this.dirty.has(folder) ? null : new Set());
  }

  /**
   * The keys of `folder` whose rows were written (put or deleted) since this state was opened:
   * every other row is as it was then. Null unless watchWrites() began before the folder's first
   * write, or when the whole folder was dropped.
   */
  keysWritten(folder: string): ReadonlySet<string> | null {
    return this.watched.get(folder) ?? null;
  }

  private noteWritten(folder: string, key: string): void {
    this.dirty.add(folder);
    this.watched.get(folder)?.add(key);
  }

  /** All message rows of a folder, ordered by key. */
  rows(folder: string): StateRow[] {
    return this.guard(() => this.readRows(folder, "", []));
  }

  /**
   * The keys of a folder's rows, in key order: a fifth of the cost of the rows themselves. They
   * come as one text, joined by U+001F, and are split here: one value handed over instead of one
   * per row (100,000 keys: ~22 instead of ~32 ms). A key holding U+001F itself splits into one
   * piece too many, and the folder is then read row by row.
   */
  keys(folder: string): string[] {
    return this.guard(() => {
      const st = this.db.prepare(
        // In key order: SQLite never merges an ordered subquery into an aggregate query (its
        // flattening rules), so the aggregate takes the rows as the subquery orders them.
        "SELECT count(*), group_concat(key, char(31)) FROM (SELECT key FROM messages WHERE folder = ? ORDER BY key)",
      );
      let count = 0;
      let joined: string | null = null;
      try {
        st.bind([folder]);
        if (st.step()) [count, joined] = st.get() as [number, string | null];
      } finally {
        st.free();
      }
      if (count === 0) return [];
      const keys = joined === null ? [] : joined.split(SEP);
      return keys.length === count ? keys : this.keysByRow(folder);
    });
  }

  private keysByRow(folder: string): string[] {
    return this.guard(() => {
      const out: string[] = [];
      const st = this.db.prepare("SELECT key FROM messages WHERE folder = ? ORDER BY key");
      try {
        st.bind([folder]);
        while (st.step()) out.push(st.get()[0] as string);
      } finally {
        st.free();
      }
      return out;
    });
  }

  /** Key → flags (sorted, joined by spaces) of a folder's rows: what change detection compares. */
  keyFlags(folder: string): Map<string, string> {
    return this.guard(() => {
      const out = new Map<string, string>();
      const st = this.db.prepare("SELECT key, flags FROM messages WHERE folder = ?");
      try {
        st.bind([folder]);
        while (st.step()) {
          const [key, flags] = st.get() as [string, string];
          out.set(key, flags);
        }
      } finally {
        st.free();
      }
      return out;
    });
  }

  /**
   * The rows of a folder whose `column` is one of `values` (a pair's rows found by pairId, a few
   * keys' rows), ordered by key. Without an index on pairId SQLite scans the folder, which costs
   * a fraction of handing every row over (~0.2 µs against ~1 µs a row, measured at 100,000).
   */
  rowsWhere(folder: string, column: "key" | "pairId", values: readonly string[]): StateRow[] {
    const out: StateRow[] = [];
    // Well under SQLite's limit of bound parameters per statement.
    for (let i = 0; i < values.length; i += 500) {
      const chunk = values.slice(i, i + 500);
      const marks = chunk.map(() => "?").join(",");
      out.push(...this.guard(() => this.readRows(folder, ` AND ${column} IN (${marks})`, chunk)));
    }
    if (values.length > 500) out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out;
  }

  /**
   * The four text columns come joined by U+001F in one column: sql.js pays ~13 ms per 100,000
   * rows for each text column it hands over, more than SQLite takes to join them (measured at
   * 100,000 rows: 100-107 ms per side against 119-124 ms column by column). A value that holds
   * U+001F itself (a hostile file name) shows as one separator too many, and the folder is then
   * read again column by column.
   */
  private readRows(folder: string, where: string, params: readonly string[]): StateRow[] {
    const out: StateRow[] = [];
    const flagsOf = sharedFlags();
    const st = this.db.prepare(
      `SELECT key || char(31) || pairId || char(31) || flags || char(31) || ${DIGEST_OUT}, size, date FROM messages WHERE folder = ?${where} ORDER BY key`,
    );
    try {
      st.bind([folder, ...params]);
      while (st.step()) {
        const row = st.get();
        const joined = row[0] as string;
        const a = joined.indexOf(SEP);
        const b = joined.indexOf(SEP, a + 1);
        const c = joined.indexOf(SEP, b + 1);
        if (a < 0 || b < 0 || c < 0 || joined.indexOf(SEP, c + 1) >= 0)
          return this.readRowsByColumn(folder, where, params);
        out.push({
          folder,
          key: joined.slice(0, a),
          pairId: joined.slice(a + 1, b),
          flags: flagsOf(joined.slice(b + 1, c)),
          size: row[1] as number,
          date: row[2] as number,
          digest: joined.slice(c + 1),
        });
      }
    } finally {
      st.free();
    }
    return out;
  }

  private readRowsByColumn(folder: string, where: string, params: readonly string[]): StateRow[] {
    const out: StateRow[] = [];
    const flagsOf = sharedFlags();
    const st = this.db.prepare(
      `SELECT key, pairId, flags, size, date, ${DIGEST_OUT} FROM messages WHERE folder = ?${where} ORDER BY key`,
    );
    try {
      st.bind([folder, ...params]);
      while (st.step()) {
        const [key, pairId, flags, size, date, digest] = st.get() as [
          string,
          string,
          string,
          number,
          number,
          string,
        ];
        out.push({ folder, key, pairId, flags: flagsOf(flags), size, date, digest });
      }
    } finally {
      st.free();
    }
    return out;
  }

  count(folder?: string): number {
    return this.guard(() => this.countRows(folder));
  }

  private countRows(folder?: string): number {
    const st = folder
      ? this.db.prepare("SELECT count(*) FROM messages WHERE folder = ?")
      : this.db.prepare("SELECT count(*) FROM messages");
    if (folder) st.bind([folder]);
    st.step();
    const n = st.get()[0] as number;
    st.free();
    return n;
  }

  putMessage(row: StateRow): void {
    this.noteWritten(row.folder, row.key);
    this.record({
      o: "put",
      f: row.folder,
      k: row.key,
      p: row.pairId,
      fl: row.flags.join(" "),
      s: row.size,
      d: row.date,
      g: row.digest,
    });
  }

  deleteMessage(folder: string, key: string): void {
    this.noteWritten(folder, key);
    this.record({ o: "del", f: folder, k: key });
  }

  intents(folder: string): IntentRow[] {
    return this.guard(() => this.readIntents(folder));
  }

  private readIntents(folder: string): IntentRow[] {
    const out: IntentRow[] = [];
    const st = this.db.prepare(
      "SELECT pairId, sourceKey, date FROM intents WHERE folder = ? ORDER BY pairId",
    );
    st.bind([folder]);
    while (st.step()) {
      const [pairId, sourceKey, date] = st.get() as [string, string, number];
      out.push({ folder, pairId, sourceKey, date });
    }
    st.free();
    return out;
  }

  putIntent(row: IntentRow): void {
    this.record({ o: "iput", f: row.folder, p: row.pairId, sk: row.sourceKey, d: row.date });
  }

  deleteIntent(folder: string, pairId: string): void {
    this.record({ o: "idel", f: folder, p: pairId });
  }

  /** Makes every recorded op durable (journal fsync). */
  flush(): void {
    this.commit();
    if (this.readOnly) return;
    try {
      this.journal.flush();
    } catch (err) {
      throw ioFailure(err, "write the state journal", this.file.replace(/\.db$/, ".journal"));
    }
  }

  /**
   * Makes everything recorded durable: flushes the journal, and writes a snapshot when one is due
   * (or `force`). After save() returns, snapshot + journal hold every recorded op.
   */
  save(force = false): void {
    if (this.readOnly) return;
    this.flush();
    if (!force && !this.snapshotDue()) return;
    try {
      this.writeSnapshot();
    } catch (err) {
      throw ioFailure(err, "save the state file", this.file);
    }
  }

  /** Size of the snapshot on disk, bytes (0: none yet). */
  private snapshotBytes = 0;

  /** Something was recorded since the last snapshot, and the state is small or the journal has grown large. */
  private snapshotDue(): boolean {
    const { floor, ratio } = snapshotPolicy;
    const journal = this.journal.size;
    return journal > 0 && (this.snapshotBytes < floor || journal >= this.snapshotBytes * ratio);
  }

  /**
   * Writes a snapshot atomically, then empties the journal. The journal was flushed first, so at
   * every point below, what is on disk replays to the same state:
   * - killed while writing `.tmp`: the old file and the whole journal are untouched;
   * - killed around the `.bak` link: `.bak` is missing or is the old file; the old file is in place;
   * - killed after the rename, before the journal is emptied: the new file already holds the
   *   journal's ops, and replaying them again changes nothing (every op sets or deletes whole rows
   *   by key, so the last op on a key decides, however often the journal is replayed);
   * - the directory is fsynced before the journal is emptied (where the filesystem allows it), so
   *   an emptied journal does not meet the old file after a power loss.
   * `.bak` is always a whole earlier snapshot (the one this replaces), never a half-written one.
   */
  private writeSnapshot(): void {
    const live = this.liveImage();
    SideState.snapshots[live ? "live" : "exported"]++;
    const bytes = live ?? this.guard(() => this.db.export());
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      for (const part of sealed(bytes)) writeAll(fd, part);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // Keep the last good state beside the new one (a hard link: atomic, no copy), for a damaged file.
    const bak = `${this.file}.bak`;
    rmSync(bak, { force: true });
    try {
      linkSync(this.file, bak);
    } catch {
      // First save, or a filesystem without hard links: no backup this time.
    }
    renameSync(tmp, this.file);
    fsyncDir(this.file);
    this.journal.reset();
    this.snapshotBytes = bytes.length;
  }

  /**
   * The buffer sql.js was given at open. Its file system (Emscripten's MEMFS) keeps a file given
   * whole as that very buffer and writes SQLite's pages into it in place, as long as the file fits
   * (hence the slack); only a file that outgrows it is moved to a new buffer, which sql.js does
   * not show. While it stays live, a snapshot is written straight from it: no export(), which
   * copies the whole database page by page (~35-85 ms and a 20 MB copy at 100,000 messages).
   */
  private image: Buffer | undefined;
  /** Snapshots written from the live image and from export(), for tests. */
  static readonly snapshots = { live: 0, exported: 0 };

  /**
   * The database file as SQLite last committed it, when `image` still holds it. Proven, not
   * assumed: a fresh random tag is committed into the meta table and must be found in the image.
   */
  private liveImage(): Uint8Array | undefined {
    const image = this.image;
    if (!image) return undefined;
    const tag = randomBytes(12).toString("hex");
    const size = this.guard(() => {
      this.db.run("INSERT OR REPLACE INTO meta (k, v) VALUES ('saved', ?)", [tag]);
      const pages = Number(this.db.exec("PRAGMA page_count")[0]?.values[0]?.[0]);
      return pages * Number(this.db.exec("PRAGMA page_size")[0]?.values[0]?.[0]);
    });
    const view = size > 0 && size <= image.length ? image.subarray(0, size) : undefined;
    if (!view || view.indexOf(tag, 0, "latin1") < 0) {
      this.image = undefined; // moved: from now on, export() (the tag row stays, harmless)
      return undefined;
    }
    return view;
  }

  close(): void {
    this.image = undefined;
    // Unflushed writes were never confirmed: they are dropped with the database.
    this.inTransaction = false;
    this.journal.close();
    for (const st of this.statements.values()) st.free();
    this.statements.clear();
    this.db.close();
  }

  /** Writes between two flushes share one SQLite transaction: one commit per batch, not per row. */
  private inTransaction = false;

  private record(op: JournalOp): void {
    this.guard(() => {
      if (!this.inTransaction) {
        this.db.exec("BEGIN");
        this.inTransaction = true;
      }
      this.applyOp(op);
    });
    this.journal.add(op);
  }

  private commit(): void {
    if (!this.inTransaction) return;
    this.guard(() => this.db.exec("COMMIT"));
    this.inTransaction = false;
  }

  private readonly statements = new Map<string, Statement>();

  /** Runs one write through a statement prepared once per database (hot path: one per message). */
  private exec(sql: string, params: (string | number | null)[]): void {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    st.run(params);
  }

  private applyOp(op: JournalOp): void {
    switch (op.o) {
      case "put":
        this.exec(
          `INSERT OR REPLACE INTO messages (folder, key, pairId, flags, size, date, digest) VALUES (?1,?2,?3,?4,?5,?6,${DIGEST_IN})`,
          [op.f, op.k, op.p, op.fl, op.s, op.d, op.g],
        );
        break;
      case "del":
        this.exec("DELETE FROM messages WHERE folder = ? AND key = ?", [op.f, op.k]);
        break;
      case "fput":
        this.folderRows = undefined;
        this.db.run(
          "INSERT OR REPLACE INTO folders (name, identity, uidNext, modseq, count, minDate) VALUES (?,?,?,?,?,?)",
          [op.f, op.id, op.un, op.ms, op.n, op.md ?? 0],
        );
        break;
      case "fdel":
        this.folderRows = undefined;
        this.db.run("DELETE FROM folders WHERE name = ?", [op.f]);
        this.db.run("DELETE FROM messages WHERE folder = ?", [op.f]);
        this.db.run("DELETE FROM intents WHERE folder = ?", [op.f]);
        break;
      case "iput":
        this.exec("INSERT OR REPLACE INTO intents (folder, pairId, sourceKey, date) VALUES (?,?,?,?)", [
          op.f,
          op.p,
          op.sk,
          op.d,
        ]);
        break;
      case "idel":
        this.exec("DELETE FROM intents WHERE folder = ? AND pairId = ?", [op.f, op.p]);
        break;
    }
  }
}

/**
 * The flags of rows, one frozen array per distinct set (a folder has few): 100,000 rows are not
 * 100,000 arrays. Frozen, so that whoever would change a row's flags in place fails loudly.
 */
function sharedFlags(): (text: string) => Flag[] {
  const seen = new Map<string, Flag[]>();
  return (text) => {
    let flags = seen.get(text);
    if (flags === undefined) {
      flags = Object.freeze(text === "" ? [] : text.split(" ")) as Flag[];
      seen.set(text, flags);
    }
    return flags;
  };
}

/**
 * sql.js keeps the database in an in-memory file: durability comes from our journal and the atomic
 * snapshot, so SQLite's own rollback journal and syncs would only cost time. For the same reason a
 * big page cache only holds a second copy of pages that are already in memory, in WebAssembly memory
 * that never shrinks: at 100,000 messages a 16 MB cache cost up to 17 MB of RSS and read no faster
 * than 1-2 MB (a cache miss is a memcpy from the in-memory file). 512 KB against 2 MB: first syncs
 * of 113,000 messages peaked at 167.8 against 170.1 MB (medians of 4 alternating runs), in the
 * same time (37.6 s both).
 */
function tune(db: Database): void {
  db.exec(
    "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -512",
  );
}

/** SQLite's structural check, for a file without a checksum; its findings are rows, not errors. */
function quickCheck(db: Database, file: string): void {
  let found: string[];
  try {
    found = db.exec("PRAGMA quick_check")[0]?.values.map((r) => String(r[0])) ?? [];
  } catch (err) {
    throw damaged(file, (err as Error).message);
  }
  if (found.join() !== "ok") throw damaged(file, found.slice(0, 3).join("; "));
}

function createSchema(db: Database, side: Side): void {
  db.exec(`
    CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE folders (name TEXT PRIMARY KEY, identity TEXT NOT NULL, uidNext INTEGER, modseq TEXT, count INTEGER,
      minDate INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
    CREATE TABLE messages (folder TEXT NOT NULL, key TEXT NOT NULL, pairId TEXT NOT NULL, flags TEXT NOT NULL,
      size INTEGER NOT NULL, date INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (folder, key)) WITHOUT ROWID;
    CREATE TABLE intents (folder TEXT NOT NULL, pairId TEXT NOT NULL, sourceKey TEXT NOT NULL, date INTEGER NOT NULL,
      PRIMARY KEY (folder, pairId)) WITHOUT ROWID;
    PRAGMA user_version = ${SCHEMA_VERSION};
  `);
  db.run("INSERT INTO meta (k, v) VALUES ('app', ?), ('side', ?)", [APP_ID, side]);
}

/** Checks that a state file is ours, for this side, and not newer; migrates it forward. Returns true if it migrated. */
function checkIdentity(db: Database, file: string, side: Side, readOnly: boolean): boolean {
  let app: unknown;
  let storedSide: unknown;
  let version: unknown;
  try {
    version = db.exec("PRAGMA user_version")[0]?.values[0]?.[0];
    const rows = db.exec("SELECT k, v FROM meta")[0]?.values ?? [];
    for (const [k, v] of rows) {
      if (k === "app") app = v;
      if (k === "side") storedSide = v;
    }
  } catch (err) {
    if (isDamage(err)) throw damaged(file, (err as Error).message);
    app = undefined;
  }
  if (app !== APP_ID)
    throw new StateError(`State file ${file} is not a tandem state file: move it aside`, file);
  if (typeof version !== "number" || version > SCHEMA_VERSION) {
    throw new StateError(
      `State file ${file} has schema version ${String(version)}, newer than this tandem understands (${SCHEMA_VERSION}): upgrade tandem`,
      file,
    );
  }
  if (storedSide !== side)
    throw new StateError(`State file ${file} belongs to side ${String(storedSide)}, not ${side}`, file);
  // Forward migrations, one `if (version < N)` block per schema bump. A read-only open reads an
  // older file as it is (every query works on both versions) and writes nothing.
  if (readOnly || version === SCHEMA_VERSION) return false;
  try {
    // No rollback journal: if a step fails, the open fails and the file on disk is untouched.
    db.exec("PRAGMA journal_mode = OFF");
    // Version 2: the index was never queried (it was 30-40% of the file).
    if (version < 2) db.exec("DROP INDEX IF EXISTS messages_pair");
    // Version 3: digests to bytes (DIGEST_IN).
    if (version < 3) db.exec(`UPDATE messages SET digest = unhex(digest) WHERE NOT ${notHexBytes("digest")}`);
    // The pages the dropped index or the shorter rows freed go back: the file shrinks.
    db.exec("VACUUM; PRAGMA journal_mode = MEMORY");
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  } catch (err) {
    throw damaged(file, (err as Error).message);
  }
  return true;
}

/** SQLite's errors for a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB); sql.js only gives the message. */
function isDamage(err: unknown): boolean {
  return err instanceof Error && /malformed|not a database|corrupt/i.test(err.message);
}

function damaged(file: string, why: string): StateError {
  return new StateError(
    `State file ${file} is damaged (${why}): a copy of the last good state may be at ${file}.bak; run \`tandem sync --resync\` to move it aside and rebuild the state from both sides`,
    file,
  );
}

/**
 * Checks a state file's bytes before SQLite sees them: a SQLite header, a length that matches the
 * page count the header gives (a truncated or extended file is refused), a schema version this
 * tandem knows, and the checksum. Returns true if the file carried a checksum and it matched (the
 * checksum's bytes are then zeroed in `bytes`); false for a file without one (saved before version 2).
 */
function checkFile(bytes: Buffer, file: string): boolean {
  if (bytes.length < 100 || bytes.subarray(0, 16).toString("latin1") !== "SQLite format 3\u0000")
    throw damaged(file, "not a SQLite database");
  const rawPageSize = bytes.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0)
    throw damaged(file, `page size ${rawPageSize} in the header`);
  // The header's page count is valid when its "version valid for" equals the change counter.
  const pages = bytes.readUInt32BE(24) === bytes.readUInt32BE(92) ? bytes.readUInt32BE(28) : 0;
  if (pages > 0 ? bytes.length !== pages * pageSize : bytes.length % pageSize !== 0) {
    throw damaged(
      file,
      `${bytes.length} bytes, but the header says ${pages} pages of ${pageSize} bytes: truncated or cut short`,
    );
  }
  const version = bytes.readUInt32BE(60);
  if (version > SCHEMA_VERSION) {
    throw new StateError(
      `State file ${file} has schema version ${version}, newer than this tandem understands (${SCHEMA_VERSION}): upgrade tandem`,
      file,
    );
  }
  if (bytes.readUInt32BE(SUM_AT) !== SUM_MAGIC) {
    if (version >= 2) throw damaged(file, "its checksum is missing");
    return false;
  }
  const sum = bytes.readUInt32BE(SUM_AT + 4);
  bytes.fill(0, SUM_AT, SUM_AT + 8);
  if (crc32(bytes) !== sum) throw damaged(file, "its contents do not match its checksum");
  return true;
}

/**
 * A database's bytes as saved, in three parts: with the checksum that checkFile() verifies in
 * bytes 72-79. The bytes themselves are left as they are (they may be SQLite's live file).
 */
function sealed(bytes: Uint8Array): Uint8Array[] {
  const head = bytes.subarray(0, SUM_AT);
  const tail = bytes.subarray(SUM_AT + 8);
  const seal = Buffer.alloc(8);
  seal.writeUInt32BE(crc32(tail, crc32(seal, crc32(head))), 4);
  seal.writeUInt32BE(SUM_MAGIC, 0);
  return [head, seal, tail];
}

/**
 * Room left after a state file's bytes for the pages a run adds: a quarter of it, at least 48 MiB
 * (a first sync of 100,000 messages makes a ~20 MB state). Buffer.alloc() takes it from the
 * system's zeroed pages (calloc, mmap at this size), so only what SQLite writes into it is ever
 * touched: memory in use grows with the state, not with the slack.
 */
function slackFor(size: number): number {
  return Math.max(stateSlack.min, Math.ceil(size * stateSlack.ratio));
}

/** See slackFor(); tests lower `min` to make a state outgrow its buffer. */
export const stateSlack = { min: 48 << 20, ratio: 1 / 4 };

/** Reads a state file into a buffer with zeroed slack after it (see SideState.image). */
function readWithSlack(file: string): { image: Buffer; size: number } {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const image = Buffer.alloc(size + slackFor(size));
    let done = 0;
    while (done < size) {
      const n = readSync(fd, image, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return { image, size: done };
  } finally {
    closeSync(fd);
  }
}

/** A filesystem failure of the state (disk full, I/O error) as a StateError that names the file. */
function ioFailure(err: unknown, what: string, file: string): StateError {
  const e = err as NodeJS.ErrnoException;
  const why =
    e.code === "ENOSPC"
      ? "no space left on device (ENOSPC)"
      : e.code === "EDQUOT"
        ? "disk quota exceeded (EDQUOT)"
        : e.code
          ? `${e.code}: ${e.message}`
          : String(err);
  return new StateError(
    `Cannot ${what} ${file}: ${why}; the previous state is kept, run again once this is fixed`,
    file,
  );
}

function fsyncDir(file: string): void {
  const dir = file.slice(0, file.lastIndexOf("/")) || "/";
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
