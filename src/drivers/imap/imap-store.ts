// The IMAP Store: lean connections (lean/client.ts, opened on first use) for the hot operations:
// listing, bulk and streamed reads, streamed APPEND, flag changes and removals, one operation at a
// time on each; plus one imapflow connection, opened only when needed (folder creation and
// removal, header reads, the rest), folders selected on demand under imapflow's mailbox lock, so
// that every operation runs against the mailbox it belongs to.
import type { ImapFlow, MailboxObject } from "imapflow";
import {
  DriverError,
  type ErrorScope,
  type Folder,
  type FolderInfo,
  type FolderPrint,
  type OpenOptions,
  type Store,
  type StoreCaps,
} from "../driver.js";
import { type ConnectionHooks, connectClient, type ImapStoreOptions } from "./connection.js";
import { commandError, connectError } from "./errors.js";
import { type Namespace, nameFromServerPath, serverPathFromName } from "./folder-names.js";
import { examineError, ImapFolder } from "./imap-folder.js";
import { LeanClient } from "./lean/client.js";
import {
  keptSelection,
  listMailboxes,
  readNamespace,
  type Selected,
  selectedPath,
  startExamine,
} from "./lean/ops.js";
import { printBatch } from "./print-batch.js";

/** A lean connection quiet for longer than this is replaced rather than trusted (NAT, autologout). */
const LEAN_MAX_IDLE_MS = 60_000;

/** Lean connections per store (see ImapStore.slots). */
const LEAN_SLOTS = 3;

interface LeanSlot {
  client: LeanClient | null;
  busy: boolean;
  /** performance.now() at the last release: the least recently used slot serves a new folder. */
  lastUsed: number;
  /** A login under way (open() starts the spare slots' early): whoever needs the slot waits for it. */
  opening?: Promise<LeanClient>;
  /** Has had a connection in this store. */
  wasUp?: boolean;
  /** Never got one while another slot had: the store does without it (see leanAcquire()). */
  unused?: boolean;
}

/** Exclusive use of one of the store's lean connections until release(). */
export interface LeanLease {
  client: LeanClient;
  release(): void;
}

export type { ImapStoreOptions } from "./connection.js";
export { resolveSecret } from "./credentials.js";

