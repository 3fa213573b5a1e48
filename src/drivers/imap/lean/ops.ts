// The hot operations over a LeanClient: listing, bulk and streamed reads, streamed APPEND, flag
// changes and removals. A read pipelines an EXAMINE in front of its command and checks UIDVALIDITY;
// a write needs the mailbox SELECTed read-write (see writeSelected).
import { DriverError } from "../../driver.js";
import { messageIdOf } from "../message-utils.js";
import { type LeanClient, LeanError, type LiteralSink, type Tagged } from "./client.js";
import {
  Cursor,
  decodeMailboxName,
  encodeMailboxName,
  type FetchRow,
  formatDate,
  formatDateTime,
  isSendableFlag,
  parseEsearch,
  parseFetch,
  parseSearch,
  quoted,
  type Response,
  responseCode,
} from "./parse.js";

export interface Selected {
  uidValidity?: string;
  uidNext?: number;
  exists?: number;
  highestModseq?: string;
  /** The mailbox's FLAGS: the system flags and every keyword defined in it. */
  flags?: string[];
  /** SELECT only: PERMANENTFLAGS (undefined when the server stated none) and [READ-ONLY]. */
  permanentFlags?: string[];
  readOnly?: boolean;
}

export const LIST_ITEMS = "(UID FLAGS RFC822.SIZE INTERNALDATE)";

/** One mailbox of a LIST answer, its name decoded. */
export interface ListedMailbox {
  path: string;
  delimiter: string | null;
  flags: string[];
}

/**
 * `LIST "" "*"`, read the way imapflow reads it (a name is decoded from modified UTF-7; INBOX in
 * any case is INBOX; the namespace prefix is put in front of a name without it; a leading
 * delimiter is dropped). Null when an answer is anything else than plain (an 8-bit or badly
 * encoded name, a response we cannot parse, an XLIST server): the caller asks imapflow instead.
 */
export async function listMailboxes(c: LeanClient, prefix: string): Promise<ListedMailbox[] | null> {
  if (c.caps.has("XLIST") && !c.caps.has("SPECIAL-USE")) return null;
  const out: ListedMailbox[] = [];
  let plain = true;
  await c.command('LIST "" "*"', {
    untagged: (r) => {
      if (!/^\* LIST /i.test(r.text)) return false;
      try {
        const cur = new Cursor(r, 7);
        const flags = cur.atomList();
        cur.skipSpaces();
        const delimiter = cur.string();
        cur.skipSpaces();
        const raw = cur.bytes();
        const wire = typeof raw === "string" ? raw : raw === null ? null : raw.toString("latin1");
        let path = wire === null ? null : decodeMailboxName(wire);
        if (path === null) {
          plain = false;
          return true;
        }
        if (path.toUpperCase() === "INBOX") path = "INBOX";
        else if (prefix && !path.startsWith(prefix)) path = prefix + path;
        if (delimiter && path.startsWith(delimiter)) path = path.slice(1);
        out.push({ path, delimiter, flags });
      } catch {
        plain = false;
      }
      return true;
    },
  });
  return plain ? out : null;
}

/**
 * The first personal namespace (prefix ending in its delimiter), as imapflow takes it; undefined
 * when the server has no NAMESPACE or its answer is not plain (the caller asks imapflow instead).
 */
export async function readNamespace(
  c: LeanClient,
): Promise<{ prefix: string; delimiter: string | null } | undefined> {
  if (!c.caps.has("NAMESPACE")) return undefined;
  let found: { prefix: string; delimiter: string | null } | undefined;
  await c.command("NAMESPACE", {
    untagged: (r) => {
      if (!/^\* NAMESPACE /i.test(r.text)) return false;
      try {
        const cur = new Cursor(r, 12);
        if (cur.peek() !== 40) {
          // NIL: no personal namespace; imapflow then takes "" and ".".
          found = cur.string() === null ? { prefix: "", delimiter: "." } : undefined;
          return true;
        }
        cur.pos++;
        cur.skipSpaces();
        if (cur.peek() !== 40) return true;
        cur.pos++;
        let prefix = cur.string();
        cur.skipSpaces();
        const delimiter = cur.string();
        // imapflow keeps a prefix as sent: one that would need decoding is left to it.
        if (prefix === null || /[^\x20-\x7e]|&/.test(prefix)) return true;
        if (delimiter && prefix && !prefix.endsWith(delimiter)) prefix += delimiter;
        found = { prefix, delimiter };
      } catch {
        found = undefined;
      }
      return true;
    },
  });
  return found ?? undefined;
}

