// Parsing and formatting for the lean IMAP client: one untagged response at a time, as the
// connection hands it over (its text in latin1, each `{n}` followed in the text by the next line,
// the literal bytes in `literals`, in order).

/** One complete server response (a line, or lines joined around literals). */
export interface Response {
  /** The response text, latin1 (one char per byte), CRLFs removed; a literal is left as `{n}`. */
  text: string;
  /** The literals announced in `text`, in order. */
  literals: Buffer[];
}

const MONTHS: Record<string, number> = {
  jan: 0,
  feb: 1,
  mar: 2,
  apr: 3,
  may: 4,
  jun: 5,
  jul: 6,
  aug: 7,
  sep: 8,
  oct: 9,
  nov: 10,
  dec: 11,
};
const MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const DATE_TIME = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/;

/** An IMAP date-time ("dd-Mon-yyyy hh:mm:ss +zzzz", day maybe space-padded) in ms; NaN if malformed. */
export function parseDateTime(s: string): number {
  const m = DATE_TIME.exec(s);
  if (!m) return Number.NaN;
  const month = MONTHS[m[2]!.toLowerCase()];
  if (month === undefined) return Number.NaN;
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  const offset = (Number(m[8]) * 60 + Number(m[9])) * 60_000;
  return m[7] === "+" ? utc - offset : utc + offset;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** `"dd-Mon-yyyy hh:mm:ss +0000"` (UTC, whole seconds) for APPEND. */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  return `"${pad2(d.getUTCDate())}-${MONTH_NAMES[d.getUTCMonth()]}-${d.getUTCFullYear()} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000"`;
}

/** `d-Mon-yyyy` (UTC) for SEARCH SINCE. */
export function formatDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCDate()}-${MONTH_NAMES[d.getUTCMonth()]}-${d.getUTCFullYear()}`;
}

/** A mailbox name in modified UTF-7 (RFC 3501 5.1.3); every control character is encoded too. */
export function encodeMailboxName(name: string): string {
  let out = "";
  let i = 0;
  while (i < name.length) {
    const c = name.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      out += c === 0x26 ? "&-" : name[i];
      i++;
      continue;
    }
    let j = i;
    while (j < name.length && (name.charCodeAt(j) < 0x20 || name.charCodeAt(j) > 0x7e)) j++;
    const units = Buffer.alloc((j - i) * 2);
    for (let k = i; k < j; k++) units.writeUInt16BE(name.charCodeAt(k), (k - i) * 2);
    out += `&${units.toString("base64").replace(/=+$/, "").replace(/\//g, ",")}-`;
    i = j;
  }
  return out;
}

/**
 * A mailbox name as a server lists it (modified UTF-7, RFC 3501 5.1.3), decoded: the inverse of
 * encodeMailboxName. Null for a name that is no valid modified UTF-7 (a stray `&`, a bad base64
 * run, an odd number of bytes, an 8-bit byte): the caller then leaves the decoding to imapflow.
 */
export function decodeMailboxName(wire: string): string | null {
  if (/[^\x20-\x7e]/.test(wire)) return null;
  let out = "";
  let i = 0;
  while (i < wire.length) {
    const amp = wire.indexOf("&", i);
    if (amp < 0) {
      out += wire.slice(i);
      break;
    }
    out += wire.slice(i, amp);
    const end = wire.indexOf("-", amp + 1);
    if (end < 0) return null;
    const run = wire.slice(amp + 1, end);
    i = end + 1;
    if (run === "") {
      out += "&";
      continue;
    }
    if (!/^[A-Za-z0-9+,]+$/.test(run)) return null;
    const bytes = Buffer.from(run.replace(/,/g, "/"), "base64");
    // Whole UTF-16 units only, and no bits left over beyond the padding base64 allows.
    if (bytes.length === 0 || bytes.length % 2 !== 0 || Math.floor((run.length * 6) / 8) !== bytes.length)
      return null;
    let units = "";
    for (let k = 0; k < bytes.length; k += 2) units += String.fromCharCode(bytes.readUInt16BE(k));
    // A run must not encode what is sent as itself (printable ASCII): that name has another spelling.
    if (/[\x20-\x7e]/.test(units)) return null;
    out += units;
  }
  return out;
}

