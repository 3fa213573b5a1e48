import * as net from "node:net";
import * as tls from "node:tls";
import { DriverError } from "../../driver.js";
import type { ImapStoreOptions } from "../connection.js";
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, readCaFile } from "../connection.js";
import { quoted, type Response, responseCode } from "./parse.js";

/** A tagged completion. */
export interface Tagged {
  status: "OK" | "NO" | "BAD";
  /** Text after the status, response code included. */
  text: string;
}

/** Receives the bytes of one literal as they arrive (chunks are views into socket buffers). */
export interface LiteralSink {
  chunk(b: Buffer): void;
  end(): void;
}

export interface CommandHandler {
  /**
   * Untagged responses: offered to the commands in flight, oldest first, until one returns true.
   * (Dovecot runs some pipelined commands in parallel: a FETCH may finish after the SEARCH sent
   * behind it, so "the oldest command" is not enough.) `head`: this command is the oldest in flight.
   */
  untagged?(r: Response, head: boolean): boolean;
  /**
   * A literal of `size` bytes announced in an untagged response whose text so far is `head`.
   * Return a sink to receive it streamed; undefined collects it into the response's literals.
   */
  literal?(head: string, size: number): LiteralSink | undefined;
  /** A `+` continuation request while this command waits for one. */
  continuation?(text: string): void;
}

/** A raw failure in the shape errors.ts understands. */
export class LeanError extends Error {
  code?: string;
  authenticationFailed?: boolean;
  tlsFailed?: boolean;
  responseStatus?: string;
  responseText?: string;
  serverResponseCode?: string;
  constructor(message: string, fields: Partial<Omit<LeanError, "message" | "name">> = {}) {
    super(message);
    this.name = "LeanError";
    Object.assign(this, fields);
  }
}

interface Pending {
  tag: string;
  handler: CommandHandler;
  resolve(t: Tagged): void;
  reject(err: Error): void;
}

/** Largest literal collected in memory (streamed ones have no limit). */
const MAX_COLLECTED_LITERAL = 64 * 1024 * 1024;
/** Longest response line (literals excluded) before the server is taken for broken. */
const MAX_LINE = 8 * 1024 * 1024;

export interface LeanOptions extends ImapStoreOptions {
  /** Use LOGIN even when AUTHENTICATE PLAIN is offered (tests). */
  preferLogin?: boolean;
}

export class LeanClient {
  caps = new Set<string>();
  /** EXISTS, EXPUNGE, VANISHED and FLAGS responses seen so far: what a selection knows is stale once more came. */
  changeNotices = 0;
  /**
   * Untagged responses no command in flight took: news of the selected mailbox (a FETCH of flags
   * another client changed, say) that nothing was waiting for. What a selection knows of UIDNEXT
   * and HIGHESTMODSEQ may be stale once one came (keptSelection).
   */
  unclaimed = 0;
  private sock: net.Socket;
  private queue: Pending[] = [];
  private byTag = new Map<string, Pending>();
  private nextTag = 1;
  private closedErr: Error | null = null;
  private bye: string | null = null;
  private readonly commandTimeout: number;
  private idleTimer: NodeJS.Timeout | null = null;
  private pausedByUs = false;
  private lastUse = Date.now();
  // tokenizer state
  private partial: Buffer | null = null;
  private current: Response | null = null;
  private literalLeft = 0;
  private literalSink: LiteralSink | null = null;
  private literalChunks: Buffer[] = [];
  private greeting: ((r: Response) => void) | null = null;
  private readonly onData = (b: Buffer) => this.feed(b);
  private readonly onClose = () =>
    this.fail(new LeanError("Connection closed", { code: "EConnectionClosed" }));
  private readonly onError = (err: Error) => this.fail(err);

  private constructor(
    sock: net.Socket,
    private readonly opts: LeanOptions,
  ) {
    this.sock = sock;
    this.commandTimeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.attach(sock);
  }

  get usable(): boolean {
    return this.closedErr === null && !this.sock.destroyed;
  }

  /** Commands are in flight. */
  get busy(): boolean {
    return this.queue.length > 0;
  }

  /** Milliseconds since the last command completed or was sent. */
  get idleMs(): number {
    return this.queue.length ? 0 : Date.now() - this.lastUse;
  }

  private debug(msg: string): void {
    this.opts.debug?.(`imap lean ${msg}`);
  }

  // ---------------------------------------------------------------- connecting

