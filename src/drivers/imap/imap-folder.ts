// One selected IMAP mailbox as a Folder. Every call takes imapflow's mailbox lock, re-selects the
// mailbox if another one was selected meanwhile, and refuses to act if UIDVALIDITY changed.
import type { FetchMessageObject, ImapFlow, MailboxObject } from "imapflow";
import type { Flag, MessageMeta } from "../../model/types.js";
import {
  type AppendInput,
  type ChangeListing,
  DriverError,
  type Folder,
  type FolderMarker,
  type ListOptions,
} from "../driver.js";
import { findAppendedUid } from "./append-lookup.js";
import { commandError } from "./errors.js";
import type { StoreContext } from "./imap-store.js";
import { collectBody, sendableFlags, toMeta } from "./message-utils.js";
import { chunkedUidSets, makeKey, uidOfKey } from "./uid-set.js";

const LIST_QUERY = { uid: true, flags: true, size: true, internalDate: true } as const;
const DAY_MS = 24 * 3600 * 1000;
/** Chunk size of a streamed read: one FETCH BODY.PEEK[]<offset.length> per chunk. */
const READ_CHUNK = 1024 * 1024;

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

  constructor(store: StoreContext, name: string, path: string, mailbox: MailboxObject, keywords: boolean) {
    this.store = store;
    this.name = name;
    this.path = path;
    this.identity = String(mailbox.uidValidity);
    this.keywords = keywords;
    this.permanentFlags = mailbox.permanentFlags ? new Set(mailbox.permanentFlags) : undefined;
    this.appendFloor = mailbox.uidNext;
    this.marker = {
      uidNext: mailbox.uidNext,
      ...(mailbox.highestModseq !== undefined && !mailbox.noModseq
        ? { highestModseq: mailbox.highestModseq.toString() }
        : {}),
      count: mailbox.exists,
    };
  }

  private run<T>(what: string, fn: (client: ImapFlow, mailbox: MailboxObject) => Promise<T>): Promise<T> {
    return this.store.withMailbox(this.path, this.name, this.identity, what, fn);
  }

  private uids(keys: readonly string[]): number[] {
    return keys.map((k) => uidOfKey(k, this.identity, this.name));
  }

  private flagsFor(flags: readonly Flag[]): string[] {
    const sendable = sendableFlags(flags, this.permanentFlags);
    return this.keywords ? sendable : sendable.filter((f) => f.startsWith("\\"));
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
    const metas = await this.run("Listing messages", async (client) => {
      let ranges = ["1:*"];
      if (opts?.minDate !== undefined) {
        // SEARCH SINCE compares dates only, in a timezone of the server's choosing: two days of
        // margin make sure nothing inside the window is missed (the result may hold more).
        const since = new Date(opts.minDate - 2 * DAY_MS);
        const found = await client.search({ since }, { uid: true });
        if (!Array.isArray(found)) {
          throw new DriverError(`The server refused SEARCH SINCE in "${this.name}"`, { scope: "folder" });
        }
        if (!found.length) return [];
        ranges = chunkedUidSets(found);
      }
      const all: MessageMeta[] = [];
      for (const range of ranges) all.push(...(await this.fetchMetas(client, range)));
      return all;
    });
    sortByUid(metas);
    yield* metas;
  }

  /**
   * Changes since `since`: `changed` are messages whose flags changed or that are new
   * (FETCH … CHANGEDSINCE), `vanished` the keys below since.uidNext that are gone.
   *
   * `known` (optional, an extension of the Folder interface): the keys the caller holds for this
   * folder. With it, vanished is exact and needs no QRESYNC: the known keys that `UID SEARCH UID
   * 1:<uidNext-1>` no longer finds. Without it, vanished comes from QRESYNC's VANISHED (EARLIER),
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
    const sinceUidNext = since.uidNext;
    const knownUids =
      known === undefined ? undefined : [...known].map((k) => uidOfKey(k, this.identity, this.name));
    return await this.run("Listing changes", async (client) => {
      const qresync = client.enabled.has("QRESYNC");
      if (!qresync && knownUids === undefined) {
        throw new DriverError(
          `Cannot list removed messages in "${this.name}" incrementally: the server has no QRESYNC; pass the known keys or list in full`,
          { scope: "folder", code: "ENOQRESYNC" },
        );
      }
      const reported = new Set<number>();
      this.store.setExpungeSink((uid, earlier) => {
        if (earlier && uid < sinceUidNext) reported.add(uid);
      });
      let changed: MessageMeta[];
      try {
        changed = await this.fetchMetas(client, "1:*", sinceModseq);
      } finally {
        this.store.setExpungeSink(null);
      }
      sortByUid(changed);
      let vanishedUids: number[];
      if (knownUids !== undefined) {
        const old = knownUids.filter((u) => u < sinceUidNext);
        const present = new Set<number>();
        if (old.length) {
          const found = await client.search({ uid: `1:${sinceUidNext - 1}` }, { uid: true });
          if (!Array.isArray(found)) {
            throw new DriverError(`The server refused UID SEARCH in "${this.name}"`, { scope: "folder" });
          }
          // `1:n` also matches the highest UID when every UID is above n; only below counts.
          for (const u of found) if (u < sinceUidNext) present.add(u);
        }
        vanishedUids = old.filter((u) => !present.has(u));
      } else {
        vanishedUids = [...reported];
      }
      vanishedUids.sort((a, b) => a - b);
      return { changed, vanished: vanishedUids.map((u) => makeKey(this.identity, u)) };
    });
  }

  /** The message bytes, streamed in chunks (BODY.PEEK: \Seen is not set). */
  async *read(key: string): AsyncIterable<Uint8Array> {
    const uid = uidOfKey(key, this.identity, this.name);
    // The mailbox stays locked while the caller consumes the stream: every chunk is a FETCH in
    // this mailbox. Do not await other calls on the same store inside the loop.
    const { client, release } = await this.store.lockMailbox(this.path, this.name, this.identity, "Reading");
    let content: NodeJS.ReadableStream | undefined;
    try {
      let dl: Awaited<ReturnType<ImapFlow["download"]>>;
      try {
        dl = await client.download(String(uid), undefined, { uid: true, chunkSize: READ_CHUNK });
      } catch (err) {
        throw commandError(err, `Reading ${key} in "${this.name}"`, "message");
      }
      if (!dl.content) {
        throw new DriverError(`Message ${key} is not in "${this.name}" (any more)`, {
          scope: "message",
          code: "ENOTFOUND",
        });
      }
      content = dl.content;
      try {
        for await (const chunk of dl.content) {
          yield typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
        }
      } catch (err) {
        throw commandError(err, `Reading ${key} in "${this.name}"`, "message");
      }
    } finally {
      (content as { destroy?: () => void } | undefined)?.destroy?.();
      release();
    }
  }

  /**
   * Small messages in one UID FETCH BODY.PEEK[] per UID set: the server streams them back to back,
   * saving a round trip per message. The mailbox stays locked until the loop ends; the caller may
   * write to other stores inside it, never to this one.
   */
  async *readMany(keys: string[]): AsyncIterable<{ key: string; body: Uint8Array }> {
    if (!keys.length) return;
    const uids = this.uids(keys);
    const { client, release } = await this.store.lockMailbox(this.path, this.name, this.identity, "Reading");
    try {
      for (const set of chunkedUidSets(uids)) {
        const rows = client.fetch(
          set,
          { uid: true, source: true },
          { uid: true },
        ) as AsyncIterable<FetchMessageObject>;
        try {
          for await (const msg of rows) {
            if (!msg.uid || !msg.source) continue;
            yield { key: makeKey(this.identity, msg.uid), body: msg.source };
          }
        } catch (err) {
          throw commandError(err, `Reading messages in "${this.name}"`, "folder");
        }
      }
    } finally {
      release();
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

  /**
   * Appends and returns the new key: from APPENDUID (UIDPLUS), else found by a search among the
   * UIDs above the folder's UIDNEXT (Message-ID, size and arrival second must match exactly one).
   * The body is collected into one Buffer first (imapflow's APPEND needs the literal whole).
   */
  async append(input: AppendInput): Promise<string> {
    const body = await collectBody(input.body, input.size);
    const flags = this.flagsFor(input.flags);
    const date = new Date(Math.floor(input.date / 1000) * 1000);
    return await this.run("Appending a message", async (client) => {
      const uidplus = client.capabilities.has("UIDPLUS");
      const floor = this.appendFloor;
      const res = await client.append(this.path, body, flags, date);
      if (!res) throw new DriverError(`APPEND to "${this.name}" was not accepted`, { scope: "folder" });
      let uid: number;
      if (uidplus && res.uid && res.uidValidity !== undefined) {
        if (String(res.uidValidity) !== this.identity) {
          throw new DriverError(
            `Folder "${this.name}" changed its UIDVALIDITY (${this.identity} → ${String(res.uidValidity)}); the message was appended under the new one`,
            { scope: "folder", code: "EUIDVALIDITY" },
          );
        }
        uid = res.uid;
      } else {
        uid = await findAppendedUid(client, { folder: this.name, floor, body, date, exclude: this.appended });
      }
      this.appended.add(uid);
      // Every later APPEND gets a higher UID than this one.
      this.appendFloor = Math.max(this.appendFloor, uid + 1);
      return makeKey(this.identity, uid);
    });
  }

  async setFlags(keys: string[], add: Flag[], remove: Flag[]): Promise<void> {
    if (!keys.length) return;
    const uids = this.uids(keys);
    const toAdd = this.flagsFor(add);
    const toRemove = sendableFlags(remove, undefined).filter((f) => this.keywords || f.startsWith("\\"));
    if (!toAdd.length && !toRemove.length) return;
    await this.run("Setting flags", async (client) => {
      for (const set of chunkedUidSets(uids)) {
        if (toAdd.length && !(await client.messageFlagsAdd(set, toAdd, { uid: true, silent: true }))) {
          throw storeFailed(client, `Adding ${toAdd.join(" ")} in "${this.name}"`);
        }
        if (
          toRemove.length &&
          !(await client.messageFlagsRemove(set, toRemove, { uid: true, silent: true }))
        ) {
          throw storeFailed(client, `Removing ${toRemove.join(" ")} in "${this.name}"`);
        }
      }
    });
  }

  /**
   * Removes exactly these messages: UID STORE +FLAGS (\Deleted), then UID EXPUNGE of the same
   * set. Without UIDPLUS this refuses before changing anything: a plain EXPUNGE would also remove
   * other clients' \Deleted messages.
   */
  async remove(keys: string[]): Promise<void> {
    if (!keys.length) return;
    const uids = this.uids(keys);
    await this.run("Removing messages", async (client) => {
      if (!client.capabilities.has("UIDPLUS")) {
        throw new DriverError(
          `Cannot remove messages from "${this.name}": the server has no UIDPLUS, and a plain EXPUNGE could remove other clients' messages marked \\Deleted`,
          { scope: "folder", code: "ENOUIDPLUS" },
        );
      }
      for (const set of chunkedUidSets(uids)) {
        if (!(await client.messageDelete(set, { uid: true }))) {
          throw storeFailed(client, `Removing messages ${set} from "${this.name}"`);
        }
      }
    });
  }

  async close(): Promise<void> {
    // Nothing to release: the selection stays until another folder is opened or the store closes.
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

function storeFailed(client: ImapFlow, what: string): DriverError {
  if (!client.usable) {
    return new DriverError(`${what}: the connection to the server was lost`, {
      scope: "store",
      code: "ECONNLOST",
      retryable: true,
    });
  }
  return new DriverError(`${what}: the server refused the command`, { scope: "folder", code: "ESTORE" });
}