/** A quoted string, or null when `s` cannot be one (8-bit, CR, LF, NUL): send a literal then. */
export function quoted(s: string): string | null {
  if (/[^\x01-\x09\x0b\x0c\x0e-\x7f]/.test(s)) return null;
  return `"${s.replace(/[\\"]/g, "\\$&")}"`;
}

/** Keywords and system flags that are safe on a command line (an atom, or `\` + atom). */
export function isSendableFlag(flag: string): boolean {
  return /^\\?[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/.test(flag);
}

// ------------------------------------------------------------------ a cursor over one response

/** Reads tokens of one response: atoms, numbers, quoted strings, literals, lists. */
export class Cursor {
  pos: number;
  private lit = 0;
  constructor(
    readonly r: Response,
    pos = 0,
  ) {
    this.pos = pos;
  }

  get text(): string {
    return this.r.text;
  }

  peek(): number {
    return this.r.text.charCodeAt(this.pos);
  }

  skipSpaces(): void {
    while (this.r.text.charCodeAt(this.pos) === 32) this.pos++;
  }

  atEnd(): boolean {
    return this.pos >= this.r.text.length;
  }

  /** An atom-like token: up to a space, `(` or `)`; `[...]` sections are kept whole (BODY[HEADER]). */
  atom(): string {
    const s = this.r.text;
    const start = this.pos;
    let depth = 0;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 91) depth++;
      else if (c === 93) depth--;
      else if (depth <= 0 && (c === 32 || c === 40 || c === 41)) break;
      this.pos++;
    }
    return s.slice(start, this.pos);
  }

  number(): number {
    const s = this.r.text;
    let n = 0;
    const start = this.pos;
    for (let c = s.charCodeAt(this.pos); c >= 48 && c <= 57; c = s.charCodeAt(++this.pos))
      n = n * 10 + c - 48;
    if (this.pos === start) throw new ParseError(`a number expected at ${start}`);
    return n;
  }

  /** A string value: quoted, literal, or NIL (null), or an atom. Literals come back as latin1. */
  string(): string | null {
    const b = this.bytes();
    return b === null ? null : typeof b === "string" ? b : b.toString("latin1");
  }

  /** Like string(), but a literal stays a Buffer. */
  bytes(): string | Buffer | null {
    const s = this.r.text;
    const c = s.charCodeAt(this.pos);
    if (c === 34) {
      let out = "";
      let i = this.pos + 1;
      let from = i;
      for (;;) {
        if (i >= s.length) throw new ParseError("an unterminated quoted string");
        const ch = s.charCodeAt(i);
        if (ch === 34) break;
        if (ch === 92) {
          out += s.slice(from, i);
          i++;
          from = i;
        }
        i++;
      }
      out += s.slice(from, i);
      this.pos = i + 1;
      return out;
    }
    if (c === 123 || (c === 126 && s.charCodeAt(this.pos + 1) === 123)) {
      const close = s.indexOf("}", this.pos);
      if (close < 0) throw new ParseError("an unterminated literal");
      this.pos = close + 1;
      const lit = this.r.literals[this.lit++];
      if (!lit) throw new ParseError("a literal is missing");
      return lit;
    }
    const a = this.atom();
    return a.toUpperCase() === "NIL" ? null : a;
  }

  /** A parenthesized list of atoms (FLAGS). */
  atomList(): string[] {
    if (this.peek() !== 40) throw new ParseError("a list expected");
    this.pos++;
    const out: string[] = [];
    for (;;) {
      this.skipSpaces();
      if (this.atEnd()) throw new ParseError("an unterminated list");
      if (this.peek() === 41) {
        this.pos++;
        return out;
      }
      const a = this.peek() === 34 || this.peek() === 123 ? (this.string() ?? "") : this.atom();
      if (!a) throw new ParseError("an empty list element");
      out.push(a);
    }
  }

  /** Skips any one value: atom, number, string, literal or a nested list. */
  skipValue(): void {
    const c = this.peek();
    if (c === 40) {
      this.pos++;
      for (;;) {
        this.skipSpaces();
        if (this.atEnd()) throw new ParseError("an unterminated list");
        if (this.peek() === 41) {
          this.pos++;
          return;
        }
        this.skipValue();
      }
    }
    if (c === 34 || c === 123 || c === 126) {
      this.bytes();
      return;
    }
    if (!this.atom()) throw new ParseError(`an unexpected character at ${this.pos}`);
  }
}

