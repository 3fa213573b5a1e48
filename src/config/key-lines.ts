/**
 * Where each key of a TOML document is defined, for error messages. Best effort: a small scanner
 * that understands table headers, dotted and quoted keys, strings, arrays and inline tables. Run it
 * only on text that smol-toml accepted; on anything surprising it skips to the next line.
 */

export type KeyPath = readonly (string | number)[];

const pathId = (path: readonly string[]): string => path.join("\u0000");

export class KeyLines {
  private readonly lines = new Map<string, number>();
  private readonly newlines: number[] = [];
  private pos = 0;
  private table: string[] = [];

  constructor(private readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.newlines.push(i);
    try {
      this.scanDocument();
    } catch {
      // Best effort: keep whatever was found before the surprise.
    }
  }

  /** The line defining `path`, else the line of its nearest defined ancestor (table header). */
  lineOf(path: KeyPath): number | undefined {
    const keys = path.filter((k): k is string => typeof k === "string");
    for (let n = keys.length; n > 0; n--) {
      const line = this.lines.get(pathId(keys.slice(0, n)));
      if (line !== undefined) return line;
    }
    return undefined;
  }

  private record(path: string[], pos: number): void {
    const line = this.lineAt(pos);
    for (let n = 1; n <= path.length; n++) {
      const id = pathId(path.slice(0, n));
      if (!this.lines.has(id)) this.lines.set(id, line);
    }
  }

  private lineAt(pos: number): number {
    let lo = 0;
    let hi = this.newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.newlines[mid]! < pos) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  }

  private get ch(): string {
    return this.text.charAt(this.pos);
  }

  private skipBlanks(): void {
    while (this.ch === " " || this.ch === "\t") this.pos++;
  }

  /** Blanks, newlines and comments (inside arrays). */
  private skipSpace(): void {
    for (;;) {
      this.skipBlanks();
      if (this.ch === "\r" || this.ch === "\n") this.pos++;
      else if (this.ch === "#") this.skipLine();
      else return;
    }
  }

  private skipLine(): void {
    const nl = this.text.indexOf("\n", this.pos);
    this.pos = nl < 0 ? this.text.length : nl + 1;
  }

  private scanDocument(): void {
    while (this.pos < this.text.length) {
      const start = this.pos;
      this.skipSpace();
      if (this.pos >= this.text.length) break;
      if (this.ch === "[") {
        const array = this.text.startsWith("[[", this.pos);
        const at = this.pos;
        this.pos += array ? 2 : 1;
        const keys = this.parseKey();
        if (keys) {
          this.table = keys;
          this.record(keys, at);
        }
        this.skipLine();
      } else {
        const at = this.pos;
        const keys = this.parseKey();
        this.skipBlanks();
        if (keys && this.ch === "=") {
          this.pos++;
          const path = [...this.table, ...keys];
          this.record(path, at);
          this.skipValue(path);
        } else {
          this.skipLine();
        }
      }
      if (this.pos === start) this.skipLine();
    }
  }

  private parseKey(): string[] | undefined {
    const keys: string[] = [];
    for (;;) {
      this.skipBlanks();
      let key: string | undefined;
      if (this.ch === '"') key = this.readBasicString();
      else if (this.ch === "'") key = this.readLiteralString();
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(this.text.slice(this.pos, this.pos + 256));
        if (m) {
          key = m[0];
          this.pos += key.length;
        }
      }
      if (key === undefined) return undefined;
      keys.push(key);
      this.skipBlanks();
      if (this.ch !== ".") return keys;
      this.pos++;
    }
  }

  private readBasicString(): string {
    if (this.text.startsWith('"""', this.pos)) {
      const end = this.text.indexOf('"""', this.pos + 3);
      const raw = this.text.slice(this.pos + 3, end < 0 ? this.text.length : end);
      this.pos = end < 0 ? this.text.length : end + 3;
      while (this.ch === '"') this.pos++;
      return raw;
    }
    const begin = ++this.pos;
    while (this.pos < this.text.length && this.ch !== '"' && this.ch !== "\n") {
      if (this.ch === "\\") this.pos++;
      this.pos++;
    }
    const raw = this.text.slice(begin, this.pos);
    this.pos++;
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      return raw;
    }
  }

  private readLiteralString(): string {
    const triple = this.text.startsWith("'''", this.pos);
    const quote = triple ? "'''" : "'";
    const begin = this.pos + quote.length;
    const end = this.text.indexOf(quote, begin);
    this.pos = end < 0 ? this.text.length : end + quote.length;
    if (triple) while (this.ch === "'") this.pos++;
    return this.text.slice(begin, end < 0 ? this.text.length : end);
  }

  private skipValue(path: string[]): void {
    this.skipBlanks();
    const c = this.ch;
    if (c === '"') this.readBasicString();
    else if (c === "'") this.readLiteralString();
    else if (c === "[") {
      this.pos++;
      for (;;) {
        this.skipSpace();
        if (this.pos >= this.text.length) return;
        if (this.ch === "]") {
          this.pos++;
          return;
        }
        const before = this.pos;
        this.skipValue(path);
        this.skipSpace();
        if (this.ch === ",") this.pos++;
        if (this.pos === before) this.pos++;
      }
    } else if (c === "{") {
      this.pos++;
      for (;;) {
        this.skipSpace();
        if (this.pos >= this.text.length) return;
        if (this.ch === "}") {
          this.pos++;
          return;
        }
        const before = this.pos;
        const keys = this.parseKey();
        this.skipBlanks();
        if (keys && this.ch === "=") {
          this.pos++;
          const sub = [...path, ...keys];
          this.record(sub, before);
          this.skipValue(sub);
        }
        this.skipSpace();
        if (this.ch === ",") this.pos++;
        if (this.pos === before) this.pos++;
      }
    } else {
      while (this.pos < this.text.length && !",]}\r\n#".includes(this.ch)) this.pos++;
    }
  }
}
