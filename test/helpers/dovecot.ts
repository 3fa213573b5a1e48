// Test helpers around a private Dovecot (scripts/dovecot/dovecot.mjs does the work).
//
//   let server: DovecotServer;
//   beforeAll(async () => { server = await startDovecot(); });
//   afterAll(() => server.stop());
//
// Every server has its own temp dir, port and instance name, so test files running in
// parallel forks can each start one. Servers still running when the process exits are killed.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { ImapFlow } from "imapflow";
import * as dv from "../../scripts/dovecot/dovecot.mjs";

export interface ImapUser {
  host: string;
  port: number;
  user: string;
  password: string;
  /** absolute path of the user's Maildir on disk (Maildir++ root) */
  maildir: string;
}

export interface DovecotServer {
  host: string;
  port: number;
  dir: string;
  /** with `tls: true`: the self-signed certificate to trust (the port then speaks implicit TLS) */
  caFile?: string;
  /**
   * A fresh user with a random password and an empty Maildir owned by the mail uid.
   * `name` is used as is when still free, otherwise with a `-2`, `-3`... suffix; read `.user`.
   */
  addUser(name?: string): Promise<ImapUser>;
  /** Runs `doveadm -c <conf> ...args`; resolves to stdout, rejects with stderr. */
  doveadm(args: string[]): Promise<string>;
  /** SIGTERM to the master, waits for it to exit, removes the dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** uid/gid that owns all mail: files a test writes into a Maildir directly must belong to it. */
export const MAIL_UID = dv.MAIL_UID;
export const MAIL_GID = dv.MAIL_GID;

/** True when /usr/sbin/dovecot exists. */
export function dovecotAvailable(): boolean {
  return dv.dovecotAvailable();
}

/** Recursively chowns `path` to the mail uid/gid (use after writing into a user's Maildir as root). */
export function chownToMailUser(path: string): Promise<void> {
  return dv.chownToMailUser(path);
}

export async function startDovecot(
  opts: { capabilities?: string; tls?: boolean } = {},
): Promise<DovecotServer> {
  const start: dv.StartOptions = {};
  if (opts.capabilities !== undefined) start.capabilities = opts.capabilities;
  if (opts.tls !== undefined) start.tls = opts.tls;
  const info = await dv.startDovecot(start);
  let counter = 0;
  let stopping: Promise<void> | undefined;

  const server: DovecotServer = {
    host: info.host,
    port: info.port,
    dir: info.dir,
    async addUser(name?: string): Promise<ImapUser> {
      const base = name ?? "user";
      const password = randomBytes(9).toString("base64url");
      for (let attempt = 0; attempt < 1000; attempt++) {
        const candidate = name !== undefined && attempt === 0 ? base : `${base}-${++counter}`;
        try {
          return await dv.addUser(info.dir, candidate, password);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
      }
      throw new Error(`no free user name for ${base}`);
    },
    doveadm(args: string[]): Promise<string> {
      return dv.doveadm(info.dir, args);
    },
    stop(): Promise<void> {
      stopping ??= dv.stopDovecot(info.dir);
      return stopping;
    },
  };
  if (info.caFile !== undefined) server.caFile = info.caFile;
  return server;
}

/**
 * A logged-in imapflow client (logger off). `secure` defaults to true when `ca` is given;
 * `ca` is a PEM file path (e.g. `server.caFile`) or PEM text.
 */
export async function connectImap(
  u: ImapUser,
  opts: { secure?: boolean; ca?: string } = {},
): Promise<ImapFlow> {
  const secure = opts.secure ?? opts.ca !== undefined;
  let ca: string | undefined;
  if (opts.ca !== undefined) ca = opts.ca.includes("-----BEGIN") ? opts.ca : readFileSync(opts.ca, "utf8");
  const client = new ImapFlow({
    host: u.host,
    port: u.port,
    secure,
    auth: { user: u.user, pass: u.password },
    logger: false,
    ...(ca !== undefined ? { tls: { ca } } : {}),
  });
  // Connection errors also reject the pending command; without a listener an 'error'
  // event would crash the test worker.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (e) {
    client.close();
    throw e;
  }
  return client;
}
