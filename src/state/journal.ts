import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";

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

export interface JournalContents {
  ops: JournalOp[];
  /** The file ends in a torn line (dropped). */
  damaged: boolean;
  /** Length in bytes of the intact part: where the next op must be appended. */
  intactBytes: number;
}

export class Journal {
  private fd: number | undefined;
  private pending: string[] = [];
  /** Bytes in the file (as far as this process knows): what SideState weighs against a snapshot. */
  size = 0;

  constructor(private readonly path: string) {}

  /** Reads every intact op; stops at a torn tail. Throws if a damaged line has intact lines after it. */
  static read(path: string): JournalContents {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        return { ops: [], damaged: false, intactBytes: 0 };
      throw err;
    }
    const ops: JournalOp[] = [];
    const lines = text.split("\n");
    // Every line but the last ended in "\n"; the last one (normally "") is intact only if it did.
    let chars = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const complete = i < lines.length - 1;
      if (line === "" && !complete) break;
      const sum = line.slice(0, 8);
      const json = line.slice(9);
      if (!complete || line[8] !== " " || fnv1a(json) !== sum) {
        for (const later of lines.slice(i + 1, -1)) {
          if (later.length > 9 && later[8] === " " && fnv1a(later.slice(9)) === later.slice(0, 8))
            throw new Error(`line ${i + 1} is damaged, and intact lines follow it (not a torn tail)`);
        }
        return { ops, damaged: true, intactBytes: Buffer.byteLength(text.slice(0, chars)) };
      }
      chars += line.length + 1;
      if (i === 0) {
        const head = JSON.parse(json) as { journal?: number };
        if (head.journal !== JOURNAL_VERSION) throw new Error(`unsupported journal version ${head.journal}`);
        continue;
      }
      ops.push(JSON.parse(json) as JournalOp);
    }
    return { ops, damaged: false, intactBytes: Buffer.byteLength(text) };
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
