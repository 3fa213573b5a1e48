// One selected IMAP mailbox as a Folder. Listing, reading, appending, flag changes and removals go
// over the store's lean connections (reads pipeline an EXAMINE, writes await a SELECT, or a NOOP
// while the folder is still selected there as needed; UIDVALIDITY checked each time); the rest
// (header reads, listChanges without known keys, finding an append without UIDPLUS) takes
// imapflow's mailbox lock, re-selects the mailbox if another one was selected meanwhile, and
// refuses to act if UIDVALIDITY changed.
import type { FetchMessageObject, ImapFlow, MailboxObject } from "imapflow";
import { type Flag, type MessageMeta, normalizeFlags } from "../../model/types.js";
import {
  type AppendInput,
  type ChangeListing,
  DriverError,
  type ErrorScope,
  type FlagChange,
  type Folder,
  type FolderMarker,
  type KeyFlags,
  type ListOptions,
} from "../driver.js";
import { findAppendedUid } from "./append-lookup.js";
import {
  type FoundFlags,
  flagTable,
  foundFlags,
  printFound,
  startFlagSearches,
  unsearched,
} from "./flag-searches.js";
import type { StoreContext } from "./imap-store.js";
import { type LeanClient, LeanError } from "./lean/client.js";
import {
  appendStream,
  BodyProbe,
  Feed,
  fetchBodies,
  fetchFlags,
  fetchMetas,
  inOrder,
  keptSelection,
  type Selected,
  SetSearches,
  sinceCriteria,
  startExamine,
  startFetchStream,
  startSearch,
  writableSelection,
  writeSelected,
} from "./lean/ops.js";
import { eachPosition, type FetchRow, isSendableFlag, listingFlags } from "./lean/parse.js";
import { collectBody, sendableFlags, toMeta } from "./message-utils.js";
import { chunkedUidSets, makeKey, uidOfKey } from "./uid-set.js";

const LIST_QUERY = { uid: true, flags: true, size: true, internalDate: true } as const;
const DAY_MS = 24 * 3600 * 1000;
/** Bytes of a streamed read queued for a slow consumer before the socket is paused. */
const READ_QUEUE = 2 * 1024 * 1024;
/** Bytes of readMany's whole messages queued before the socket is paused. */
const MANY_QUEUE = 8 * 1024 * 1024;

export class ImapFolder implements Folder {
  readonly name: string;
  readonly identity: string;
  readonly marker: FolderMarker;
  private readonly path: string;
  private readonly store: StoreContext;
  private readonly keywords: boolean;
  private permanentFlags: Set<string> | undefined;
  /** UIDs this folder object appended, so a search-based lookup never takes them for a new one. */
  private readonly appended = new Set<number>();
  private appendFloor: number;
  /** The read-only warning was given (once per folder). */
  private warnedReadOnly = false;
  /** close() was called: the store no longer counts this handle as holding its folder. */
  private closed = false;
  /** Keywords of the mailbox's FLAGS as last seen: listFlags() searches them without waiting for EXAMINE. */
  private keywordsSeen: string[];

  constructor(
    store: StoreContext,
    name: string,
    path: string,
    mailbox: MailboxObject,
    keywords: boolean,
    /** Opened to be listed only (Store.openFolder lookOnly): every write is refused. */
    private readonly lookOnly = false,
  ) {
    this.store = store;
    this.name = name;
    this.path = path;
    store.folderOpened(path);
    this.identity = String(mailbox.uidValidity);
    this.keywords = keywords;
    this.permanentFlags = mailbox.permanentFlags ? new Set(mailbox.permanentFlags) : undefined;
    // A read-only folder was reported by the open that found it so (the store's first SELECT).
    this.warnedReadOnly = mailbox.readOnly === true;
    this.appendFloor = mailbox.uidNext;
    this.keywordsSeen = [...(mailbox.flags ?? [])].filter((f) => !f.startsWith("\\") && isSendableFlag(f));
    this.marker = {
      uidNext: mailbox.uidNext,
      ...(mailbox.highestModseq !== undefined && !mailbox.noModseq
        ? { highestModseq: mailbox.highestModseq.toString() }
        : {}),
      count: mailbox.exists,
    };
  }