export class ParseError extends Error {
  override name = "ParseError";
}

// ------------------------------------------------------------------ FETCH

export interface FetchRow {
  seq: number;
  uid?: number;
  flags?: string[];
  size?: number;
  /** INTERNALDATE in ms. */
  date?: number;
  /** BODY[] (a literal, or a quoted string as latin1 bytes). */
  body?: Buffer;
}

const FETCH_HEAD = /^\* (\d+) FETCH \(/i;

/**
 * The items of an untagged FETCH response, or null for any other response. Knows UID, FLAGS,
 * RFC822.SIZE, INTERNALDATE and BODY[]; skips anything else (MODSEQ, other sections).
 */
export function parseFetch(r: Response): FetchRow | null {
  const head = FETCH_HEAD.exec(r.text);
  if (!head) return null;
  const row: FetchRow = { seq: Number(head[1]) };
  const c = new Cursor(r, head[0].length);
  for (;;) {
    c.skipSpaces();
    if (c.atEnd()) throw new ParseError("an unterminated FETCH response");
    if (c.peek() === 41) break;
    const name = c.atom().toUpperCase();
    if (!name) throw new ParseError(`an unexpected character at ${c.pos} of a FETCH response`);
    c.skipSpaces();
    switch (name) {
      case "UID":
        row.uid = c.number();
        break;
      case "RFC822.SIZE":
        row.size = c.number();
        break;
      case "FLAGS":
        row.flags = c.atomList();
        break;
      case "INTERNALDATE": {
        const s = c.string();
        row.date = s === null ? Number.NaN : parseDateTime(s);
        break;
      }
      case "BODY[]": {
        const b = c.bytes();
        if (b !== null) row.body = typeof b === "string" ? Buffer.from(b, "latin1") : b;
        break;
      }
      default:
        c.skipValue();
    }
  }
  return row;
}

/** Flags as the listing reports them: `\Recent` dropped. */
export function listingFlags(flags: readonly string[]): string[] {
  const out: string[] = [];
  for (const f of flags) if (f.length !== 7 || f.toLowerCase() !== "\\recent") out.push(f);
  return out;
}

// ------------------------------------------------------------------ status responses

/** `[CODE args]` at the start of a status text: code upper-cased, args as sent. */
export function responseCode(text: string): { code: string; args: string } | null {
  const m = /^\[([^\s\]]+)(?: ([^\]]*))?\]/.exec(text);
  return m ? { code: m[1]!.toUpperCase(), args: m[2] ?? "" } : null;
}

/** The UIDs of `* SEARCH …` or `* ESEARCH … UID ALL set`; null for other responses. */
export function parseSearch(text: string): number[] | null {
  if (/^\* SEARCH\b/i.test(text)) {
    const out: number[] = [];
    for (const part of text.slice(8).split(" ")) {
      if (!part) continue;
      if (part.startsWith("(")) break; // (MODSEQ n)
      const n = Number(part);
      if (Number.isSafeInteger(n) && n > 0) out.push(n);
    }
    return out;
  }
  if (/^\* ESEARCH\b/i.test(text)) {
    const m = /\bALL ([0-9:,]+)/i.exec(text);
    if (!m) return [];
    const out: number[] = [];
    for (const part of m[1]!.split(",")) {
      const [a, b] = part.split(":");
      const lo = Number(a);
      const hi = b === undefined ? lo : Number(b);
      if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) continue;
      for (let u = Math.min(lo, hi); u <= Math.max(lo, hi); u++) out.push(u);
    }
    return out;
  }
  return null;
}