/** The mailbox argument of a command. */
export function mailboxArg(path: string): string {
  const q = quoted(encodeMailboxName(path));
  if (q === null) throw new DriverError(`Cannot name folder "${path}" on the wire`, { scope: "folder" });
  return q;
}

/**
 * Per lean connection: the mailbox its last EXAMINE or SELECT selected, what that said (kept up
 * to date since), the change notices and unclaimed responses accounted for, and whether it may be
 * written (`readWrite`: a SELECT that did not answer [READ-ONLY]).
 */
interface Selection {
  path: string;
  sel: Selected;
  notices: number;
  unclaimed: number;
  readWrite: boolean;
}
const selection = new WeakMap<LeanClient, Selection>();

/** The mailbox the connection's last EXAMINE or SELECT selected, while nothing has made it doubtful. */
export function selectedPath(c: LeanClient): string | undefined {
  const was = selection.get(c);
  return was && was.notices === c.changeNotices ? was.path : undefined;
}

/**
 * When the connection still has `path` selected (nothing but our own EXAMINE, SELECT, NOOPs and
 * writes changed what we know of it), read-write if `write`: a NOOP, awaited, and the selection as
 * it stands after it; else undefined and nothing is sent (the caller selects anew).
 *
 * Why: Dovecot rescans a Maildir folder at every EXAMINE while its directory changed in the last
 * seconds (0.05–0.25 s for 5,000 messages, measured), and a NOOP costs nothing. NOOP makes the
 * server report every change since (RFC 3501 6.1.2), so the view is as current as a new EXAMINE's.
 * It is awaited, not pipelined: Dovecot may run a pipelined command before the NOOP's sync is done,
 * on the older view. The answer keeps UIDVALIDITY, FLAGS and EXISTS (kept up to date from EXISTS
 * and EXPUNGE). UIDNEXT and HIGHESTMODSEQ, which only an EXAMINE states, are kept only while
 * nothing at all came since it: no response that no command took, and a silent NOOP. Under
 * CONDSTORE every change shows (a new message as EXISTS, a removal as EXPUNGE, a flag change as a
 * FETCH with its MODSEQ: RFC 7162), so silence means they still hold; and should a server stay
 * silent anyway, an older marker only makes the next change listing longer, never shorter.
 */
export async function keptSelection(
  c: LeanClient,
  path: string,
  write = false,
): Promise<Selected | undefined> {
  const was = selection.get(c);
  // Only while no change notice came outside the commands that kept the count.
  if (was?.path !== path || was.notices !== c.changeNotices || c.busy) return undefined;
  if (write && !was.readWrite) return undefined;
  const sel: Selected = { ...was.sel };
  let own = 0;
  let said = 0;
  let doubt = false;
  try {
    await c.command("NOOP", {
      // Nothing else is in flight: everything untagged until the NOOP completes is its news.
      untagged: (r) => {
        said++;
        if (mailboxNews(r, sel) || expunged(r, sel)) own++;
        // The selected mailbox could not be brought up to date: Dovecot says "* NO Internal
        // error" when it was deleted (and perhaps made again, with another UIDVALIDITY) meanwhile.
        else if (/^\* (NO|BAD|BYE)\b/i.test(r.text)) doubt = true;
        return true;
      },
    });
  } catch (err) {
    selection.delete(c);
    throw err;
  }
  if (doubt) {
    selection.delete(c);
    return undefined;
  }
  if (selection.get(c) !== was) return undefined;
  if (said > 0 || c.unclaimed !== was.unclaimed) {
    delete sel.uidNext;
    delete sel.highestModseq;
  }
  selection.set(c, { ...was, sel, notices: was.notices + own });
  return { ...sel };
}

/** `n EXPUNGE` on the selected mailbox: one message fewer in `sel`; true when `r` was one. */
function expunged(r: Response, sel: Selected): boolean {
  if (!/^\* \d+ EXPUNGE$/i.test(r.text)) return false;
  if (sel.exists !== undefined) sel.exists--;
  return true;
}

/**
 * EXISTS and FLAGS, as an EXAMINE or a NOOP reports them: recorded in `sel`; true when `r` was one
 * (the client counts both as change notices).
 */