  private run<T>(what: string, fn: (client: ImapFlow, mailbox: MailboxObject) => Promise<T>): Promise<T> {
    return this.store.withMailbox(this.path, this.name, this.identity, what, (client, mailbox) => {
      // A folder opened by EXAMINE learns which flags it keeps from the first SELECT.
      if (mailbox.permanentFlags) this.permanentFlags = new Set(mailbox.permanentFlags);
      if (mailbox.readOnly && !this.warnedReadOnly) {
        this.warnedReadOnly = true;
        this.store.opts.onWarning?.(`${this.store.label}: folder "${this.name}" is read-only`);
      }
      return fn(client, mailbox);
    });
  }

  /** The UIDs of `keys`, ascending, each once. */
  private sortedUids(keys: Iterable<string>): Float64Array {
    const list = Array.isArray(keys) ? (keys as readonly string[]) : [...keys];
    const uids = new Float64Array(list.length);
    for (let i = 0; i < list.length; i++) uids[i] = uidOfKey(list[i]!, this.identity, this.name);
    uids.sort();
    let n = 0;
    for (let i = 0; i < uids.length; i++) if (i === 0 || uids[i] !== uids[n - 1]) uids[n++] = uids[i]!;
    return uids.subarray(0, n);
  }

  private uids(keys: readonly string[]): number[] {
    return keys.map((k) => uidOfKey(k, this.identity, this.name));
  }

  private flagsFor(flags: readonly Flag[]): string[] {
    const sendable = sendableFlags(flags, this.permanentFlags);
    return this.keywords ? sendable : sendable.filter((f) => f.startsWith("\\"));
  }

  /** Runs `fn` with the lean connection held; failures become DriverErrors. */
  private async withLean<T>(what: string, scope: ErrorScope, fn: (c: LeanClient) => Promise<T>): Promise<T> {
    const lease = await this.store.leanAcquire(this.path);
    try {
      return await fn(lease.client);
    } catch (err) {
      throw this.store.leanError(err, `${what} in "${this.name}"`, scope);
    } finally {
      lease.release();
    }
  }

  /**
   * Selects this folder on the lean connection, failing unless UIDVALIDITY is still this folder's:
   * as it stands when the connection still has it selected (after an awaited NOOP: keptSelection),
   * else by an EXAMINE that the caller pipelines its commands behind.
   */
  private async begin(c: LeanClient, what: string): Promise<{ sel: Promise<Selected> }> {
    const check = (sel: Selected) => this.sameIdentity(sel);
    // Either way a failure is a DriverError: read() and readMany() call this outside withLean.
    const failed = (err: unknown): never => {
      throw examineError(this.store, err, this.name, what);
    };
    const kept = await keptSelection(c, this.path).catch(failed);
    if (kept) return { sel: Promise.resolve(check(kept)) };
    return { sel: startExamine(c, this.path).then(check, failed) };
  }

  /** `sel`, unless it is of another UIDVALIDITY than this folder's (EUIDVALIDITY). */
  private sameIdentity(sel: Selected): Selected {
    if (sel.uidValidity !== this.identity) {
      throw new DriverError(
        `Folder "${this.name}" changed its UIDVALIDITY from ${this.identity} to ${sel.uidValidity ?? "none"} while open: every known key is invalid`,
        { scope: "folder", code: "EUIDVALIDITY" },
      );
    }
    return sel;
  }

  /**
   * Selects this folder read-write on the lean connection before a write: as it stands when the
   * connection has it so already (keptSelection: a NOOP), else by a SELECT. The SELECT is awaited,
   * not pipelined as begin() does for reads: a write sent behind it would be carried out before
   * its UIDVALIDITY could be checked, on the messages of a folder made anew under the same name.
   */
  private async beginWrite(c: LeanClient, what: string): Promise<void> {
    const failed = (err: unknown): never => {
      throw examineError(this.store, err, this.name, what);
    };
    const sel = this.sameIdentity(
      (await keptSelection(c, this.path, true).catch(failed)) ??
        (await startExamine(c, this.path, "SELECT").catch(failed)),
    );
    // As run() does for imapflow's SELECT: the flags it keeps, and read-only warned once.
    if (sel.permanentFlags) this.permanentFlags = new Set(sel.permanentFlags);
    if (sel.readOnly) {
      if (!this.warnedReadOnly) {
        this.warnedReadOnly = true;
        this.store.opts.onWarning?.(`${this.store.label}: folder "${this.name}" is read-only`);
      }
      throw new DriverError(
        `${what} in "${this.name}": the server refused the command (the folder is read-only)`,
        {
          scope: "folder",
          code: "ESTORE",
        },
      );
    }
  }