/** Connects, logs in and returns the store. Failures: DriverError scope "store" (EAUTH, ECONNECT, ETLS). */
export async function openImapStore(opts: ImapStoreOptions): Promise<Store> {
  const store = new ImapStore(opts);
  try {
    await store.open();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

type ExpungeSink = (uid: number, earlier: boolean) => void;

/** What a folder needs from its store. */
export interface StoreContext {
  readonly caps: StoreCaps;
  readonly opts: ImapStoreOptions;
  /** `imap://user@host:port`, for messages. */
  readonly label: string;
  /** Runs `fn` with `path` selected and locked; checks that UIDVALIDITY is still `identity`. */
  withMailbox<T>(
    path: string,
    name: string,
    identity: string | undefined,
    what: string,
    fn: (client: ImapFlow, mailbox: MailboxObject) => Promise<T>,
  ): Promise<T>;
  /** Holds the lock of `path` until release() is called (for streamed reads). */
  lockMailbox(
    path: string,
    name: string,
    identity: string,
    what: string,
  ): Promise<{ client: ImapFlow; mailbox: MailboxObject; release(): void }>;
  /** Receives VANISHED/EXPUNGE notifications while set. */
  setExpungeSink(sink: ExpungeSink | null): void;
  /** The lean connection, exclusively, (re)connected as needed. Failures: store-scoped DriverErrors. */
  leanAcquire(path?: string): Promise<LeanLease>;
  /** Maps a failure of a lean command (a closed store: ECLOSED). */
  leanError(err: unknown, what: string, scope: ErrorScope, code?: string): DriverError;
  /** A folder handle on `path` opens and closes: a lean connection keeps its selection meanwhile. */
  folderOpened(path: string): void;
  folderClosed(path: string): void;
}

export class ImapStore implements Store, StoreContext {
  readonly caps: StoreCaps = { keywords: true, incremental: false, stableKeys: true };
  readonly label: string;
  readonly opts: ImapStoreOptions;
  private client: ImapFlow | null = null;
  private reconnecting: Promise<ImapFlow> | null = null;
  private closed = false;
  private ns: Namespace = { prefix: "", delimiter: "/" };
  private expungeSink: ExpungeSink | null = null;
  private readonly hooks: ConnectionHooks;
  /**
   * Lean connections, each used by one caller at a time. At least two, so that the folder being
   * applied and the next one being listed meanwhile each keep their own folder selected: on one
   * connection they took turns, and every turn re-selected (an EXAMINE that costs Dovecot a rescan
   * of a recently changed Maildir folder). Three: the print batch runs on three Dovecot processes
   * at once (the rescans of recently changed folders in parallel), and leaves three selections for
   * the sync to open without another EXAMINE (warm()). At 100,000 messages after server changes,
   * 1.72 → 1.61 s (median of 8 alternating runs each); no-change runs 0.325 s either way.
   */
  private readonly slots: LeanSlot[] = Array.from({ length: LEAN_SLOTS }, () => ({
    client: null,
    busy: false,
    lastUsed: 0,
  }));
  private leanWaiters: Array<() => void> = [];
  /**
   * A lean connection was used since imapflow's session last synced: a message it appended (or
   * listed after another client appended it), flags it set or messages it expunged are not in
   * imapflow's view yet. The next imapflow operation starts with a NOOP.
   */
  private flowStale = false;

  constructor(opts: ImapStoreOptions) {
    this.opts = opts;
    this.label = `${opts.tls === "implicit" ? "imaps" : "imap"}://${opts.user}@${opts.host}:${opts.port}`;
    this.hooks = {
      onExpunge: (uid, earlier) => {
        if (uid !== undefined) this.expungeSink?.(uid, earlier);
      },
    };
  }

  /**
   * Logs in on a lean connection and learns from it what every folder needs (the namespace, what
   * the server can do). imapflow connects later, only when an operation needs it (conn()): a run
   * that lists, reads, appends, sets flags and removes messages never loads it. A server whose
   * namespace the lean connection cannot read gets imapflow at once, as before.
   */
  async open(): Promise<void> {
    const lease = await this.leanAcquire();
    // The other lean connections log in now, while the run starts, rather than when the print
    // batch first needs them and the event loop is busy with its answers (the third one came
    // ~135 ms late that way). Only after one login succeeded; a failed one stays quiet here and
    // is made again, and reported, by whoever needs the slot.
    for (const slot of this.slots) if (!slot.client && !slot.busy) this.leanConnect(slot).catch(() => {});
    let ns: Awaited<ReturnType<typeof readNamespace>>;
    let caps: ReadonlySet<string>;
    try {
      ns = await readNamespace(lease.client);
      caps = lease.client.caps;
    } catch (err) {
      throw this.leanError(err, `Reading the namespace of ${this.label}`, "store");
    } finally {
      lease.release();
    }
    if (!ns) {
      await this.conn();
      return;
    }
    this.ns = { prefix: ns.prefix, delimiter: ns.delimiter ?? "/" };
    // What imapflow ENABLEs when it connects (CONDSTORE, and QRESYNC: see buildClientOptions).
    this.caps.incremental = caps.has("CONDSTORE") && caps.has("QRESYNC");
    this.warnNoUidplus(caps);
    this.learned = true;
  }

  /** Namespace and capabilities are known (from open() or the first imapflow connection). */
  private learned = false;

  private warnNoUidplus(caps: ReadonlySet<string>): void {
    if (caps.has("UIDPLUS")) return;
    this.opts.onWarning?.(
      `${this.label}: the server has no UIDPLUS; appended messages are found by a search, and removing messages is refused (it would need a plain EXPUNGE)`,
    );
  }

  async connect(): Promise<ImapFlow> {
    const client = await connectClient(this.opts, this.hooks);
    if (this.closed) {
      client.close();
      throw new DriverError(`${this.label} is closed`, { scope: "store", code: "ECLOSED" });
    }
    this.client = client;
    if (!this.learned) {
      const ns = client.namespace;
      this.ns = { prefix: ns?.prefix ?? "", delimiter: ns?.delimiter ?? "/" };
      const condstore = client.enabled.has("CONDSTORE");
      const qresync = client.enabled.has("QRESYNC");
      this.caps.incremental = condstore && qresync;
      this.warnNoUidplus(new Set(client.capabilities.keys()));
      this.learned = true;
    }
    return client;
  }

  /** The connection, reconnecting once if the previous one was lost (e.g. dropped while idle). */
  async conn(): Promise<ImapFlow> {
    if (this.closed) {
      throw new DriverError(`${this.label} is closed`, { scope: "store", code: "ECLOSED" });
    }
    if (this.client?.usable) return this.client;
    if (!this.reconnecting) {
      if (this.client) this.opts.debug?.(`${this.label}: reconnecting`);
      this.client?.close();
      this.reconnecting = this.connect().finally(() => {
        this.reconnecting = null;
      });
    }
    return await this.reconnecting;
  }

  /** A NOOP on imapflow's connection when the lean one was used meanwhile (see flowStale). */
  private async syncFlow(client: ImapFlow): Promise<void> {
    if (!this.flowStale) return;
    this.flowStale = false;
    await client.noop();
  }

  /**
   * A lean connection for exclusive use until release(). `path`: the folder the caller will
   * select, so that a connection that has it selected already is preferred; otherwise the one
   * least recently used. Waits while every connection is in use.
   */
  async leanAcquire(path?: string): Promise<LeanLease> {
    for (;;) {
      if (this.closed) throw new DriverError(`${this.label} is closed`, { scope: "store", code: "ECLOSED" });
      const idle = this.slots.filter((s) => !s.busy && !s.unused);
      if (idle.length === 0) {
        await new Promise<void>((r) => this.leanWaiters.push(r));
        continue;
      }
      // The connection that has the folder selected; else one whose selection no open folder
      // still needs (the folder being applied keeps its own for its verification, while the
      // next one is listed on the other); else the least recently used.
      // A connection that is up before one that must first log in (a login in front of the run's
      // first command costs a round trip or two); among those alike, the least recently used.
      const up = (s: LeanSlot) => s.client?.usable === true;
      const lru = (list: LeanSlot[]) =>
        list.reduce((a, b) => (up(a) !== up(b) ? (up(a) ? a : b) : b.lastUsed < a.lastUsed ? b : a));
      const spare = idle.filter((s) => !this.inUse(s.client ? selectedPath(s.client) : undefined));
      const slot =
        idle.find((s) => path !== undefined && s.client && selectedPath(s.client) === path) ??
        (spare.length > 0 ? lru(spare) : lru(idle));
      slot.busy = true;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        slot.busy = false;
        slot.lastUsed = performance.now();
        this.flowStale = true;
        this.leanWaiters.shift()?.();
      };
      try {
        return { client: await this.leanConnect(slot), release };
      } catch (err) {
        release();
        // A spare connection the server will not let in (a per-user connection limit, say) while
        // another of ours is logged in: the store goes on with the ones it has.
        if (!slot.wasUp && this.slots.some((s) => s !== slot && s.client?.usable)) {
          slot.unused = true;
          this.opts.debug?.(`${this.label}: going on without a lean connection the server refused`);
          continue;
        }
        throw err;
      }
    }
  }

  /** The slot's connection, opened (or replaced) as needed. */
  private leanConnect(slot: LeanSlot): Promise<LeanClient> {
    const up = slot.client;
    if (up?.usable && up.idleMs <= LEAN_MAX_IDLE_MS) return Promise.resolve(up);
    if (slot.opening) return slot.opening;
    const opening = this.leanLogin(slot).finally(() => {
      if (slot.opening === opening) slot.opening = undefined;
    });
    slot.opening = opening;
    return opening;
  }

  /** A new connection for the slot (leanConnect() found none usable), the old one let go. */
  private async leanLogin(slot: LeanSlot): Promise<LeanClient> {
    let client = slot.client;
    slot.client = null;
    if (client?.usable) void client.logout(500);
    else client?.destroy();
    this.opts.debug?.(`${this.label}: opening a lean connection`);
    try {
      client = await LeanClient.open(this.opts);
    } catch (err) {
      throw connectError(err, {
        user: this.opts.user,
        host: this.opts.host,
        port: this.opts.port,
        tls: this.opts.tls,
      });
    }
    if (this.closed) {
      client.destroy();
      throw new DriverError(`${this.label} is closed`, { scope: "store", code: "ECLOSED" });
    }
    slot.client = client;
    slot.wasUp = true;
    return client;
  }

  /** Folders open on this store, by server path (several handles of one folder count each). */
  private readonly openPaths = new Map<string, number>();

  folderOpened(path: string): void {
    this.openPaths.set(path, (this.openPaths.get(path) ?? 0) + 1);
  }

  folderClosed(path: string): void {
    const n = (this.openPaths.get(path) ?? 0) - 1;
    if (n > 0) this.openPaths.set(path, n);
    else this.openPaths.delete(path);
  }

  private inUse(path: string | undefined): boolean {
    return path !== undefined && this.openPaths.has(path);
  }

  leanError(err: unknown, what: string, scope: ErrorScope, code = "EIMAP"): DriverError {
    if (err instanceof DriverError) {
      if (err.code !== "EPROTOCOL") return err;
      return new DriverError(`${what}: ${err.message}`, {
        scope: err.scope,
        code: err.code,
        retryable: err.retryable,
        cause: err,
      });
    }
    if (this.closed) {
      return new DriverError(`${what}: ${this.label} was closed`, {
        scope: "store",
        code: "ECLOSED",
        cause: err,
      });
    }
    return commandError(err, what, scope, code);
  }

  setExpungeSink(sink: ExpungeSink | null): void {
    this.expungeSink = sink;
  }

  async lockMailbox(path: string, name: string, identity: string, what: string) {
    const client = await this.conn();
    let lock: { release(): void };
    try {
      lock = await client.getMailboxLock(path);
    } catch (err) {
      throw selectError(err, name, what);
    }
    try {
      await this.syncFlow(client);
    } catch (err) {
      lock.release();
      throw commandError(err, `${what} in "${name}"`, "folder");
    }
    const mailbox = client.mailbox;
    if (!mailbox || String(mailbox.uidValidity) !== identity) {
      lock.release();
      if (!mailbox) throw new DriverError(`${what}: folder "${name}" is not selected`, { scope: "folder" });
      throw new DriverError(
        `Folder "${name}" changed its UIDVALIDITY from ${identity} to ${String(mailbox.uidValidity)} while open: every known key is invalid`,
        { scope: "folder", code: "EUIDVALIDITY" },
      );
    }
    return { client, mailbox, release: () => lock.release() };
  }

  async withMailbox<T>(
    path: string,
    name: string,
    identity: string | undefined,
    what: string,
    fn: (client: ImapFlow, mailbox: MailboxObject) => Promise<T>,
  ): Promise<T> {
    const client = await this.conn();
    let lock: { release(): void };
    try {
      lock = await client.getMailboxLock(path);
    } catch (err) {
      throw selectError(err, name, what);
    }
    try {
      await this.syncFlow(client);
      const mailbox = client.mailbox;
      if (!mailbox) throw new DriverError(`${what}: folder "${name}" is not selected`, { scope: "folder" });
      if (identity !== undefined && String(mailbox.uidValidity) !== identity) {
        throw new DriverError(
          `Folder "${name}" changed its UIDVALIDITY from ${identity} to ${String(mailbox.uidValidity)} while open: every known key is invalid`,
          { scope: "folder", code: "EUIDVALIDITY" },
        );
      }
      return await fn(client, mailbox);
    } catch (err) {
      if (this.closed && !(err instanceof DriverError)) {
        throw new DriverError(`${what} in "${name}": ${this.label} was closed`, {
          scope: "store",
          code: "ECLOSED",
          cause: err,
        });
      }
      throw commandError(err, `${what} in "${name}"`, "folder");
    } finally {
      lock.release();
    }
  }

  /**
   * The folders, by LIST on the lean connection where its answer is plain (read as imapflow reads
   * it: listMailboxes), else by imapflow's LIST.
   */
  async listFolders(): Promise<FolderInfo[]> {
    const what = `Listing the folders of ${this.label}`;
    let entries: Array<{
      path: string;
      delimiter: string | null | undefined;
      flags: Iterable<string>;
    }> | null;
    const lease = await this.leanAcquire();
    try {
      entries = await listMailboxes(lease.client, this.ns.prefix);
    } catch (err) {
      throw this.leanError(err, what, "store");
    } finally {
      lease.release();
    }
    if (!entries) {
      const client = await this.conn();
      try {
        entries = await client.list({ listOnly: true });
      } catch (err) {
        throw commandError(err, what, "store");
      }
    }
    const out: FolderInfo[] = [];
    for (const entry of entries) {
      const name = nameFromServerPath(entry.path, entry.delimiter ?? this.ns.delimiter, this.ns);
      if (typeof name !== "string") {
        this.opts.onWarning?.(`${this.label}: skipping a folder: ${name.refused}`);
        continue;
      }
      const noselect = hasFlag(entry.flags, "\\Noselect") || hasFlag(entry.flags, "\\NonExistent");
      out.push(noselect ? { name, noselect: true } : { name });
    }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  async createFolder(name: string): Promise<void> {
    const client = await this.conn();
    // Only the folder itself; the server keeps missing parents as it likes (\Noselect), as the
    // Maildir side does, so neither side gains a folder the other lacks.
    const path = serverPathFromName(name, this.ns);
    if (path === "INBOX") return;
    try {
      await client.mailboxCreate(path);
    } catch (err) {
      throw commandError(err, `Creating folder "${name}"`, "folder", "ECREATE");
    }
  }

  async removeFolder(name: string): Promise<void> {
    const path = serverPathFromName(name, this.ns);
    if (path === "INBOX") {
      throw new DriverError("INBOX cannot be removed", { scope: "folder", code: "EBADNAME" });
    }
    const client = await this.conn();
    try {
      // Deleting the selected mailbox is allowed, but leave no stale selection behind.
      if (client.mailbox && client.mailbox.path === path) await client.mailboxClose();
      await client.mailboxDelete(path);
    } catch (err) {
      throw commandError(err, `Removing folder "${name}"`, "folder", "EREMOVE");
    }
  }

  async openFolder(name: string, opts?: OpenOptions): Promise<Folder> {
    const path = serverPathFromName(name, this.ns);
    if (opts?.lookOnly) return (await this.openLean(name, path, false))!;
    // Folders open on the lean connection: the run's first by a SELECT, whose PERMANENTFLAGS tell
    // whether the server keeps keywords, the others by an EXAMINE; a lean connection SELECTs a
    // folder only when something is written to it. Dovecot rescans a recently changed Maildir
    // folder at every SELECT or EXAMINE (0.01-0.25 s for 5,000 messages, measured), so a folder
    // that is only read is opened once, not twice.
    // A folder the caller means to write (opts.writes) is SELECTed at once: its first write then
    // needs no SELECT after the EXAMINE, one rescan fewer of a folder Dovecot may have to rescan.
    const folder = await this.openLean(name, path, true, !this.keywordsSeen || opts?.writes === true);
    if (folder) return folder;
    const client = await this.conn();
    const wasSelected = !!client.mailbox && client.mailbox.path === path;
    return await this.withMailbox(path, name, undefined, "Opening the folder", async (c) => {
      // A fresh SELECT, so that UIDNEXT, HIGHESTMODSEQ and the count are as of now.
      const mailbox = wasSelected ? await c.mailboxOpen(path) : c.mailbox;
      if (!mailbox) throw new DriverError(`Folder "${name}" could not be selected`, { scope: "folder" });
      this.learnFromSelect(name, mailbox.permanentFlags, mailbox.readOnly === true);
      return new ImapFolder(this, name, path, mailbox, this.caps.keywords);
    });
  }

  printFolders(names: readonly string[]): Map<string, Promise<FolderPrint | undefined>> {
    const out = new Map<string, Promise<FolderPrint | undefined>>();
    // INBOX last: where new mail lands, so the folder a run most often syncs after the batch; the
    // batch's last folder stays selected, and the sync reads it on that selection (warm()).
    const order = [...names].sort((a, b) => Number(a === "INBOX") - Number(b === "INBOX"));
    const paths = order.map((name) => serverPathFromName(name, this.ns));
    const prints = printBatch(
      paths,
      () => this.leanAcquire(),
      LEAN_SLOTS,
      (err) => this.leanError(err, "Listing flags", "store"),
      // The run's one SELECT for PERMANENTFLAGS goes into the batch, on its last folder (INBOX):
      // no later open needs its own, and INBOX stays selected read-write for the run's writes.
      this.keywordsSeen
        ? undefined
        : {
            selected: (path, sel) =>
              this.learnFromSelect(order[paths.indexOf(path)]!, sel.permanentFlags, sel.readOnly === true),
          },
    );
    for (let i = 0; i < order.length; i++) out.set(order[i]!, prints[i]!);
    return out;
  }

  /**
   * Store.warm: a lean connection still has the folder selected, as the print batch or a folder
   * handle left it; opening it then costs a NOOP instead of an EXAMINE (a rescan, for Dovecot, of
   * a folder changed in the last seconds).
   */
  warm(name: string): boolean {
    let path: string;
    try {
      path = serverPathFromName(name, this.ns);
    } catch {
      return false;
    }
    return this.slots.some((s) => !s.busy && s.client !== null && selectedPath(s.client) === path);
  }

  /** A SELECT of this session has shown whether the server keeps keywords (caps.keywords). */
  private keywordsSeen = false;

  /** What the run's first SELECT tells: no PERMANENTFLAGS, or one with \*, keeps keywords. */
  private learnFromSelect(
    name: string,
    permanentFlags: Iterable<string> | undefined,
    readOnly: boolean,
  ): void {
    this.caps.keywords = !permanentFlags || [...permanentFlags].includes("\\*");
    this.keywordsSeen = true;
    if (readOnly) this.opts.onWarning?.(`${this.label}: folder "${name}" is read-only`);
  }

  /**
   * A folder opened on the lean connection, by an EXAMINE (or the run's first SELECT: `select`)
   * instead of a SELECT on imapflow's. Look only: every write is refused. Writable: writes SELECT
   * it (read-write) on a lean connection when they come; undefined when the answer gave no
   * HIGHESTMODSEQ although the server lists changes incrementally (the caller then SELECTs, which
   * states it).
   */
  private async openLean(
    name: string,
    path: string,
    writable: boolean,
    select = false,
  ): Promise<Folder | undefined> {
    const lease = await this.leanAcquire(path);
    let sel: Selected;
    try {
      // Still selected on this connection (the print batch's, say): a NOOP instead of an EXAMINE,
      // where the selection still states the UIDNEXT and HIGHESTMODSEQ the folder's marker needs.
      const kept = await keptSelection(lease.client, path, select);
      const whole =
        kept?.uidNext !== undefined &&
        (kept.highestModseq !== undefined || !lease.client.caps.has("CONDSTORE"));
      sel = whole ? kept : await startExamine(lease.client, path, select ? "SELECT" : "EXAMINE");
    } catch (err) {
      throw examineError(this, err, name, "Opening the folder");
    } finally {
      lease.release();
    }
    if (sel.uidValidity === undefined)
      throw new DriverError(`Folder "${name}" has no UIDVALIDITY`, { scope: "folder", code: "ESELECT" });
    const mailbox = {
      path,
      uidValidity: BigInt(sel.uidValidity),
      uidNext: sel.uidNext ?? 0,
      exists: sel.exists ?? 0,
      flags: new Set(sel.flags ?? []),
      ...(sel.permanentFlags ? { permanentFlags: new Set(sel.permanentFlags) } : {}),
      ...(sel.readOnly ? { readOnly: true } : {}),
      ...(sel.highestModseq !== undefined
        ? { highestModseq: BigInt(sel.highestModseq) }
        : { noModseq: true }),
    } as unknown as MailboxObject;
    if (writable && this.caps.incremental && sel.highestModseq === undefined) return undefined;
    // Keywords are learnt from the run's first SELECT only: they hold for the whole store.
    if (select && !this.keywordsSeen) this.learnFromSelect(name, sel.permanentFlags, sel.readOnly === true);
    return new ImapFolder(this, name, path, mailbox, this.caps.keywords, !writable);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A lean command in flight is aborted (its caller gets ECLOSED); an idle one logs out.
    const leanDone: Promise<unknown>[] = [];
    for (const slot of this.slots) {
      const lean = slot.client;
      slot.client = null;
      if (lean?.busy) lean.destroy();
      else if (lean) leanDone.push(lean.logout(2_000));
    }
    // Whoever waits for a connection learns that the store is closed.
    for (const wake of this.leanWaiters.splice(0)) wake();
    try {
      await this.closeFlow();
    } finally {
      await Promise.allSettled(leanDone);
    }
  }

  private async closeFlow(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (!client) return;
    if (!client.usable) {
      client.close();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.logout(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 5_000);
        }),
      ]);
    } catch {
      // the connection is closed below either way
    } finally {
      clearTimeout(timer);
      client.close();
    }
  }
}

function hasFlag(flags: Iterable<string> | undefined, flag: string): boolean {
  if (!flags) return false;
  for (const f of flags) if (f.toLowerCase() === flag.toLowerCase()) return true;
  return false;
}

function selectError(err: unknown, name: string, what: string): DriverError {
  const e = err as { mailboxMissing?: boolean; serverResponseCode?: string; responseText?: string };
  if (e && (e.mailboxMissing || e.serverResponseCode === "NONEXISTENT")) {
    return new DriverError(`Folder "${name}" does not exist on the server`, {
      scope: "folder",
      code: "ENOFOLDER",
      cause: err,
    });
  }
  return commandError(err, `${what}: selecting folder "${name}"`, "folder", "ESELECT");
}
