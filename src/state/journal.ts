import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";

/**
 * Append-only journal of state operations since the last snapshot (SYNC-MODEL.md step 7). It lives
 * across runs: a snapshot is written only when the journal has grown large (see SideState.save).
 * Invariant: an operation is confirmed once `flush()` returned; a torn tail (a run killed
 * mid-write: only the last, unconfirmed batch can be torn) is dropped on replay, which is safe
 * because nothing acted on it as confirmed, and cut off before anything is appended after it.
 * A damaged line with intact lines after it is not a torn tail: reading refuses the journal.
 * Line format: `<fnv1a32 hex> <json>\n`. Bump JOURNAL_VERSION when the op format changes.
 */
export const JOURNAL_VERSION = 1;

export type JournalOp =
  | { o: "put"; f: string; k: string; p: string; fl: string; s: number; d: number; g: string }
  | { o: "del"; f: string; k: string }
  | { o: "fput"; f: string; id: string; un: number | null; ms: string | null; n: number | null; md: number }
  | { o: "fdel"; f: string }
  | { o: "iput"; f: string; p: string; sk: string; d: number }
  | { o: "idel"; f: string; p: string };

function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * Writes every byte or throws. A single write(2) may write only part (a disk that fills up midway
 * returns a short count, not ENOSPC): ignoring the count would fsync a cut batch as if it were whole.
 */
export function writeAll(fd: number, data: string | Uint8Array): number {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
  return done;
}

export interface JournalReplay {
  /** Ops replayed. */
  ops: number;
  /** The file ends in a torn line (dropped). */
  damaged: boolean;
  /** Length in bytes of the intact part: where the next op must be appended. */
  intactBytes: number;
}

/** Replay reads this much at a time: a journal left by a big run cut off is never held whole. */
const CHUNK = 1 << 20;

/** The JSON of an intact line (`<fnv1a32 hex> <json>`), or undefined. */
function intactJson(line: string): string | undefined {
  if (line[8] !== " ") return undefined;
  const json = line.slice(9);
  return fnv1a(json) === line.slice(0, 8) ? json : undefined;
}

export class Journal {
  private fd: number | undefined;
  private pending: string[] = [];
  /** Bytes in the file (as far as this process knows): what SideState weighs against a snapshot. */
  size = 0;

  constructor(private readonly path: string) {}

  /**
   * Passes every intact op to `apply`, in order, reading the file a chunk at a time; stops at a
   * torn tail. Throws if a damaged line has intact lines after it, or the version is unknown.
   */
  static replay(path: string, apply: (op: JournalOp) => void): JournalReplay {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { ops: 0, damaged: false, intactBytes: 0 };
      throw err;
    }
    let ops = 0;
    let line = 0;
    let damagedAt = 0;
    let intactBytes = 0;
    try {
      const chunk = Buffer.allocUnsafe(CHUNK);
      let carry = Buffer.alloc(0); // the start of a line the last chunk cut
      let offset = 0; // file offset of carry[0]
      for (;;) {
        const n = readSync(fd, chunk, 0, CHUNK, null);
        if (n === 0) break;
        const buf = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
        let start = 0;
        for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
          line++;
          const json = intactJson(buf.toString("utf8", start, nl));
          if (damagedAt > 0) {
            if (json !== undefined)
              throw new Error(`line ${damagedAt} is damaged, and intact lines follow it (not a torn tail)`);
          } else if (json === undefined) {
            damagedAt = line;
          } else {
            if (line === 1) {
              const head = JSON.parse(json) as { journal?: number };
              if (head.journal !== JOURNAL_VERSION)
                throw new Error(`unsupported journal version ${head.journal}`);
            } else {
              apply(JSON.parse(json) as JournalOp);
              ops++;
            }
            intactBytes = offset + nl + 1;
          }
          start = nl + 1;
        }
        carry = Buffer.from(buf.subarray(start));
        offset += start;
      }
      // A last line without its newline was cut mid-write.
      return { ops, damaged: damagedAt > 0 || carry.length > 0, intactBytes };
    } finally {
      closeSync(fd);
    }
  }

  /** After reading: cuts a torn tail off (durably), so that new ops are not appended after it. */
  cut(intactBytes: number): void {
    const fd = openSync(this.path, "r+");
    try {
      ftruncateSync(fd, intactBytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.size = intactBytes;
  }

  add(op: JournalOp): void {
    const json = JSON.stringify(op);
    this.pending.push(`${fnv1a(json)} ${json}\n`);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Writes pending ops and fsyncs: after this they survive a crash. */
  flush(): void {
    if (this.broken) throw this.broken;
    if (this.pending.length === 0) return;
    if (this.fd === undefined) {
      this.fd = openSync(this.path, "a", 0o600);
      this.size = fstatSync(this.fd).size;
    }
    const start = this.size;
    let text = this.pending.join("");
    if (start === 0) {
      // A fresh (or just emptied) journal starts with its version line.
      const head = JSON.stringify({ journal: JOURNAL_VERSION });
      text = `${fnv1a(head)} ${head}\n${text}`;
    }
    try {
      this.size += writeAll(this.fd, text);
      fsyncSync(this.fd);
    } catch (err) {
      // A batch that did not reach the disk whole must not stay in the file with later batches
      // after it (replay would find a damaged line with intact lines after it). Cut it off again,
      // and append nothing more from this process: after a failed write or fsync, what the file
      // holds is unknown; the ops stay unconfirmed, as the caller is told.
      try {
        ftruncateSync(this.fd, start);
      } catch {
        // The next open cuts a torn tail off.
      }
      this.size = start;
      this.broken = err as Error;
      throw err;
    }
    this.pending = [];
  }

  /** Set by a failed flush: this journal takes no more writes in this process. */
  private broken: Error | undefined;

  /** After a snapshot was saved: the journal's ops are inside it. */
  reset(): void {
    this.pending = [];
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    closeSync(openSync(this.path, "w", 0o600));
    this.size = 0;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