  /**
   * Write commands (`[what, line]`, pipelined) on this folder's read-write selection: beginWrite
   * (for `doing`) first where the connection's bookkeeping no longer vouches for it. A NO or BAD is the folder's
   * ESTORE ("<what>: the server refused the command"); a lost connection goes up for withLean to
   * map (ECONNLOST, retryable).
   */
  private async write(
    c: LeanClient,
    doing: string,
    commands: Array<[what: string, line: string]>,
  ): Promise<void> {
    if (!writableSelection(c, this.path)) await this.beginWrite(c, doing);
    await writeSelected(
      c,
      this.path,
      commands.map(([, line]) => line),
      (err, i) => {
        if (!(err instanceof LeanError) || err.responseStatus === undefined) return err;
        const said = [err.responseStatus, err.responseText].filter(Boolean).join(" ");
        return new DriverError(`${commands[i]![0]}: the server refused the command (${said})`, {
          scope: "folder",
          code: "ESTORE",
          cause: err,
        });
      },
    );
  }

  private meta(row: FetchRow): MessageMeta {
    return {
      key: makeKey(this.identity, row.uid!),
      flags: normalizeFlags(listingFlags(row.flags ?? [])),
      size: row.size ?? 0,
      date: row.date ?? Number.NaN,
    };
  }

  /**
   * Runs one FETCH and collects the rows as MessageMeta. No command is issued inside the loop
   * (imapflow cannot run a command while a FETCH on the same connection is being consumed).
   */
  private async fetchMetas(client: ImapFlow, range: string, changedSince?: bigint): Promise<MessageMeta[]> {
    const out: MessageMeta[] = [];
    const options = changedSince === undefined ? { uid: true } : { uid: true, changedSince };
    for await (const msg of client.fetch(range, LIST_QUERY, options) as AsyncIterable<FetchMessageObject>) {
      if (!msg.uid) continue;
      out.push(toMeta(msg, this.identity));
    }
    return out;
  }

  /**
   * Every message (or, with minDate, at least those that arrived since then), ascending UID.
   * The whole listing is fetched before the first row is yielded, so the caller may issue other
   * calls while iterating; memory is one small MessageMeta per message.
   */
  async *list(opts?: ListOptions): AsyncIterable<MessageMeta> {
    if (opts?.since) {
      const changes = await this.listChanges(opts.since, opts);
      yield* changes.changed;
      return;
    }
    const rows = await this.withLean("Listing messages", "folder", async (c) => {
      const { sel } = await this.begin(c, "Listing messages");
      if (opts?.minDate === undefined) {
        const [, all] = await inOrder<[Selected, FetchRow[]]>(sel, fetchMetas(c, ["1:*"]));
        return all;
      }
      // SEARCH SINCE compares dates only, in a timezone of the server's choosing: two days of
      // margin make sure nothing inside the window is missed (the result may hold more).
      const [, found] = await inOrder<[Selected, number[]]>(
        sel,
        startSearch(c, sinceCriteria(opts.minDate - 2 * DAY_MS)),
      );
      if (!found.length) return [];
      return await fetchMetas(c, chunkedUidSets(found));
    });
    const metas = rows.map((r) => this.meta(r));
    sortByUid(metas);
    yield* metas;
  }

  /**
   * Every message's key and flags, ascending UID. With ESEARCH: one EXAMINE and one compact
   * `UID SEARCH RETURN (ALL)` per flag, pipelined (the keywords as last seen in FLAGS, any new ones
   * once EXAMINE has named them), so the server formats and we parse a few UID sets instead of a
   * line per message. Anything that makes those answers doubtful falls back to one
   * `UID FETCH 1:* (UID FLAGS)`; see flagsBySearch.
   */
  async listFlags(): Promise<KeyFlags[]> {
    return await this.withLean("Listing flags", "folder", async (c) => {
      if (c.caps.has("ESEARCH")) {
        const found = await this.flagsBySearch(c);
        if (found) return found;
      }
      const { sel } = await this.begin(c, "Listing flags");
      const [, rows] = await inOrder<[Selected, Map<number, string[]>]>(sel, fetchFlags(c, "1:*"));
      const uids = [...rows.keys()].sort((a, b) => a - b);
      return uids.map((uid) => ({
        key: makeKey(this.identity, uid),
        flags: normalizeFlags(listingFlags(rows.get(uid)!)),
      }));
    });
  }