function mailboxNews(r: Response, sel: Selected): boolean {
  const t = r.text;
  const m = /^\* (\d+) EXISTS$/i.exec(t);
  if (m) {
    sel.exists = Number(m[1]);
    return true;
  }
  if (!/^\* FLAGS\b/i.test(t)) return false;
  // Only listFlags() needs them: a list we cannot read (Dovecot sends keywords such as `x(y`
  // unquoted) leaves them unknown instead of breaking every other command.
  try {
    sel.flags = new Cursor(r, 8).atomList();
  } catch {
    delete sel.flags;
  }
  return true;
}

/**
 * Starts EXAMINE (read-only select); the caller pipelines its reads right behind it. `SELECT`
 * (read-write) for the one open that must learn PERMANENTFLAGS, and in front of writes (which
 * must wait for its UIDVALIDITY: writeSelected). Reads use BODY.PEEK and nothing ever CLOSEs, so
 * a read-write selection changes nothing that was not asked for.
 */
export function startExamine(
  c: LeanClient,
  path: string,
  how: "EXAMINE" | "SELECT" = "EXAMINE",
): Promise<Selected> {
  // From here until the answer, the connection's selection is unknown (a failed EXAMINE leaves
  // none selected).
  selection.delete(c);
  const sel: Selected = {};
  let doubt = false;
  // (CONDSTORE): HIGHESTMODSEQ is then always stated (RFC 7162 3.1.8); Dovecot leaves it out of
  // a plain EXAMINE of a mailbox no CONDSTORE session has selected yet.
  const condstore = c.caps.has("CONDSTORE") ? " (CONDSTORE)" : "";
  const done = c.command(`${how} ${mailboxArg(path)}${condstore}`, {
    untagged: (r, head) => {
      if (mailboxNews(r, sel)) return true;
      // A removal once every command sent before is done: news of this mailbox after its EXISTS
      // (Dovecot sends none here), which leaves the count in doubt.
      if (head && /^\* (?:\d+ EXPUNGE|VANISHED)\b/i.test(r.text)) doubt = true;
      // EXAMINE's PERMANENTFLAGS is "()" (nothing may change in a read-only view): only a
      // SELECT's says what the mailbox keeps.
      const perm = /^\* OK \[PERMANENTFLAGS \(([^)]*)\)\]/i.exec(r.text);
      if (perm) {
        if (how === "SELECT") sel.permanentFlags = perm[1]!.split(" ").filter(Boolean);
        return true;
      }
      const m = /^\* OK \[(UIDVALIDITY|UIDNEXT|HIGHESTMODSEQ) (\d+)\]/i.exec(r.text);
      if (m) {
        const key = m[1]!.toUpperCase();
        if (key === "UIDVALIDITY") sel.uidValidity = m[2]!;
        else if (key === "UIDNEXT") sel.uidNext = Number(m[2]);
        else sel.highestModseq = m[2]!;
        return true;
      }
      return false;
    },
  });
  return done.then(
    (tagged) => {
      if (how === "SELECT") sel.readOnly = /^\[READ-ONLY\]/i.test(tagged.text);
      const readWrite = how === "SELECT" && !sel.readOnly;
      // Every notice so far was this answer's or the mailbox's selected before (pipelined ahead of
      // it, its commands all finished first: Dovecot runs an EXAMINE only then); one that comes
      // later is news of this mailbox, and makes the selection doubtful (selectedPath()).
      if (doubt) selection.delete(c);
      else
        selection.set(c, {
          path,
          sel: { ...sel },
          notices: c.changeNotices,
          unclaimed: c.unclaimed,
          readWrite,
        });
      return sel;
    },
    (err: unknown) => {
      selection.delete(c);
      throw err;
    },
  );
}

/** The connection has `path` selected read-write, and nothing since has made that doubtful. */
export function writableSelection(c: LeanClient, path: string): boolean {
  const was = selection.get(c);
  return was !== undefined && was.path === path && was.readWrite && was.notices === c.changeNotices;
}

/**
 * Write commands (UID STORE, UID EXPUNGE) on the mailbox the connection has selected read-write
 * (the caller has checked its UIDVALIDITY: a write must never go out behind a SELECT whose answer
 * is still unknown), pipelined; resolves when all are done, or throws the first failure. What the
 * server reports meanwhile keeps the recorded selection current: EXISTS, FLAGS and `n EXPUNGE`
 * (our own expunges among them) are counted; FETCH (flags, and MODSEQ even after .SILENT under
 * CONDSTORE) is dropped; anything else that is a change notice (VANISHED) is left uncounted, and an
 * untagged NO/BAD drops the selection, so the next command selects afresh.
 */
