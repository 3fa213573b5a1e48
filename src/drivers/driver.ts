import type { Flag, MessageMeta } from "../model/types.js";

/** How a folder is opened (see Store.openFolder). */
export interface OpenOptions {
  lookOnly?: boolean;
  writes?: boolean;
}

/**
 * The one interface every store implements (IMAP, Maildir). The engine sees nothing else.
 *
 * Contract:
 * - Folder names are UTF-8 strings with `/` as the hierarchy separator, whatever the store uses
 *   underneath (IMAP delimiter, modified UTF-7, Maildir++ dots). `INBOX` is spelled `INBOX`.
 * - A `Store` is opened once per run and closed at the end. Calls on one `Store` may run
 *   concurrently only where noted; the engine works one folder at a time per store.
 * - `list()` yields every message of the folder (or, with `since`, only what changed) in ascending
 *   key order as the store defines it; it must be fully consumed or `return()`ed before any other
 *   call on the same folder (IMAP cannot issue commands inside a fetch loop on one connection).
 * - A write (`append`, `setFlags`, `remove`) resolves when the store has made it durable (IMAP:
 *   tagged OK; Maildir: fsynced file) — or, for a folder that has `flush()`, once `flush()` resolved
 *   after it (Maildir: one directory fsync for a batch of renames). Callers make a batch's state
 *   records durable only after that.
 * - Errors are `DriverError`s with a scope (how far the failure reaches) and whether a retry can help.
 *   Any other exception is a bug.
 * - Cancellation: closing the store aborts outstanding calls with a `store`-scoped DriverError.
 */
export interface Store {
  readonly caps: StoreCaps;
  /** A short description for messages, e.g. `imap://me@host:993` or `maildir:/home/me/Mail`. Never a secret. */
  readonly label: string;
  listFolders(): Promise<FolderInfo[]>;
  /**
   * Creates the folder, not its missing parents (those stay implicit: IMAP \Noselect, a bare
   * directory in Maildir), so both sides list the same folders. Creating an existing one is no error.
   */
  createFolder(name: string): Promise<void>;
  /** Removes an (empty) folder. */
  removeFolder(name: string): Promise<void>;
  /**
   * `lookOnly`: the caller will only list the folder (list, listFlags), never read or write it, so
   * the store may open it more cheaply (IMAP: EXAMINE on the listing connection, no SELECT).
   * `writes`: a hint that the caller expects to change messages in it, so the store may open it
   * for writing at once (IMAP: SELECT, instead of an EXAMINE and a SELECT at the first write).
   */
  openFolder(name: string, opts?: OpenOptions): Promise<Folder>;
  /**
   * Optional: each named folder's identity and the print of what its listFlags() would give, as
   * one batch the store may pipeline (IMAP: every EXAMINE and search sent without waiting for the
   * one before). A promise per name, started at once: it gives undefined where this way cannot
   * tell (the caller then opens the folder and prints it), and fails only with the store (a lost
   * connection). Prints are Folder.printFlags() prints; the batch writes nothing. `messages`: about
   * how many messages the folders hold together (a hint: a store may leave a small batch to the
   * caller, when printing it apart costs more than it saves).
   */
  printFolders?(
    names: readonly string[],
    hint?: { messages?: number },
  ): Map<string, Promise<FolderPrint | undefined>>;
  /**
   * Optional: opening this folder now costs less than opening another (IMAP: a connection still
   * has it selected, from printFolders). A hint for the order in which a run opens its folders.
   */
  warm?(name: string): boolean;
  /**
   * Optional: the run expects to write none of this store's folders, so it will not print them
   * again; whatever printFolders kept for such prints (a Maildir's print worker) can go now.
   */
  printsDone?(): void;
  close(): Promise<void>;
}

/** A folder's identity with the print (model/fingerprint.ts) of its listFlags(). */
export interface FolderPrint {
  identity: string;
  count: number;
  fingerprint: string;
}

export interface StoreCaps {
  /** Can store keywords other than the system flags. */
  keywords: boolean;
  /** `list({ since })` returns only changes (IMAP CONDSTORE/QRESYNC). */
  incremental: boolean;
  /** Keys stay valid across runs unless `identity` changes. */
  stableKeys: boolean;
}

export interface FolderInfo {
  name: string;
  /** Folder cannot hold messages (IMAP \Noselect). */
  noselect?: boolean;
}

/** Where a folder stood when it was last listed; opaque to the engine except for equality. */
export interface FolderMarker {
  uidNext?: number;
  highestModseq?: string;
  count?: number;
}

export interface ListOptions {
  /** Only messages with date >= minDate (ms); the store may return more, never fewer. */
  minDate?: number;
  /** Only changes since this marker (when caps.incremental). Removed keys are then reported in `vanished`. */
  since?: FolderMarker;
  /**
   * Keys the caller already knows (from its state). Without `minDate`, a store may skip what it
   * costs to learn their size and date (a Maildir's stat) and report them as NaN; flags are exact.
   */
  known?: ReadonlySet<string>;
}