  /** The ESEARCH way of listFlags(); null where searchFlags() does not trust the answers. */
  private async flagsBySearch(c: LeanClient): Promise<KeyFlags[] | null> {
    const found = await this.searchFlags(c);
    if (!found) return null;
    const { all, byFlag } = found;
    const out: KeyFlags[] = new Array(all.count);
    const prefix = `${this.identity}/`;
    let p = 0;
    for (let r = 0; r < all.lo.length; r++) {
      for (let u = all.lo[r]!, hi = all.hi[r]!; u <= hi; u++) out[p++] = { key: prefix + u, flags: [] };
    }
    for (const [flag, set] of byFlag) {
      const ok = eachPosition(set, all, (from, to) => {
        for (let i = from; i <= to; i++) out[i]!.flags.push(flag);
      });
      if (!ok) return null;
    }
    return out;
  }

  /**
   * listFlags()' print from the same searches, without a listing: one bit per flag and message,
   * and the key hashed from the UIDVALIDITY and the UID's digits. Undefined where listFlags()
   * would fetch instead (no ESEARCH, answers it does not trust, more than 31 flags in use).
   */
  async printFlags(): Promise<{ count: number; fingerprint: string } | undefined> {
    return await this.withLean("Listing flags", "folder", async (c) => {
      if (!c.caps.has("ESEARCH")) return undefined;
      const found = await this.searchFlags(c);
      return found ? printFound(this.identity, found) : undefined;
    });
  }

  /**
   * The searches behind flagsBySearch() and printFlags(): every UID (`all`) and, per flag in
   * sorted order (so that every message's flags come out sorted, as normalizeFlags gives them),
   * the set of UIDs that carry it; the caller maps each set onto `all` with eachPosition() and
   * gives up where that fails (a UID that ALL has not). Null when the answers cannot be trusted
   * to be exactly what a FETCH would say: the mailbox's FLAGS names a flag we cannot search for
   * (an unknown system flag, a keyword that is no atom, two keywords differing only in case), a
   * keyword searched for is missing from FLAGS yet found on a message, the server announced a
   * change while the searches ran, or the UIDs of ALL are not EXISTS many.
   */
  private async searchFlags(c: LeanClient): Promise<FoundFlags | null> {
    const { sel } = await this.begin(c, "Listing flags");
    const searches = new SetSearches(c);
    startFlagSearches(searches, this.keywordsSeen);
    const [selected] = await inOrder<[Selected, unknown]>(sel, searches.wait());
    const table = flagTable(selected);
    if (!table) return null;
    this.keywordsSeen = table.keywords;
    // Keywords FLAGS names that were not searched for: the folder is still selected here.
    const fresh = unsearched(table, searches);
    if (fresh.length) {
      for (const kw of fresh) searches.add(`KEYWORD ${kw}`);
      await searches.wait();
    }
    return foundFlags(selected, table, searches);
  }