  /** Connects, secures and logs in; raw errors (map them with connectError). */
  static async open(opts: LeanOptions): Promise<LeanClient> {
    const timeout = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const ca = await readCaFile(opts.tlsCaFile);
    const tlsOpts: tls.ConnectionOptions = {
      rejectUnauthorized: true,
      ...(ca ? { ca } : {}),
      ...(net.isIP(opts.host) ? {} : { servername: opts.host }),
    };
    let client: LeanClient | undefined;
    let raw: net.Socket | undefined;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new LeanError(`Connection timed out after ${timeout} ms`, { code: "CONNECT_TIMEOUT" }));
      }, timeout);
    });
    timedOut.catch(() => {});
    try {
      const connected = new Promise<net.Socket>((resolve, reject) => {
        const s =
          opts.tls === "implicit"
            ? tls.connect({ host: opts.host, port: opts.port, ...tlsOpts })
            : net.connect({ host: opts.host, port: opts.port });
        raw = s;
        s.once(opts.tls === "implicit" ? "secureConnect" : "connect", () => resolve(s));
        s.once("error", reject);
        s.once("close", () => reject(new LeanError("Connection closed", { code: "EConnectionClosed" })));
      });
      const sock = await Promise.race([connected, timedOut]);
      sock.removeAllListeners("error");
      sock.removeAllListeners("close");
      sock.setNoDelay(true);
      const c = new LeanClient(sock, opts);
      client = c;
      await Promise.race([c.handshake(tlsOpts), timedOut]);
      return c;
    } catch (err) {
      if (client) client.destroy();
      else raw?.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async handshake(tlsOpts: tls.ConnectionOptions): Promise<void> {
    const greeting = await new Promise<Response>((resolve, reject) => {
      this.greeting = resolve;
      this.queue.push({ tag: "*greeting", handler: {}, resolve: () => {}, reject });
    });
    this.queue.shift();
    const g = greeting.text;
    const m = /^\* (OK|PREAUTH|BYE)\b ?(.*)$/i.exec(g);
    if (!m) throw new LeanError("The server did not greet as an IMAP server");
    const kind = m[1]!.toUpperCase();
    if (kind === "BYE") throw new LeanError(`The server refused the connection: ${m[2] ?? ""}`);
    this.takeCaps(m[2] ?? "");
    if (this.opts.tls === "starttls") {
      if (!this.caps.size) await this.capability();
      if (!this.caps.has("STARTTLS")) {
        throw new LeanError("Server does not support STARTTLS", { tlsFailed: true });
      }
      await this.command("STARTTLS");
      if (this.partial?.length || this.current) {
        throw new LeanError("Data after STARTTLS", { code: "STARTTLS_INJECTION" });
      }
      await this.upgrade(tlsOpts);
      // Capabilities from before TLS are not to be trusted (RFC 3501 6.2.1).
      this.caps.clear();
      await this.capability();
    }
    if (kind !== "PREAUTH") await this.login();
    if (!this.caps.size) await this.capability();
  }

  private async upgrade(tlsOpts: tls.ConnectionOptions): Promise<void> {
    const plain = this.sock;
    this.detach(plain);
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, ...tlsOpts });
      s.once("secureConnect", () => resolve(s));
      s.once("error", (err: Error & { tlsFailed?: boolean }) => reject(err));
    });
    secure.removeAllListeners("error");
    this.sock = secure;
    this.attach(secure);
  }

  private takeCaps(text: string): void {
    const code = responseCode(text);
    if (code?.code !== "CAPABILITY") return;
    this.caps = new Set(code.args.toUpperCase().split(" ").filter(Boolean));
  }

  async capability(): Promise<void> {
    await this.command("CAPABILITY", {
      untagged: (r) => {
        if (!/^\* CAPABILITY /i.test(r.text)) return false;
        this.caps = new Set(r.text.slice(13).toUpperCase().split(" ").filter(Boolean));
        return true;
      },
    });
  }

  private async login(): Promise<void> {
    const { user, auth } = this.opts;
    const fail = (err: unknown): never => {
      if (err instanceof LeanError && err.responseStatus) {
        throw new LeanError(`Authentication failed: ${err.responseText ?? ""}`, {
          authenticationFailed: true,
          responseStatus: err.responseStatus,
          ...(err.responseText !== undefined ? { responseText: err.responseText } : {}),
        });
      }
      throw err;
    };
    let done: Tagged;
    try {
      if ("accessToken" in auth) {
        const token = Buffer.from(`user=${user}\x01auth=Bearer ${auth.accessToken}\x01\x01`).toString(
          "base64",
        );
        done = await this.authenticate("XOAUTH2", token);
      } else if (this.caps.has("AUTH=PLAIN") && !this.opts.preferLogin) {
        const token = Buffer.from(`\0${user}\0${auth.password}`).toString("base64");
        done = await this.authenticate("PLAIN", token);
      } else {
        if (this.caps.has("LOGINDISABLED")) {
          throw new LeanError("The server refuses LOGIN (LOGINDISABLED) and offers no AUTH=PLAIN", {
            authenticationFailed: true,
          });
        }
        done = await this.commandParts(["LOGIN ", astring(user), " ", astring(auth.password)], {}, true);
      }
    } catch (err) {
      return fail(err);
    }
    this.caps.clear();
    this.takeCaps(done.text);
  }

  /** AUTHENTICATE with an initial response: inline with SASL-IR, else after the first `+`. */
  private authenticate(mech: string, token: string): Promise<Tagged> {
    const inline = this.caps.has("SASL-IR");
    let sent = inline;
    return this.command(
      inline ? `AUTHENTICATE ${mech} ${token}` : `AUTHENTICATE ${mech}`,
      {
        continuation: () => {
          // The first `+` asks for the token; any later one carries an error (XOAUTH2): answer
          // with an empty line so that the server sends its tagged NO.
          this.sock.write(sent ? "\r\n" : `${token}\r\n`);
          sent = true;
        },
      },
      true,
    );
  }

  // ---------------------------------------------------------------- commands

  /** Sends one command line (no literals of ours); resolves on OK, rejects on NO/BAD or loss. */
  command(line: string, handler: CommandHandler = {}, secret = false): Promise<Tagged> {
    return this.start(line, handler, secret).done;
  }

  /**
   * Starts a command: writes `line` (CRLF appended unless `open`: the caller then writes the
   * rest, e.g. a literal). `done` settles with the tagged response.
   */
  start(
    line: string,
    handler: CommandHandler = {},
    secret = false,
    open = false,
  ): { tag: string; done: Promise<Tagged> } {
    const tag = `L${this.nextTag++}`;
    let settle!: Pending;
    const done = new Promise<Tagged>((resolve, reject) => {
      settle = { tag, handler, resolve, reject };
    });
    if (this.closedErr) {
      settle.reject(this.closedErr);
      return { tag, done };
    }
    this.queue.push(settle);
    this.byTag.set(tag, settle);
    this.debug(secret ? `C: ${tag} ${line.split(" ")[0]} [redacted]` : `C: ${tag} ${line.slice(0, 200)}`);
    this.corkForTick();
    this.sock.write(`${tag} ${line}${open ? "" : "\r\n"}`, "latin1");
    this.armIdle();
    return { tag, done };
  }

  private corked = false;

  /**
   * Commands started in one tick (a pipeline: EXAMINE and its searches) leave in one write, not
   * one system call and one TCP segment each (the socket has no Nagle delay).
   */
  private corkForTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.sock.cork();
    process.nextTick(() => {
      this.corked = false;
      this.sock.uncork();
    });
  }

  /** A command with literals of ours (LOGIN with 8-bit strings): LITERAL+ or synchronizing. */
  private async commandParts(
    parts: (string | Buffer)[],
    handler: CommandHandler,
    secret: boolean,
  ): Promise<Tagged> {
    if (parts.every((p) => typeof p === "string")) return this.command(parts.join(""), handler, secret);
    const plus = this.caps.has("LITERAL+");
    // Split into segments that end with a literal announcement.
    const segments: { text: string; literal?: Buffer }[] = [{ text: "" }];
    for (const p of parts) {
      const last = segments[segments.length - 1]!;
      if (typeof p === "string") last.text += p;
      else {
        last.text += `{${p.length}${plus ? "+" : ""}}`;
        last.literal = p;
        segments.push({ text: "" });
      }
    }
    let waiting: (() => void) | null = null;
    const h: CommandHandler = { ...handler, continuation: () => waiting?.() };
    const first = segments[0]!;
    const { done } = this.start(`${first.text}\r\n`, h, secret, true);
    done.catch(() => {});
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      if (i > 0) this.sock.write(seg.text + (seg.literal ? "\r\n" : ""), "latin1");
      if (!seg.literal) break;
      if (!plus) {
        await Promise.race([
          new Promise<void>((r) => {
            waiting = r;
          }),
          done,
        ]);
      }
      this.sock.write(seg.literal);
    }
    this.sock.write("\r\n");
    return await done;
  }

  /** Writes bytes of a literal; resolves once the socket took them (the buffer may be reused). */
  write(b: Uint8Array | string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closedErr) {
        reject(this.closedErr);
        return;
      }
      this.sock.write(b, (err) => {
        if (err) reject(this.closedErr ?? err);
        else {
          this.armIdle();
          resolve();
        }
      });
    });
  }

  /** Stops reading from the socket (a consumer is behind); the idle timeout does not run meanwhile. */
  pause(): void {
    if (this.pausedByUs) return;
    this.pausedByUs = true;
    this.sock.pause();
  }

  resume(): void {
    if (!this.pausedByUs) return;
    this.pausedByUs = false;
    this.sock.resume();
    this.armIdle();
  }

  /** Ends the session politely (LOGOUT, at most `waitMs`), then closes the socket. */
  async logout(waitMs = 2_000): Promise<void> {
    if (!this.usable) {
      this.destroy();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.command("LOGOUT").catch(() => {}),
        new Promise<void>((r) => {
          timer = setTimeout(r, waitMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.destroy();
    }
  }

  /** Closes the connection at once; commands in flight fail with `err` (or "closed"). */
  destroy(err?: Error, reset = false): void {
    this.fail(err ?? new LeanError("Connection closed", { code: "EConnectionClosed" }));
    if (reset) {
      try {
        // Drops unsent bytes (a half-sent APPEND literal must not reach the server late).
        this.sock.resetAndDestroy();
        return;
      } catch {
        // not a TCP socket with a handle: plain destroy below
      }
    }
    this.sock.destroy();
  }

  // ---------------------------------------------------------------- socket plumbing

  private attach(s: net.Socket): void {
    s.on("data", this.onData);
    s.on("close", this.onClose);
    s.on("error", this.onError);
  }

  private detach(s: net.Socket): void {
    s.off("data", this.onData);
    s.off("close", this.onClose);
    s.off("error", this.onError);
  }

  private fail(err: Error): void {
    if (this.closedErr) return;
    const e =
      this.bye && err instanceof LeanError && err.code === "EConnectionClosed"
        ? new LeanError(`Connection closed by the server: ${this.bye}`, { code: "EConnectionClosed" })
        : err;
    this.closedErr = e;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const sink = this.literalSink;
    this.literalSink = null;
    const pending = this.queue.splice(0);
    this.byTag.clear();
    for (const p of pending) p.reject(e);
    if (sink) {
      try {
        sink.end();
      } catch {
        // the consumer sees the error through its command
      }
    }
    if (!this.sock.destroyed) this.sock.destroy();
  }

  /** (Re)starts the idle timer: a command in flight with nothing heard or sent for commandTimeout fails. */
  private armIdle(): void {
    this.lastUse = Date.now();
    if (this.closedErr) return;
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => this.idleFired(), this.commandTimeout);
    this.idleTimer.unref?.();
  }

  private idleFired(): void {
    this.idleTimer = null;
    if (this.closedErr) return;
    if (!this.queue.length || this.pausedByUs) {
      if (this.queue.length) this.armIdle();
      return;
    }
    this.debug(`no answer for ${this.commandTimeout} ms: dropping the connection`);
    this.destroy(
      new LeanError(`No answer from the server for ${this.commandTimeout} ms`, { code: "ETIMEOUT" }),
      true,
    );
  }

  /** A protocol violation: the connection is dropped, every command in flight fails. */
  private broken(why: string): void {
    this.destroy(
      new DriverError(`the server broke the IMAP protocol (${why}); the connection was dropped`, {
        scope: "store",
        code: "EPROTOCOL",
        retryable: true,
      }),
    );
  }

  private feed(chunk: Buffer): void {
    if (this.closedErr) return;
    if (this.queue.length && !this.pausedByUs) this.armIdle();
    let data = chunk;
    let pos = 0;
    if (this.partial && this.literalLeft === 0) {
      // Complete the pending line with the bytes up to the next LF only (no big copies).
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        this.partial = Buffer.concat([this.partial, chunk]);
        if (this.partial.length > MAX_LINE) this.broken("a response line too long");
        return;
      }
      const line = Buffer.concat([this.partial, chunk.subarray(0, nl + 1)]);
      this.partial = null;
      this.line(line, 0, line.length - 1);
      data = chunk;
      pos = nl + 1;
    }
    while (pos < data.length && !this.closedErr) {
      if (this.literalLeft > 0) {
        const n = Math.min(this.literalLeft, data.length - pos);
        const piece = data.subarray(pos, pos + n);
        pos += n;
        this.literalLeft -= n;
        if (this.literalSink) this.literalSink.chunk(piece);
        else this.literalChunks.push(piece);
        if (this.literalLeft === 0) this.literalDone();
        continue;
      }
      const nl = data.indexOf(10, pos);
      if (nl < 0) {
        this.partial = Buffer.from(data.subarray(pos));
        if (this.partial.length > MAX_LINE) this.broken("a response line too long");
        return;
      }
      this.line(data, pos, nl);
      pos = nl + 1;
    }
  }

  private literalDone(): void {
    const cur = this.current!;
    if (this.literalSink) {
      const sink = this.literalSink;
      this.literalSink = null;
      cur.literals.push(EMPTY);
      sink.end();
    } else {
      const parts = this.literalChunks;
      this.literalChunks = [];
      cur.literals.push(parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts));
    }
  }

  /** One line from data[start] to the LF at data[nl]. */
  private line(data: Buffer, start: number, nl: number): void {
    const end = nl > start && data[nl - 1] === 13 ? nl - 1 : nl;
    const text = data.toString("latin1", start, end);
    let cur = this.current;
    if (cur) cur.text += text;
    else cur = this.current = { text, literals: [] };
    if (text.charCodeAt(text.length - 1) === 125) {
      const m = /\{(\d+)\}$/.exec(text);
      if (m) {
        const size = Number(m[1]);
        if (!Number.isSafeInteger(size)) {
          this.broken("a literal size out of range");
          return;
        }
        let sink: LiteralSink | undefined;
        if (cur.text.startsWith("* ")) {
          for (const p of this.queue) {
            sink = p.handler.literal?.(cur.text, size);
            if (sink) break;
          }
        }
        if (!sink && size > MAX_COLLECTED_LITERAL) {
          this.broken(`a literal of ${size} bytes announced`);
          return;
        }
        this.literalSink = sink ?? null;
        this.literalLeft = size;
        if (size === 0) this.literalDone();
        return;
      }
    }
    this.current = null;
    this.dispatch(cur);
  }

  private dispatch(r: Response): void {
    const t = r.text;
    if (this.opts.debug) this.debug(`S: ${t.slice(0, 120)}`);
    if (this.greeting) {
      const g = this.greeting;
      this.greeting = null;
      g(r);
      return;
    }
    if (t.startsWith("* ")) {
      if (/^\* BYE\b/i.test(t)) this.bye = t.slice(6);
      else if (/^\* (?:\d+ (?:EXISTS|EXPUNGE)|VANISHED|FLAGS)\b/i.test(t)) this.changeNotices++;
      try {
        const queue = [...this.queue];
        let claimed = false;
        for (let i = 0; i < queue.length && !claimed; i++)
          claimed = queue[i]!.handler.untagged?.(r, i === 0) === true;
        if (!claimed) this.unclaimed++;
      } catch (err) {
        this.broken(`${(err as Error).message} in "${t.slice(0, 80)}"`);
      }
      return;
    }
    if (t.startsWith("+")) {
      for (let i = this.queue.length - 1; i >= 0; i--) {
        const p = this.queue[i]!;
        if (p.handler.continuation) {
          p.handler.continuation(t.slice(2));
          return;
        }
      }
      return;
    }
    const sp = t.indexOf(" ");
    const tag = sp < 0 ? t : t.slice(0, sp);
    const p = this.byTag.get(tag);
    if (!p) {
      this.debug(`ignoring a response with an unknown tag: ${t.slice(0, 40)}`);
      return;
    }
    this.byTag.delete(tag);
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    this.lastUse = Date.now();
    const rest = sp < 0 ? "" : t.slice(sp + 1);
    const m = /^(OK|NO|BAD)\b ?(.*)$/i.exec(rest);
    if (!m) {
      p.reject(new LeanError(`Unexpected response: ${rest.slice(0, 80)}`, { code: "EConnectionClosed" }));
      this.broken("an unknown completion status");
      return;
    }
    const status = m[1]!.toUpperCase() as Tagged["status"];
    const text = m[2] ?? "";
    if (status === "OK") {
      p.resolve({ status, text });
      return;
    }
    const code = responseCode(text);
    p.reject(
      new LeanError(`${status} ${text}`, {
        responseStatus: status,
        responseText: text,
        ...(code ? { serverResponseCode: code.code } : {}),
      }),
    );
  }
}

const EMPTY = Buffer.alloc(0);

/** An astring for a command: quoted when possible, else a literal (UTF-8 bytes). */
function astring(s: string): string | Buffer {
  return quoted(s) ?? Buffer.from(s, "utf8");
}