/** One message as listFlags() gives it. */
export interface KeyFlags {
  key: string;
  flags: Flag[];
}

export interface ChangeListing {
  /** Messages new or changed since the marker. */
  changed: MessageMeta[];
  /** Keys that vanished since the marker. */
  vanished: string[];
}

export interface AppendInput {
  /** The message bytes, streamed. Never collected whole by the driver. */
  body: AsyncIterable<Uint8Array>;
  /** Size in bytes when known up front (IMAP APPEND needs it for the literal). */
  size?: number;
  flags: Flag[];
  /** Arrival date, ms since the epoch. */
  date: number;
}

/** One setFlags() call's arguments. */
export interface FlagChange {
  keys: string[];
  add: Flag[];
  remove: Flag[];
}

export interface Folder {
  readonly name: string;
  /** Changes when every key of the folder becomes invalid (IMAP UIDVALIDITY). Maildir: a constant. */
  readonly identity: string;
  /**
   * The marker as of opening (for incremental listing next time); a store that reads lazily and
   * lists nothing incrementally (Maildir) gives it as of its last listing.
   */
  readonly marker: FolderMarker;
  list(opts?: ListOptions): AsyncIterable<MessageMeta>;
  /**
   * Only when store.caps.incremental. `known`: the keys the caller holds for this folder; with
   * them `vanished` is exact (the known keys no longer present), without them it is the server's word.
   */
  listChanges?(since: FolderMarker, opts?: ListOptions, known?: Iterable<string>): Promise<ChangeListing>;
  /**
   * Optional: what differs from `known` (key → flags as the caller's state has them, sorted and
   * joined by spaces), without a window: `changed` holds every message that is not known or whose
   * flags may differ, each as list({ known }) would give it; `vanished` the known keys no longer
   * present. For a store without change tracking (Maildir: file names only, a stat only for the
   * new files), so that a caller holding the state need not build the whole listing.
   */
  listDiff?(known: ReadonlyMap<string, string>): Promise<ChangeListing>;
  /**
   * Optional: every message's key and flags, nothing else (no size, no date), in any order: the
   * cheapest full listing, for verification (IMAP: compact ESEARCH sets per flag; Maildir: the
   * file names, no stat). Flags exactly as list() gives them. Like list(), it must finish before
   * another call on this folder.
   */
  listFlags?(): Promise<KeyFlags[]>;
  /**
   * Optional: the print (model/fingerprint.ts) of what listFlags() would give, fed straight from
   * what the store reads, without building that listing; undefined when this way cannot tell
   * (the caller then prints listFlags()). Where it is not listFlags()' print, it must be the print
   * of no listing at all (a key twice is such), so that a proof can only fail by it, never pass.
   */
  printFlags?(): Promise<{ count: number; fingerprint: string } | undefined>;
  /** The message bytes, exactly as stored. */
  read(key: string): AsyncIterable<Uint8Array>;
  /**
   * Optional: several small messages in one pipelined request (IMAP: one UID FETCH BODY.PEEK[]),
   * yielded whole, in any order. For messages the caller knows to be small; large ones go through
   * read(). Like list(), it must be consumed or return()ed before another call on this folder.
   */
  readMany?(keys: string[]): AsyncIterable<{ key: string; body: Uint8Array }>;
  /** Only the header section (up to and including the blank line), for Message-ID matching. */
  readHeader(key: string): Promise<Uint8Array>;
  /** Returns the new key. Flags the store cannot keep are dropped silently (see caps.keywords). */
  append(input: AppendInput): Promise<string>;
  /** Adds and removes flags on the given keys; one call per distinct change. */
  setFlags(keys: string[], add: Flag[], remove: Flag[]): Promise<void>;
  /**
   * Optional: several setFlags() at once, for a store that can send them together (IMAP: one
   * selection, the STOREs pipelined). On failure any of them may have been made.
   */
  setFlagsMany?(changes: ReadonlyArray<FlagChange>): Promise<void>;
  /** Removes exactly these messages (never others, e.g. another client's \Deleted mail). */
  remove(keys: string[]): Promise<void>;
  /** Optional: makes every write since the last call durable (see the contract above). */
  flush?(): Promise<void>;
  /**
   * Optional: the flags the caller's state gives some keys it is about to write (setFlags,
   * remove). A store that finds a message by a name its flags make (Maildir) may look there first
   * instead of reading the whole folder; only a hint: where it is wrong, the store looks as before.
   */
  expect?(known: ReadonlyMap<string, readonly Flag[]>): void;
  close(): Promise<void>;
}

export type ErrorScope = "message" | "folder" | "store";

export class DriverError extends Error {
  readonly scope: ErrorScope;
  readonly retryable: boolean;
  readonly code: string;
  constructor(
    message: string,
    opts: { scope: ErrorScope; retryable?: boolean; code?: string; cause?: unknown },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "DriverError";
    this.scope = opts.scope;
    this.retryable = opts.retryable ?? false;
    this.code = opts.code ?? "EDRIVER";
  }
}