export async function writeSelected(
  c: LeanClient,
  path: string,
  lines: string[],
  /** Maps the failure of lines[i] (the first one in order is thrown). */
  failed: (err: unknown, i: number) => unknown = (err) => err,
): Promise<void> {
  const was = selection.get(c);
  if (!was || !writableSelection(c, path)) {
    throw new Error(`A write to "${path}" without its read-write selection (a bug in tandem)`);
  }
  const sel: Selected = { ...was.sel };
  let own = 0;
  let doubt = false;
  const handler = {
    untagged: (r: Response) => {
      if (mailboxNews(r, sel) || expunged(r, sel)) own++;
      else if (/^\* \d+ FETCH\b/i.test(r.text)) {
        // flag and MODSEQ updates: listings fetch them afresh
      } else if (/^\* (NO|BAD)\b/i.test(r.text)) doubt = true;
      else return false;
      return true;
    },
  };
  try {
    await inOrder(
      ...lines.map((line, i) =>
        c.command(line, handler).catch((err: unknown) => {
          throw failed(err, i);
        }),
      ),
    );
  } finally {
    if (selection.get(c) === was) {
      // Our own writes raise HIGHESTMODSEQ: only a fresh EXAMINE states it again.
      delete sel.highestModseq;
      if (doubt) selection.delete(c);
      else selection.set(c, { ...was, sel, notices: was.notices + own });
    }
  }
}

/**
 * UID FETCHes of listing items, one per set, pipelined; resolves with every row once all are
 * done. Rows without UID, size or date (unsolicited) only update the flags of a row already seen.
 */
export async function fetchMetas(c: LeanClient, sets: string[], changedSince?: string): Promise<FetchRow[]> {
  const rows = new Map<number, FetchRow>();
  const suffix = changedSince === undefined ? "" : ` (CHANGEDSINCE ${changedSince})`;
  const handler = {
    untagged: (r: Response) => {
      const row = parseFetch(r);
      if (!row) return false;
      if (row.uid === undefined) return true;
      const had = rows.get(row.uid);
      if (row.size === undefined || row.date === undefined) {
        if (had && row.flags) had.flags = row.flags;
        return true;
      }
      rows.set(row.uid, row);
      return true;
    },
  };
  await inOrder(...sets.map((set) => c.command(`UID FETCH ${set} ${LIST_ITEMS}${suffix}`, handler)));
  return [...rows.values()];
}

/**
 * UID FETCH <set> (UID FLAGS): every message's flags by UID. A later FETCH of the same UID (an
 * unsolicited update) replaces its flags; a FETCH without UID is not ours to place.
 */
export async function fetchFlags(c: LeanClient, set: string): Promise<Map<number, string[]>> {
  const rows = new Map<number, string[]>();
  await c.command(`UID FETCH ${set} (UID FLAGS)`, {
    untagged: (r) => {
      const row = parseFetch(r);
      if (!row) return false;
      if (row.uid !== undefined && row.flags) rows.set(row.uid, row.flags);
      return true;
    },
  });
  return rows;
}

/**
 * Pipelined `UID SEARCH RETURN (ALL) <criteria>` commands (ESEARCH servers only), each answer a
 * compact UID set matched to its command by tag. `changed` records any change notice (EXISTS,
 * EXPUNGE, FETCH, FLAGS, VANISHED) that arrived while they ran: the answers may then mix states.
 */
export class SetSearches {
  /** Criteria → the UID set found ("" for none), once answered. */
  readonly sets = new Map<string, string>();
  changed = false;
  /** An answer was not a UID set, came twice, did not come, or a search was refused. */
  odd = false;
  private readonly started = new Set<string>();
  private readonly done: Promise<unknown>[] = [];
  constructor(private readonly c: LeanClient) {}

  add(criteria: string): void {
    if (this.started.has(criteria)) return;
    this.started.add(criteria);
    let tag = "";
    const cmd = this.c.start(`UID SEARCH RETURN (ALL) ${criteria}`, {
      untagged: (r) => {
        const t = r.text;
        if (CHANGE_NOTICE.test(t)) {
          this.changed = true;
          return true;
        }
        const es = parseEsearch(t);
        if (!es || es.tag !== tag) return false;
        if (!es.uid || this.sets.has(criteria)) this.odd = true;
        this.sets.set(criteria, es.all);
        return true;
      },
    });
    tag = cmd.tag;
    const done = cmd.done.then(
      () => {
        if (!this.sets.has(criteria)) this.odd = true;
      },
      (err: unknown) => {
        // A search the server refused (NO, BAD) only makes the answers unusable; a lost
        // connection (or a failed EXAMINE in front) is the caller's error.
        if (!(err instanceof LeanError) || err.responseStatus === undefined) throw err;
        this.odd = true;
      },
    );
    done.catch(() => {});
    this.done.push(done);
  }