/** The parts of `* ESEARCH (TAG "t") [UID] [ALL set]` (other return data is skipped); null for other responses. */
export function parseEsearch(text: string): { tag: string | undefined; uid: boolean; all: string } | null {
  if (!/^\* ESEARCH\b/i.test(text)) return null;
  const m = /^\* ESEARCH(?: \(TAG "([^"]*)"\))?( UID(?= |$))?/i.exec(text)!;
  const all = / ALL ([0-9:,]+)/i.exec(text.slice(m[0].length));
  return { tag: m[1], uid: m[2] !== undefined, all: all ? all[1]! : "" };
}

/**
 * A UID set as ascending, disjoint ranges lo[i]..hi[i]; base[i] is the position (0-based) of lo[i]
 * in the whole set, count the number of UIDs.
 */
export interface UidRanges {
  lo: number[];
  hi: number[];
  base: number[];
  count: number;
}

/**
 * Reads the ranges `a` or `a:b` of a set, calling `range(lo, hi)` for each (lo ≤ hi). False when
 * the set is malformed (empty parts, zero, `*`, numbers beyond 32 bits).
 */
function eachRange(set: string, range: (lo: number, hi: number) => boolean): boolean {
  const n = set.length;
  // Never a read past the end (NaN): V8 drops its optimized code for such reads.
  const at = (k: number) => (k < n ? set.charCodeAt(k) : -1);
  let i = 0;
  while (i < n) {
    let a = 0;
    const startA = i;
    for (let c = at(i); c >= 48 && c <= 57; c = at(++i)) a = a * 10 + c - 48;
    if (i === startA || a < 1 || a > 0xffffffff) return false;
    let b = a;
    if (at(i) === 58) {
      const startB = ++i;
      b = 0;
      for (let c = at(i); c >= 48 && c <= 57; c = at(++i)) b = b * 10 + c - 48;
      if (i === startB || b < 1 || b > 0xffffffff) return false;
    }
    if (i < n && set.charCodeAt(i++) !== 44) return false;
    if (i === n && set.charCodeAt(n - 1) === 44) return false;
    if (!(a <= b ? range(a, b) : range(b, a))) return false;
  }
  return true;
}

/** The ranges of a set given in ascending order without overlaps; null otherwise (or malformed). */
export function parseUidRanges(set: string): UidRanges | null {
  const r: UidRanges = { lo: [], hi: [], base: [], count: 0 };
  let last = 0;
  const ok = eachRange(set, (lo, hi) => {
    if (lo <= last) return false;
    const k = r.lo.length;
    if (k && lo === last + 1) {
      // Adjacent ranges ("1:3,4:6") are one.
      r.hi[k - 1] = hi;
    } else {
      r.lo.push(lo);
      r.hi.push(hi);
      r.base.push(r.count);
    }
    r.count += hi - lo + 1;
    last = hi;
    return true;
  });
  return ok ? r : null;
}

/**
 * Calls `visit(from, to)` with the positions in `all` (inclusive) of the UIDs of `set`, in any
 * order. False when `set` is malformed or names a UID that `all` does not hold.
 */
export function eachPosition(
  set: string,
  all: UidRanges,
  visit: (from: number, to: number) => void,
): boolean {
  const { lo, hi, base } = all;
  const n = lo.length;
  let i = 0;
  return eachRange(set, (a, b) => {
    // The range holding `a`: usually at or just after the last one (sets come ascending).
    if (i >= n || lo[i]! > a) i = 0;
    if (hi[i]! < a) {
      let l = i + 1;
      let h = n;
      while (l < h) {
        const m = (l + h) >>> 1;
        if (hi[m]! < a) l = m + 1;
        else h = m;
      }
      i = l;
    }
    let u = a;
    while (u <= b) {
      if (i >= n || lo[i]! > u) return false;
      const end = Math.min(b, hi[i]!);
      visit(base[i]! + u - lo[i]!, base[i]! + end - lo[i]!);
      u = end + 1;
      if (end === hi[i]) i++;
    }
    return true;
  });
}
