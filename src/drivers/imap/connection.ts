// Opening one imapflow connection with the security the options ask for, and nothing weaker.
import { readFile } from "node:fs/promises";
import type { ImapFlow, ImapFlowOptions, Logger } from "imapflow";
import { DriverError } from "../driver.js";
import { type ConnectContext, connectError } from "./errors.js";

export interface ImapStoreOptions {
  host: string;
  port: number;
  tls: "implicit" | "starttls" | "none";
  tlsCaFile?: string;
  user: string;
  /** Secrets already resolved by the caller (see resolveSecret). */
  auth: { password: string } | { accessToken: string };
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  onWarning?: (msg: string) => void;
  debug?: (msg: string) => void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;

/** What one connection calls back into: the expunge/vanished notifications. */
export interface ConnectionHooks {
  onExpunge(uid: number | undefined, earlier: boolean): void;
}

function secretOf(opts: ImapStoreOptions): string {
  return "password" in opts.auth ? opts.auth.password : opts.auth.accessToken;
}

/**
 * A logger for imapflow that forwards to `debug`, with authentication lines dropped and any
 * occurrence of the secret masked (imapflow masks them too; this is a second fence).
 */
export function redactingLogger(debug: (msg: string) => void, secret: string): Logger {
  const emit = (level: string) => (obj: unknown) => {
    let text: string;
    if (typeof obj === "string") text = obj;
    else if (obj && typeof obj === "object") {
      const o = obj as { msg?: unknown; src?: unknown; err?: { message?: unknown } };
      text = `${o.src ? `${String(o.src)}: ` : ""}${String(o.msg ?? "")}${o.err?.message ? ` (${String(o.err.message)})` : ""}`;
    } else text = String(obj);
    if (/\b(LOGIN|AUTHENTICATE)\b/i.test(text)) text = "[authentication exchange redacted]";
    if (secret && text.includes(secret)) text = text.split(secret).join("***");
    const b64 = secret ? Buffer.from(secret).toString("base64").replace(/=+$/, "") : "";
    if (b64.length >= 4 && text.includes(b64)) text = "[line with encoded secret redacted]";
    debug(`imap ${level} ${text}`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** The extra trusted CAs of `tlsCaFile` (PEM), for both connections of a store. */
export async function readCaFile(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new DriverError(`Cannot read tlsCaFile ${file}: ${(err as Error).message}`, {
      scope: "store",
      code: "ETLS",
      cause: err,
    });
  }
}

export async function buildClientOptions(
  opts: ImapStoreOptions,
  hooks: ConnectionHooks,
): Promise<ImapFlowOptions> {
  const ca = await readCaFile(opts.tlsCaFile);
  const secret = secretOf(opts);
  const commandTimeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  return {
    host: opts.host,
    port: opts.port,
    secure: opts.tls === "implicit",
    // starttls: required, the connection fails when the server does not offer it.
    // none: never upgraded (plaintext only because the user chose it).
    doSTARTTLS: opts.tls === "starttls" ? true : opts.tls === "none" ? false : undefined,
    tls: { rejectUnauthorized: true, ...(ca ? { ca } : {}) },
    auth:
      "password" in opts.auth
        ? { user: opts.user, pass: opts.auth.password }
        : { user: opts.user, accessToken: opts.auth.accessToken },
    logger: opts.debug ? redactingLogger(opts.debug, secret) : false,
    clientInfo: { name: "tandem" },
    qresync: true,
    connectionTimeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    greetingTimeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    socketTimeout: commandTimeout,
    // Auto-IDLE keeps a quiet connection alive (the socket watchdog probes an idling one with
    // NOOP instead of dropping it); it starts only after a pause longer than this.
    autoIdleDelay: Math.min(15_000, Math.max(1_000, commandTimeout - 10_000)),
    maxLockHoldTime: false,
    expungeHandler: (event) => hooks.onExpunge(event.uid, !!event.earlier),
  };
}

/** Connects and logs in; every failure becomes a store-scoped DriverError (EAUTH/ECONNECT/ETLS). */
export async function connectClient(opts: ImapStoreOptions, hooks: ConnectionHooks): Promise<ImapFlow> {
  const ctx: ConnectContext = { user: opts.user, host: opts.host, port: opts.port, tls: opts.tls };
  // Loaded on first use: imapflow and what it pulls in take tens of ms to set up, which a run that
  // never opens an IMAP store (or `--version`) should not pay.
  const { ImapFlow } = await import("imapflow");
  const client = new ImapFlow(await buildClientOptions(opts, hooks));
  // Without a listener an 'error' event would crash the process; the failure surfaces on the
  // next command as a lost connection.
  client.on("error", (err: Error) => {
    opts.debug?.(`imap connection error: ${err.message}`);
  });
  try {
    await client.connect();
  } catch (err) {
    client.close();
    throw connectError(err, ctx);
  }
  if (opts.tls === "starttls" && !client.secureConnection) {
    client.close();
    throw new DriverError(`${opts.host}:${opts.port} did not switch to TLS after STARTTLS`, {
      scope: "store",
      code: "ETLS",
    });
  }
  return client;
}