  /** Waits for every search started so far; throws the first failure. */
  async wait(): Promise<void> {
    await inOrder(...this.done);
  }
}

const CHANGE_NOTICE = /^\* (?:\d+ (?:EXISTS|EXPUNGE|FETCH)\b|FLAGS\b|VANISHED\b)/i;

/** UID SEARCH (ESEARCH RETURN (ALL) when offered: a compact answer). */
export function startSearch(c: LeanClient, criteria: string): Promise<number[]> {
  const esearch = c.caps.has("ESEARCH");
  const found: number[] = [];
  let tag = "";
  const started = c.start(esearch ? `UID SEARCH RETURN (ALL) ${criteria}` : `UID SEARCH ${criteria}`, {
    untagged: (r) => {
      // An ESEARCH names its command; a plain SEARCH cannot (only one is ever in flight).
      const own = /^\* ESEARCH \(TAG "([^"]*)"\)/i.exec(r.text);
      if (own && own[1] !== tag) return false;
      const uids = parseSearch(r.text);
      if (!uids) return false;
      for (const u of uids) found.push(u);
      return true;
    },
  });
  tag = started.tag;
  return started.done.then(() => found);
}

export function sinceCriteria(ms: number): string {
  return `SINCE ${formatDate(ms)}`;
}

/** Settles every promise (so that none is left unhandled), then returns them in order or throws the first failure. */
export async function inOrder<T extends unknown[]>(...ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(ps);
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as T;
}

// ---------------------------------------------------------------- a queue with backpressure

/** Items handed from the socket to an async consumer; reading pauses above `high` bytes. */
export class Feed<T> {
  private items: { v: T; n: number }[] = [];
  private bytes = 0;
  private wake: (() => void) | null = null;
  private ended = false;
  private error: unknown = null;
  constructor(
    private readonly c: LeanClient,
    private readonly high: number,
  ) {}

  push(v: T, n: number): void {
    this.items.push({ v, n });
    this.bytes += n;
    if (this.bytes > this.high) this.c.pause();
    this.poke();
  }

  end(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (err !== undefined) this.error = err;
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *drain(): AsyncGenerator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item) {
        this.bytes -= item.n;
        if (this.bytes <= this.high / 2) this.c.resume();
        yield item.v;
        continue;
      }
      if (this.ended) {
        if (this.error !== null) throw this.error;
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }
}

/**
 * UID FETCH <set> (UID BODY.PEEK[]) per set, pipelined, with each message pushed whole to `feed`
 * as it completes. Resolves when every FETCH is done.
 */
export async function fetchBodies(
  c: LeanClient,
  sets: string[],
  feed: Feed<{ uid: number; body: Buffer }>,
): Promise<void> {
  const seen = new Set<number>();
  const handler = {
    untagged: (r: Response) => {
      const row = parseFetch(r);
      if (!row) return false;
      if (row.uid !== undefined && row.body && !seen.has(row.uid)) {
        seen.add(row.uid);
        feed.push({ uid: row.uid, body: row.body }, row.body.length);
      }
      return true;
    },
  };
  await inOrder(...sets.map((set) => c.command(`UID FETCH ${set} (UID BODY.PEEK[])`, handler)));
}

/** UID FETCH uid (BODY.PEEK[]) with the literal streamed to `feed` chunk by chunk. */
export function startFetchStream(
  c: LeanClient,
  uid: number,
  feed: Feed<Buffer>,
): { done: Promise<Tagged>; seen: () => boolean } {
  let seen = false;
  const done = c.command(`UID FETCH ${uid} (BODY.PEEK[])`, {
    literal: (head): LiteralSink | undefined => {
      if (!/ BODY\[\] \{\d+\}$/i.test(head)) return undefined;
      // Only a response that is ours: UID (when it came first) must match.
      const u = / UID (\d+)/i.exec(head);
      if (u && Number(u[1]) !== uid) return undefined;
      seen = true;
      return { chunk: (b) => feed.push(b, b.length), end: () => {} };
    },
    untagged: (r) => {
      // A quoted body (tiny messages) is not a literal.
      const row = parseFetch(r);
      if (!row) return false;
      if (!seen && row.body && (row.uid === undefined || row.uid === uid)) {
        seen = true;
        if (row.body.length) feed.push(row.body, row.body.length);
      }
      return true;
    },
  });
  return { done, seen: () => seen };
}

