// Types for scripts/dovecot/dovecot.mjs (plain ESM, so that strict TypeScript can import it).

export const DOVECOT_BIN: string;
export const DOVEADM_BIN: string;
/** uid/gid that owns every user's mail. */
export const MAIL_UID: number;
export const MAIL_GID: number;

export interface StartOptions {
  /** directory for the instance (created; must not hold one already); default: a new temp dir */
  dir?: string;
  /** implicit TLS on the port with a fresh self-signed certificate (`caFile`) */
  tls?: boolean;
  /** replaces the advertised capability list (`imap_capability = ...`) */
  capabilities?: string;
  /** true: leave the server running when this process exits (the CLI does) */
  keepAlive?: boolean;
}

export interface ServerInfo {
  host: string;
  port: number;
  dir: string;
  /** PID of the Dovecot master */
  pid: number;
  /** path of the generated dovecot.conf */
  conf: string;
  /** the self-signed certificate, to trust as CA (tls only) */
  caFile?: string;
}

export interface UserInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  /** absolute path of the user's Maildir++ root */
  maildir: string;
}

export function dovecotAvailable(): boolean;
export function freePort(): Promise<number>;
export function startDovecot(opts?: StartOptions): Promise<ServerInfo>;
export function stopDovecot(dir: string): Promise<void>;
/** Fails if the user's home already exists. */
export function addUser(dir: string, name: string, password: string): Promise<UserInfo>;
/** Recursively chowns a path to MAIL_UID:MAIL_GID. */
export function chownToMailUser(target: string): Promise<void>;
export function doveadm(dir: string, args: string[]): Promise<string>;