  /**
   * Changes since `since`: `changed` are messages whose flags changed or that are new
   * (FETCH … CHANGEDSINCE), `vanished` the keys that are gone.
   *
   * `known` (optional, an extension of the Folder interface): the keys the caller holds for this
   * folder. With it, vanished is exact and needs no QRESYNC: the known keys that `UID SEARCH UID
   * 1:<highest known>` no longer finds. Without it, vanished comes from QRESYNC's VANISHED (EARLIER),
   * which may name UIDs the caller never knew (ignore those).
   */
  async listChanges(
    since: FolderMarker,
    _opts?: ListOptions,
    known?: Iterable<string>,
  ): Promise<ChangeListing> {
    if (since.highestModseq === undefined || since.uidNext === undefined) {
      throw new DriverError(
        `Cannot list changes in "${this.name}": the previous marker has no HIGHESTMODSEQ/UIDNEXT; list in full`,
        { scope: "folder", code: "ENOMODSEQ" },
      );
    }
    if (this.marker.highestModseq === undefined) {
      throw new DriverError(
        `Cannot list changes in "${this.name}": the server keeps no mod-sequences for it`,
        {
          scope: "folder",
          code: "ENOMODSEQ",
        },
      );
    }
    if (
      since.uidNext === this.marker.uidNext &&
      since.highestModseq === this.marker.highestModseq &&
      since.count === this.marker.count
    ) {
      return { changed: [], vanished: [] };
    }
    const sinceModseq = BigInt(since.highestModseq);
    const knownUids = known === undefined ? undefined : this.sortedUids(known);
    if (knownUids !== undefined) {
      // With the known keys no QRESYNC is needed: one pipelined EXAMINE, FETCH CHANGEDSINCE and
      // UID SEARCH on the lean connection.
      // Every known key, not only those below the marker's UIDNEXT: a run records the marker of
      // its folder's open, so the messages it appended itself are known above it (and one that
      // another client expunged since must be found gone too).
      const top = knownUids.length > 0 ? knownUids[knownUids.length - 1]! : 0;
      return await this.withLean("Listing changes", "folder", async (c) => {
        const { sel } = await this.begin(c, "Listing changes");
        const [, rows, found] = await inOrder<[Selected, FetchRow[], number[]]>(
          sel,
          fetchMetas(c, ["1:*"], since.highestModseq),
          top > 0 ? startSearch(c, `UID 1:${top}`) : Promise.resolve([]),
        );
        const changed = rows.map((r) => this.meta(r));
        sortByUid(changed);
        // Both lists ascending, walked side by side: a known UID the search did not find is gone.
        // (`1:n` also matches the highest UID when every UID is above n; such a UID is above every
        // known one and is passed over.) A sorted typed array and a walk instead of a Set of every
        // UID: 100,000 known keys cost ~2 ms instead of ~15.
        const present = Float64Array.from(found).sort();
        const vanished: string[] = [];
        let at = 0;
        for (const u of knownUids) {
          while (at < present.length && present[at]! < u) at++;
          if (at === present.length || present[at] !== u) vanished.push(makeKey(this.identity, u));
        }
        return { changed, vanished };
      });
    }
    return await this.run("Listing changes", async (client) => {
      const qresync = client.enabled.has("QRESYNC");
      if (!qresync) {
        throw new DriverError(
          `Cannot list removed messages in "${this.name}" incrementally: the server has no QRESYNC; pass the known keys or list in full`,
          { scope: "folder", code: "ENOQRESYNC" },
        );
      }
      const reported = new Set<number>();
      this.store.setExpungeSink((uid, earlier) => {
        // Above the marker too: messages this tool appended after the marker was taken.
        if (earlier) reported.add(uid);
      });
      let changed: MessageMeta[];
      try {
        changed = await this.fetchMetas(client, "1:*", sinceModseq);
      } finally {
        this.store.setExpungeSink(null);
      }
      sortByUid(changed);
      // Without the known keys: QRESYNC's VANISHED (EARLIER), on the imapflow connection.
      const vanishedUids = [...reported];
      vanishedUids.sort((a, b) => a - b);
      return { changed, vanished: vanishedUids.map((u) => makeKey(this.identity, u)) };
    });
  }

  /**
   * The message bytes, streamed straight from the socket as they arrive (BODY.PEEK: \Seen is not
   * set); reading pauses while the caller is behind. The lean connection stays held until the
   * stream ends; a stream abandoned early drops it (a new one is opened on the next call).
   */
  async *read(key: string): AsyncIterable<Uint8Array> {
    const uid = uidOfKey(key, this.identity, this.name);
    const what = `Reading ${key}`;
    const lease = await this.store.leanAcquire(this.path);
    const c = lease.client;
    let settled = false;
    try {
      const feed = new Feed<Buffer>(c, READ_QUEUE);
      const { sel } = await this.begin(c, what);
      const { done, seen } = startFetchStream(c, uid, feed);
      done.then(
        () => feed.end(),
        (err: unknown) => feed.end(this.store.leanError(err, `${what} in "${this.name}"`, "message")),
      );
      done.then(
        () => (settled = true),
        () => (settled = true),
      );
      await sel;
      yield* feed.drain();
      if (!seen()) {
        throw new DriverError(`Message ${key} is not in "${this.name}" (any more)`, {
          scope: "message",
          code: "ENOTFOUND",
        });
      }
    } finally {
      if (!settled) c.destroy();
      c.resume();
      lease.release();
    }
  }

