// A fault-injecting TCP proxy on 127.0.0.1 between tandem and a test server (Dovecot). By default
// it passes bytes through unchanged; a test arms faults that cut or stall a connection at an exact
// byte, optionally only after the client sent a command matching a pattern, or slows the link.
//
//   const proxy = await startFaultProxy(server.port);
//   proxy.cutOnClientCommand(/^\S+ UID FETCH .*RFC822\.SIZE/i, { afterServerBytes: 500 });
//   ... run tandem against 127.0.0.1:proxy.port ...
//   await proxy.close();
//
// Faults fire `times` times (default once) across all connections, then the proxy passes
// through again, so a retry of the engine finds a working link. `pass()` clears everything.
// Client commands are parsed literal-aware (a `{n}` / `{n+}` at the end of a line announces n
// bytes of message data), so a message body is never mistaken for a command.
import { createServer, type Server, Socket } from "node:net";

type Dir = "c2s" | "s2c";
type Action = "cut" | "stall";

export interface FaultOptions {
  /** Fire after this many bytes from the server (counted from when the fault was armed or the command seen). */
  afterServerBytes?: number;
  /** Fire after this many bytes from the client (same origin). */
  afterClientBytes?: number;
  /** How many connections the fault hits before it is spent (default 1; Infinity: every one). */
  times?: number;
  /** How a cut ends the connection: "rst" (TCP reset, default) or "fin" (an orderly close). */
  how?: "rst" | "fin";
}

export interface CommandFaultOptions extends FaultOptions {
  /** With a literal announced on the command line: fire after this fraction of it (0..1). */
  literalFraction?: number;
}

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far, faults that fired so far (for assertions and debugging). */
  readonly stats: { connections: number; open: number; cuts: number; stalls: number; commands: string[] };
  /** Clears every armed fault, the rate limit and the refusal; stalled connections resume. */
  pass(): void;
  /** Destroys both sockets: now (every open connection), or after N bytes from server/client. */
  reset(opts?: FaultOptions): void;
  /** Stops forwarding both ways (now, or after N bytes; or on a command with `onClientCommand`). */
  stall(opts?: FaultOptions & { onClientCommand?: RegExp }): void;
  /** Limits each direction of every connection to this many bytes per second; null lifts it. */
  slow(bytesPerSecond: number | null): void;
  /** Cuts the connection in the middle of the literal of the next APPEND. */
  closeDuringAppend(opts?: { fraction?: number; times?: number; how?: "rst" | "fin" }): void;
  /** Cuts after n more bytes from the server on any connection. */
  cutAfterServerBytes(n: number, opts?: Omit<FaultOptions, "afterServerBytes" | "afterClientBytes">): void;
  /** Cuts when the client sends a command line matching `re` (tag included), or N bytes after it. */
  cutOnClientCommand(re: RegExp, opts?: CommandFaultOptions): void;
  /** Accepts and immediately resets every new connection while on. */
  refuse(on?: boolean): void;
  /** Resets a new connection while `n` are open (a server's per-user limit); null lifts it. */
  limitOpen(n: number | null): void;
  close(): Promise<void>;
}

interface Fault {
  action: Action;
  command?: RegExp;
  afterServerBytes?: number;
  afterClientBytes?: number;
  literalFraction?: number;
  remaining: number;
  how: "rst" | "fin";
}

/** One fault as it watches one connection. */
interface Watch {
  fault: Fault;
  /** Absolute offsets (bytes seen in that direction on this connection) at which it fires. */
  at: Partial<Record<Dir, number>>;
  /** Still waiting for its command. */
  waiting: boolean;
}

interface Item {
  buf: Buffer;
  after?: { action: Action; watch: Watch };
}

const MAX_CONNECTIONS = 200;
/** Bytes queued per direction before the source socket is paused (bounded memory). */
const HIGH_WATER = 256 * 1024;
const MAX_LINE = 64 * 1024;

class Connection {
  readonly seen: Record<Dir, number> = { c2s: 0, s2c: 0 };
  readonly watches: Watch[] = [];
  private readonly queue: Record<Dir, Item[]> = { c2s: [], s2c: [] };
  private readonly queued: Record<Dir, number> = { c2s: 0, s2c: 0 };
  private readonly pumping: Record<Dir, boolean> = { c2s: false, s2c: false };
  stalled = false;
  dead = false;
  // client command parser
  private line = "";
  private literal = 0;

  constructor(
    private readonly proxy: ProxyImpl,
    readonly client: Socket,
    readonly server: Socket,
  ) {
    for (const dir of ["c2s", "s2c"] as const) {
      const src = dir === "c2s" ? client : server;
      src.on("data", (chunk: Buffer) => this.receive(dir, chunk));
      src.on("error", () => this.destroy("rst"));
      // A peer that closes: the other side is closed once what is queued towards it is written.
      src.on("close", () => this.sourceClosed(dir));
    }
  }

  private src(dir: Dir): Socket {
    return dir === "c2s" ? this.client : this.server;
  }
  private dst(dir: Dir): Socket {
    return dir === "c2s" ? this.server : this.client;
  }