// ---------------------------------------------------------------- APPEND

/** What a search-based lookup needs about an appended body, gathered while it streams. */
export class BodyProbe {
  size = 0;
  private bareLf = 0;
  private last = -1;
  private header: Buffer[] = [];
  private headerBytes = 0;
  private headerDone = false;

  take(b: Uint8Array): void {
    for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) {
      const prev = i === 0 ? this.last : b[i - 1];
      if (prev !== 13) this.bareLf++;
    }
    if (b.length) this.last = b[b.length - 1]!;
    this.size += b.length;
    if (!this.headerDone) {
      this.header.push(Buffer.from(b));
      this.headerBytes += b.length;
      const joined = Buffer.concat(this.header);
      this.header = [joined];
      if (joined.indexOf("\r\n\r\n") >= 0 || joined.indexOf("\n\n") >= 0 || this.headerBytes > 256 * 1024) {
        this.headerDone = true;
      }
    }
  }

  /** Size as the server counts it (bare LF → CRLF). */
  get crlfSize(): number {
    return this.size + this.bareLf;
  }

  get messageId(): string | undefined {
    return messageIdOf(Buffer.concat(this.header));
  }
}

const STAGE = 256 * 1024;

/**
 * APPEND with the body streamed from `body`: never more than one staging buffer in memory.
 * Returns the tagged OK's text (APPENDUID). On a size mismatch or a failing source the connection
 * is dropped (the server must not take a truncated message) and the error thrown.
 */
export async function appendStream(
  c: LeanClient,
  path: string,
  flags: string[],
  dateMs: number,
  size: number,
  body: AsyncIterable<Uint8Array>,
  probe: BodyProbe | null,
): Promise<{ uidValidity?: string; uid?: number }> {
  const fl = flags.filter(isSendableFlag);
  const plus = c.caps.has("LITERAL+") || (c.caps.has("LITERAL-") && size <= 4096);
  let go: (() => void) | null = null;
  const line = `APPEND ${mailboxArg(path)}${fl.length ? ` (${fl.join(" ")})` : ""} ${formatDateTime(dateMs)} {${size}${plus ? "+" : ""}}\r\n`;
  const { done } = c.start(line, { continuation: () => go?.() }, false, true);
  let finished = false;
  done.then(
    () => (finished = true),
    () => (finished = true),
  );
  if (!plus) {
    // Wait for "+" (or the refusal).
    await Promise.race([
      new Promise<void>((r) => {
        go = r;
      }),
      done,
    ]);
  }
  const stage = Buffer.allocUnsafe(STAGE);
  let staged = 0;
  let sent = 0;
  let complete = false;
  const abort = (err: unknown): never => {
    c.destroy(undefined, true);
    throw err;
  };
  const tooLong = () =>
    new DriverError(`The message body has more than the ${size} bytes its size was given as`, {
      scope: "message",
      code: "ESIZE",
    });
  const flush = async () => {
    if (!staged) return;
    await c.write(stage.subarray(0, staged));
    staged = 0;
  };
  try {
    for await (const chunk of body) {
      if (finished) break; // the server answered early (a refusal): stop sending
      probe?.take(chunk);
      sent += chunk.length;
      if (sent > size) abort(tooLong());
      if (chunk.length >= STAGE / 4) {
        await flush();
        await c.write(chunk);
      } else {
        if (staged + chunk.length > STAGE) await flush();
        stage.set(chunk, staged);
        staged += chunk.length;
      }
    }
    if (!finished) {
      await flush();
      if (sent !== size) {
        abort(
          new DriverError(`The message body has ${sent} bytes, but its size was given as ${size}`, {
            scope: "message",
            code: "ESIZE",
          }),
        );
      }
      await c.write("\r\n");
      complete = true;
    }
  } catch (err) {
    if (err instanceof DriverError && err.code === "ESIZE") throw err;
    // The source failed (or the connection): the literal cannot be completed.
    if (!finished) c.destroy(undefined, true);
    // A lost connection shows as the command's failure.
    await done.catch(() => {});
    throw err;
  }
  // Answered before the literal was complete: nothing more can go on this connection.
  if (!complete) c.destroy(undefined, true);
  const ok = await done;
  const code = responseCode(ok.text);
  if (code?.code === "APPENDUID") {
    const [v, u] = code.args.split(" ");
    const uid = Number(u);
    if (v && Number.isSafeInteger(uid)) return { uidValidity: v, uid };
  }
  return {};
}