  /**
   * Small messages in one UID FETCH BODY.PEEK[] per UID set (pipelined): the server streams them
   * back to back, each yielded whole as it completes. The lean connection stays held until the
   * loop ends; the caller may write to other stores inside it; a write to this one takes another
   * lean connection (and waits while every one is held).
   */
  async *readMany(keys: string[]): AsyncIterable<{ key: string; body: Uint8Array }> {
    if (!keys.length) return;
    const uids = this.uids(keys);
    const lease = await this.store.leanAcquire(this.path);
    const c = lease.client;
    let settled = false;
    try {
      const feed = new Feed<{ uid: number; body: Buffer }>(c, MANY_QUEUE);
      const { sel } = await this.begin(c, "Reading messages");
      const all = fetchBodies(c, chunkedUidSets(uids), feed);
      all.then(
        () => feed.end(),
        (err: unknown) => feed.end(this.store.leanError(err, `Reading messages in "${this.name}"`, "folder")),
      );
      all.then(
        () => (settled = true),
        () => (settled = true),
      );
      await sel;
      for await (const { uid, body } of feed.drain()) yield { key: makeKey(this.identity, uid), body };
    } finally {
      if (!settled) c.destroy();
      c.resume();
      lease.release();
    }
  }

  async readHeader(key: string): Promise<Uint8Array> {
    const uid = uidOfKey(key, this.identity, this.name);
    return await this.run(`Reading the header of ${key}`, async (client) => {
      const msg = await client.fetchOne(String(uid), { uid: true, headers: true }, { uid: true });
      if (!msg || msg.uid !== uid || !msg.headers) {
        throw new DriverError(`Message ${key} is not in "${this.name}" (any more)`, {
          scope: "message",
          code: "ENOTFOUND",
        });
      }
      return new Uint8Array(msg.headers.buffer, msg.headers.byteOffset, msg.headers.byteLength);
    });
  }

  /** A folder opened to look only is never written: a caller that does so has a bug. */
  private mayTouch(what: string): void {
    if (this.lookOnly)
      throw new Error(`${what} in "${this.name}": the folder was opened to look only (a bug in tandem)`);
  }

  /**
   * Appends and returns the new key: from APPENDUID (UIDPLUS), else found by a search among the
   * UIDs above the folder's UIDNEXT (Message-ID, size and arrival second must match exactly one).
   * The body is streamed to the server as a literal (the size must be known; without it the body
   * is collected first).
   */
  async append(input: AppendInput): Promise<string> {
    this.mayTouch("Appending");
    const flags = this.flagsFor(input.flags);
    const dateMs = Math.floor(input.date / 1000) * 1000;
    let body = input.body;
    let size = input.size;
    if (size === undefined) {
      const whole = await collectBody(input.body);
      size = whole.length;
      body = (async function* () {
        yield whole;
      })();
    }
    const literalSize = size;
    const floor = this.appendFloor;
    const probe = new BodyProbe();
    const res = await this.withLean("Appending a message", "folder", (c) =>
      appendStream(c, this.path, flags, dateMs, literalSize, body, probe),
    );
    let uid: number;
    if (res.uid !== undefined && res.uidValidity !== undefined) {
      if (res.uidValidity !== this.identity) {
        throw new DriverError(
          `Folder "${this.name}" changed its UIDVALIDITY (${this.identity} → ${res.uidValidity}); the message was appended under the new one`,
          { scope: "folder", code: "EUIDVALIDITY" },
        );
      }
      uid = res.uid;
    } else {
      uid = await this.run("Finding the appended message", (client) =>
        findAppendedUid(client, {
          folder: this.name,
          floor,
          messageId: probe.messageId,
          size: probe.crlfSize,
          date: new Date(dateMs),
          exclude: this.appended,
        }),
      );
    }
    this.appended.add(uid);
    // Every later APPEND gets a higher UID than this one.
    this.appendFloor = Math.max(this.appendFloor, uid + 1);
    return makeKey(this.identity, uid);
  }

  async setFlags(keys: string[], add: Flag[], remove: Flag[]): Promise<void> {
    await this.setFlagsMany([{ keys, add, remove }]);
  }

