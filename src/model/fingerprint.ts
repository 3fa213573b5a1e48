/**
 * The fingerprint of a listing (keys and flags), as the proof keeps it (engine/proof.ts): no sort
 * and no copy. The sum, lane by lane mod 2^32, of a 128-bit value per entry (two 32-bit hashes of
 * its key, NUL and flags sorted and joined by spaces, by two different mixings, spread over four
 * lanes), with the count. A sum is the same in any order, so a Maildir's directory order and a
 * server's UID order agree without sorting 100,000 entries; a changed, added or lost entry changes
 * the sum unless its hash collides (2^-64 for accidents). Not a cryptographic hash: it guards
 * against mistakes, and whoever can shape keys and flags in a store can change the mail itself.
 *
 * Drivers feed it straight from what they read (a file name, a UID), so that a listing that is
 * only to be printed is never built: key() or keyOf(), optionally keyDigits(), then flags().
 */
/** Where a key's hash stood (ListingPrint.mark). */
export interface KeyMark {
  readonly a: number;
  readonly b: number;
}

export class ListingPrint {
  private a = 0;
  private b = 0;
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private n = 0;

  /** Starts an entry whose key is `text` up to `end` (a Maildir name without its `:2,` part). */
  key(text: string, end = text.length): void {
    this.a = 0x811c9dc5;
    this.b = 0x9747b28c;
    this.chars(text, end);
  }

  /** Continues the key with the decimal digits of `n` (a UID after `<UIDVALIDITY>/`). */
  keyDigits(n: number): void {
    let p = 1;
    while (p * 10 <= n) p *= 10;
    for (; p >= 1; p /= 10) this.mix(48 + (Math.floor(n / p) % 10));
  }

  /** Continues the key with one decimal digit (0–9). */
  keyDigit(d: number): void {
    this.mix(48 + d);
  }

  /**
   * The key hashed so far: a later entry whose key starts with the same characters may start from
   * it (resume()) instead of hashing them again, as a key's hash depends on its characters alone.
   */
  mark(): KeyMark {
    return { a: this.a, b: this.b };
  }

  /** Starts an entry whose key begins as the one mark() was taken of. */
  resume(mark: KeyMark): void {
    this.a = mark.a;
    this.b = mark.b;
  }

  /**
   * A print to go on from: `digest` as digest() gave it (undefined when it is not one). A sum can
   * be kept up to date as entries come and go: add the new ones, drop() the old ones.
   */
  static from(digest: string): ListingPrint | undefined {
    const m = /^m1:(\d+):([0-9a-f]{8})([0-9a-f]{8})([0-9a-f]{8})([0-9a-f]{8})$/.exec(digest);
    if (!m) return undefined;
    const p = new ListingPrint();
    p.n = Number(m[1]);
    p.s0 = Number.parseInt(m[2]!, 16) | 0;
    p.s1 = Number.parseInt(m[3]!, 16) | 0;
    p.s2 = Number.parseInt(m[4]!, 16) | 0;
    p.s3 = Number.parseInt(m[5]!, 16) | 0;
    return p;
  }

  /** Adds one entry: key() then flags(). */
  add(key: string, flags: readonly string[]): void {
    this.key(key);
    this.flags(flags);
  }

  /** Takes out one entry that was added (the print is then that of the listing without it). */
  drop(key: string, flags: readonly string[]): void {
    this.key(key);
    this.flags(flags, -1);
  }

  /** Ends the entry with its flags (any order; the caller's array is not changed). */
  flags(flags: readonly string[], sign: 1 | -1 = 1): void {
    const sorted = flags.length < 2 || isSorted(flags) ? flags : [...flags].sort();
    // NUL ends the key, a space separates flags: neither occurs in a key or a flag we keep.
    this.mix(0);
    for (let f = 0; f < sorted.length; f++) {
      if (f > 0) this.mix(32);
      const flag = sorted[f]!;
      this.chars(flag, flag.length);
    }
    this.end(sign);
  }

  /**
   * What flags() hashes for `flags`, as one string: NUL, then the flags sorted and joined by
   * spaces. A loop over many entries with few distinct flag sets makes it once per set and ends
   * each entry with flagText(): the print is the same, and an entry costs the hash of one string
   * instead of a sort check and a loop over its flags.
   */
  static flagText(flags: readonly string[]): string {
    return `\0${(flags.length < 2 || isSorted(flags) ? flags : [...flags].sort()).join(" ")}`;
  }

  /** flags() of the flags `text` (from flagText()) stands for. */
  flagText(text: string): void {
    this.chars(text, text.length);
    this.end(1);
  }

  private end(sign: 1 | -1): void {
    const { a, b } = this;
    this.s0 = (this.s0 + sign * fmix(a ^ 0x3c6ef372)) | 0;
    this.s1 = (this.s1 + sign * fmix(b ^ 0xa54ff53a)) | 0;
    this.s2 = (this.s2 + sign * fmix((a + Math.imul(b, 0x27d4eb2f)) | 0)) | 0;
    this.s3 = (this.s3 + sign * fmix((b ^ Math.imul(a, 0x165667b1)) | 0)) | 0;
    this.n += sign;
  }

  get count(): number {
    return this.n;
  }

  digest(): string {
    const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");
    return `m1:${this.n}:${hex(this.s0)}${hex(this.s1)}${hex(this.s2)}${hex(this.s3)}`;
  }

  private chars(text: string, end: number): void {
    let { a, b } = this;
    for (let i = 0; i < end; i++) {
      const c = text.charCodeAt(i);
      // Two different mixings of the same characters, so that the lanes are not one hash twice.
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    this.a = a;
    this.b = b;
  }

  private mix(c: number): void {
    this.a = Math.imul(this.a ^ c, 0x01000193);
    let b = Math.imul(this.b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
    this.b = b;
  }
}

/** The print of a listing held in hand. */
export function fingerprintOf(entries: Iterable<{ key: string; flags: readonly string[] }>): string {
  const print = new ListingPrint();
  for (const e of entries) {
    print.key(e.key);
    print.flags(e.flags);
  }
  return print.digest();
}

function isSorted(flags: readonly string[]): boolean {
  for (let i = 1; i < flags.length; i++) if (flags[i - 1]! > flags[i]!) return false;
  return true;
}

/** MurmurHash3's 32-bit finalizer: every input bit reaches every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
