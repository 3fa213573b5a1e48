import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";

/**
 * Append-only journal of state operations between two snapshots (SYNC-MODEL.md step 7).
 * Invariant: an operation is confirmed once `flush()` returned; a torn or corrupt tail (a run
 * killed mid-write) is dropped on replay, which is safe because nothing acted on it as confirmed.
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

export class Journal {
  private fd: number | undefined;
  private pending: string[] = [];

  constructor(private readonly path: string) {}

  /** Reads every intact op; stops at the first damaged line (a torn tail). */
  static read(path: string): { ops: JournalOp[]; damaged: boolean } {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { ops: [], damaged: false };
      throw err;
    }
    const ops: JournalOp[] = [];
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === "") continue;
      const sum = line.slice(0, 8);
      const json = line.slice(9);
      if (line[8] !== " " || fnv1a(json) !== sum) return { ops, damaged: true };
      if (i === 0) {
        const head = JSON.parse(json) as { journal?: number };
        if (head.journal !== JOURNAL_VERSION) throw new Error(`unsupported journal version ${head.journal}`);
        continue;
      }
      ops.push(JSON.parse(json) as JournalOp);
    }
    return { ops, damaged: false };
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
    if (this.pending.length === 0) return;
    if (this.fd === undefined) {
      this.fd = openSync(this.path, "a", 0o600);
      // A fresh (or just truncated) journal starts with its version line.
      if (fstatSync(this.fd).size === 0) {
        const head = JSON.stringify({ journal: JOURNAL_VERSION });
        writeSync(this.fd, `${fnv1a(head)} ${head}\n`);
      }
    }
    writeSync(this.fd, this.pending.join(""));
    this.pending = [];
    fsyncSync(this.fd);
  }

  /** After a snapshot was saved: the journal's ops are inside it. */
  reset(): void {
    this.pending = [];
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    closeSync(openSync(this.path, "w", 0o600));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