  addWatch(fault: Fault): void {
    const w: Watch = { fault, at: {}, waiting: !!fault.command };
    if (!fault.command) this.arm(w, { c2s: this.seen.c2s, s2c: this.seen.s2c }, 0);
    this.watches.push(w);
  }

  private arm(w: Watch, origin: Record<Dir, number>, literal: number): void {
    const f = w.fault;
    if (f.literalFraction !== undefined && literal > 0) {
      w.at.c2s = origin.c2s + Math.floor(literal * f.literalFraction);
    } else if (f.afterClientBytes !== undefined) w.at.c2s = origin.c2s + f.afterClientBytes;
    if (f.afterServerBytes !== undefined) w.at.s2c = origin.s2c + f.afterServerBytes;
    if (w.at.c2s === undefined && w.at.s2c === undefined) w.at.c2s = origin.c2s; // at once
    w.waiting = false;
  }

  /** Parses client bytes for command lines; arms command watches at the offset right after the line. */
  private parseClient(chunk: Buffer, base: number): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.literal > 0) {
        const n = Math.min(this.literal, chunk.length - i);
        this.literal -= n;
        i += n;
        continue;
      }
      const nl = chunk.indexOf(10, i);
      const end = nl < 0 ? chunk.length : nl + 1;
      if (this.line.length < MAX_LINE) this.line += chunk.toString("latin1", i, end);
      i = end;
      if (nl < 0) break;
      const text = this.line.replace(/\r?\n$/, "");
      this.line = "";
      const lit = /\{(\d+)\+?\}$/.exec(text);
      this.literal = lit ? Number(lit[1]) : 0;
      this.proxy.stats.commands.push(text.length > 200 ? `${text.slice(0, 200)}…` : text);
      if (this.proxy.stats.commands.length > 500) this.proxy.stats.commands.shift();
      for (const w of this.watches) {
        if (w.waiting && w.fault.remaining > 0 && w.fault.command?.test(text)) {
          this.arm(w, { c2s: base + i, s2c: this.seen.s2c }, this.literal);
        }
      }
    }
  }

  private receive(dir: Dir, chunk: Buffer): void {
    if (this.dead) return;
    const start = this.seen[dir];
    if (dir === "c2s") this.parseClient(chunk, start);
    this.seen[dir] = start + chunk.length;
    // The earliest watch that fires inside this chunk splits it.
    let first: { off: number; watch: Watch } | undefined;
    for (const w of this.watches) {
      const at = w.at[dir];
      if (w.waiting || at === undefined || w.fault.remaining <= 0) continue;
      if (at >= start && at <= start + chunk.length && (!first || at - start < first.off)) {
        first = { off: Math.max(0, at - start), watch: w };
      }
    }
    if (first) {
      this.push(dir, {
        buf: chunk.subarray(0, first.off),
        after: { action: first.watch.fault.action, watch: first.watch },
      });
      // The rest is held back (a stall) or never sent (a cut).
      if (first.watch.fault.action === "stall") this.push(dir, { buf: chunk.subarray(first.off) });
    } else this.push(dir, { buf: chunk });
  }

  private push(dir: Dir, item: Item): void {
    this.queue[dir].push(item);
    this.queued[dir] += item.buf.length;
    if (this.queued[dir] > HIGH_WATER) this.src(dir).pause();
    void this.pump(dir);
  }

  private closeAfterDrain = false;

  private sourceClosed(dir: Dir): void {
    if (this.dead) return;
    if (this.stalled || (!this.queue[dir].length && !this.pumping[dir])) this.destroy("fin");
    else this.closeAfterDrain = true;
  }

  /** Forwards queued items in order, honouring the rate limit, stalls and cuts. */
  async pump(dir: Dir): Promise<void> {
    if (this.pumping[dir]) return;
    this.pumping[dir] = true;
    try {
      while (!this.dead && !this.stalled && this.queue[dir].length) {
        const item = this.queue[dir].shift()!;
        await this.write(dir, item.buf);
        this.queued[dir] -= item.buf.length;
        if (this.queued[dir] <= HIGH_WATER / 2 && !this.stalled) this.src(dir).resume();
        if (item.after && !this.dead) this.fire(item.after.watch);
      }
      if (this.closeAfterDrain && !this.stalled && !this.queue[dir].length) this.destroy("fin");
    } finally {
      this.pumping[dir] = false;
    }
  }

  private async write(dir: Dir, buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length && !this.dead) {
      const bps = this.proxy.rate;
      if (bps === null) {
        this.dst(dir).write(off === 0 ? buf : buf.subarray(off));
        return;
      }
      const slice = Math.max(1, Math.floor(bps / 20));
      const part = buf.subarray(off, off + slice);
      this.dst(dir).write(part);
      off += part.length;
      await sleep((part.length / bps) * 1000);
    }
  }

  private fire(w: Watch): void {
    const f = w.fault;
    if (f.remaining <= 0) return;
    f.remaining--;
    this.watches.splice(this.watches.indexOf(w), 1);
    if (f.action === "cut") {
      this.proxy.stats.cuts++;
      this.destroy(f.how);
    } else {
      this.proxy.stats.stalls++;
      this.stall();
    }
  }

  stall(): void {
    this.stalled = true;
    this.client.pause();
    this.server.pause();
  }

  resume(): void {
    if (!this.stalled || this.dead) return;
    this.stalled = false;
    this.client.resume();
    this.server.resume();
    void this.pump("c2s");
    void this.pump("s2c");
  }

  destroy(how: "rst" | "fin"): void {
    if (this.dead) return;
    this.dead = true;
    for (const s of [this.client, this.server]) {
      if (how === "rst" && typeof s.resetAndDestroy === "function" && !s.destroyed && !s.connecting) {
        s.resetAndDestroy();
      } else if (how === "fin") {
        s.end();
        s.destroySoon();
      } else s.destroy();
    }
    this.proxy.forget(this);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

class ProxyImpl implements FaultProxy {
  readonly host = "127.0.0.1";
  port = 0;
  readonly stats = { connections: 0, open: 0, cuts: 0, stalls: 0, commands: [] as string[] };
  rate: number | null = null;
  private refusing = false;
  private limit: number | null = null;
  private faults: Fault[] = [];
  private readonly conns = new Set<Connection>();
  private readonly server: Server;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost: string,
  ) {
    this.server = createServer((client) => this.accept(client));
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, this.host, () => {
        this.port = (this.server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    client.on("error", () => {});
    if (this.refusing || (this.limit !== null && this.conns.size >= this.limit)) {
      client.resetAndDestroy();
      return;
    }
    const server = new Socket();
    server.on("error", () => {});
    const conn = new Connection(this, client, server);
    this.conns.add(conn);
    this.stats.open = this.conns.size;
    for (const f of this.faults) if (f.remaining > 0) conn.addWatch(f);
    server.connect(this.targetPort, this.targetHost);
  }

  forget(c: Connection): void {
    this.conns.delete(c);
    this.stats.open = this.conns.size;
  }

  private arm(f: Fault): void {
    this.faults = this.faults.filter((x) => x.remaining > 0);
    this.faults.push(f);
    for (const c of this.conns) c.addWatch(f);
  }

  pass(): void {
    for (const f of this.faults) f.remaining = 0;
    this.faults = [];
    this.rate = null;
    this.refusing = false;
    for (const c of this.conns) {
      c.watches.length = 0;
      c.resume();
    }
  }

  reset(opts: FaultOptions = {}): void {
    if (opts.afterServerBytes === undefined && opts.afterClientBytes === undefined) {
      for (const c of [...this.conns]) {
        this.stats.cuts++;
        c.destroy(opts.how ?? "rst");
      }
      return;
    }
    this.arm({ action: "cut", ...opts, remaining: opts.times ?? 1, how: opts.how ?? "rst" });
  }

  stall(opts: FaultOptions & { onClientCommand?: RegExp } = {}): void {
    const { onClientCommand, ...rest } = opts;
    if (!onClientCommand && rest.afterServerBytes === undefined && rest.afterClientBytes === undefined) {
      for (const c of this.conns) {
        this.stats.stalls++;
        c.stall();
      }
      return;
    }
    this.arm({
      action: "stall",
      ...rest,
      ...(onClientCommand ? { command: onClientCommand } : {}),
      remaining: rest.times ?? 1,
      how: "rst",
    });
  }

  slow(bytesPerSecond: number | null): void {
    if (bytesPerSecond !== null && !(bytesPerSecond > 0))
      throw new Error("slow: bytes per second must be > 0");
    this.rate = bytesPerSecond;
  }

  closeDuringAppend(opts: { fraction?: number; times?: number; how?: "rst" | "fin" } = {}): void {
    this.cutOnClientCommand(/^\S+ APPEND /i, {
      literalFraction: opts.fraction ?? 0.5,
      times: opts.times ?? 1,
      how: opts.how ?? "rst",
    });
  }

  cutAfterServerBytes(
    n: number,
    opts: Omit<FaultOptions, "afterServerBytes" | "afterClientBytes"> = {},
  ): void {
    this.arm({ action: "cut", afterServerBytes: n, remaining: opts.times ?? 1, how: opts.how ?? "rst" });
  }

  cutOnClientCommand(re: RegExp, opts: CommandFaultOptions = {}): void {
    this.arm({
      action: "cut",
      command: re,
      ...opts,
      remaining: opts.times ?? 1,
      how: opts.how ?? "rst",
    });
  }

  limitOpen(n: number | null): void {
    this.limit = n;
  }

  refuse(on = true): void {
    this.refusing = on;
  }

  close(): Promise<void> {
    this.pass();
    for (const c of [...this.conns]) c.destroy("rst");
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Starts a proxy on 127.0.0.1 (a free port) to `targetHost:targetPort` (loopback only). */
export async function startFaultProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<FaultProxy> {
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(targetHost)) {
    throw new Error(`fault proxy: loopback targets only, not ${targetHost}`);
  }
  const p = new ProxyImpl(targetPort, targetHost);
  await p.listen();
  return p;
}