  /**
   * Every change on one read-write selection, their STOREs pipelined: a folder's flag changes
   * (typically a few distinct ones) cost one round trip instead of a NOOP and a STORE each.
   */
  async setFlagsMany(changes: ReadonlyArray<FlagChange>): Promise<void> {
    this.mayTouch("Setting flags");
    const wanted = changes
      .filter((ch) => ch.keys.length > 0)
      .map((ch) => ({
        uids: this.uids(ch.keys),
        add: ch.add,
        removable: sendableFlags(ch.remove, undefined).filter((f) => this.keywords || f.startsWith("\\")),
      }))
      .filter((ch) => this.flagsFor(ch.add).length > 0 || ch.removable.length > 0);
    if (!wanted.length) return;
    await this.withLean("Setting flags", "folder", async (c) => {
      await this.beginWrite(c, "Setting flags");
      const commands: Array<[string, string]> = [];
      const change = (uids: number[], sign: "+" | "-", flags: string[]) => {
        if (!flags.length) return;
        const what = `${sign === "+" ? "Adding" : "Removing"} ${flags.join(" ")} in "${this.name}"`;
        // A flag that is no atom cannot be sent: imapflow dropped those too, and refused a change
        // left with none.
        const atoms = flags.filter(isSendableFlag);
        if (!atoms.length) {
          throw new DriverError(`${what}: the server refused the command`, {
            scope: "folder",
            code: "ESTORE",
          });
        }
        for (const set of chunkedUidSets(uids)) {
          commands.push([what, `UID STORE ${set} ${sign}FLAGS.SILENT (${atoms.join(" ")})`]);
        }
      };
      for (const { uids, add, removable } of wanted) {
        // Filtered again by the PERMANENTFLAGS of this SELECT, as imapflow did.
        change(uids, "+", this.flagsFor(add));
        change(uids, "-", removable);
      }
      if (commands.length) await this.write(c, "Setting flags", commands);
    });
  }

  /**
   * Removes exactly these messages: UID STORE +FLAGS (\Deleted), then, once that succeeded, UID
   * EXPUNGE of the same set. Without UIDPLUS this refuses before changing anything: a plain EXPUNGE
   * would also remove other clients' \Deleted messages.
   */
  async remove(keys: string[]): Promise<void> {
    this.mayTouch("Removing messages");
    if (!keys.length) return;
    const uids = this.uids(keys);
    await this.withLean("Removing messages", "folder", async (c) => {
      if (!c.caps.has("UIDPLUS")) {
        throw new DriverError(
          `Cannot remove messages from "${this.name}": the server has no UIDPLUS, and a plain EXPUNGE could remove other clients' messages marked \\Deleted`,
          { scope: "folder", code: "ENOUIDPLUS" },
        );
      }
      await this.beginWrite(c, "Removing messages");
      for (const set of chunkedUidSets(uids)) {
        const what = `Removing messages ${set} from "${this.name}"`;
        // UID EXPUNGE only after the STORE's OK, never pipelined behind it.
        await this.write(c, "Removing messages", [[what, `UID STORE ${set} +FLAGS.SILENT (\\Deleted)`]]);
        await this.write(c, "Removing messages", [[what, `UID EXPUNGE ${set}`]]);
      }
    });
  }

  async close(): Promise<void> {
    // The selection stays until another folder needs the connection or the store closes; from
    // now on it may (leanAcquire prefers connections whose selection no open folder needs).
    if (this.closed) return;
    this.closed = true;
    this.store.folderClosed(this.path);
  }
}

function sortByUid(metas: MessageMeta[]): void {
  const uid = (m: MessageMeta) => Number(m.key.slice(m.key.indexOf("/") + 1));
  for (let i = 1; i < metas.length; i++) {
    if (uid(metas[i - 1]!) > uid(metas[i]!)) {
      metas.sort((a, b) => uid(a) - uid(b));
      return;
    }
  }
}

/** A failed EXAMINE as a folder-scoped DriverError: ENOFOLDER when the folder does not exist. */
export function examineError(store: StoreContext, err: unknown, name: string, what: string): DriverError {
  const e = err as { serverResponseCode?: string; responseText?: string; responseStatus?: string };
  if (e?.serverResponseCode === "NONEXISTENT" || /doesn.t exist|not exist/i.test(e?.responseText ?? "")) {
    return new DriverError(`Folder "${name}" does not exist on the server`, {
      scope: "folder",
      code: "ENOFOLDER",
      cause: err,
    });
  }
  return store.leanError(err, `${what}: selecting folder "${name}"`, "folder", "ESELECT");
}
