/** Configuration as the rest of tandem sees it: validated, defaults applied, paths absolute. */

export type ConflictPolicy = "keep" | "left" | "right" | "fail" | "ask";

export interface MaildirStoreConfig {
  type: "maildir";
  /** Absolute path (`~` expanded, relative paths resolved against the config file's directory). */
  path: string;
  layout: "maildir++" | "fs";
}

export interface ImapStoreConfig {
  type: "imap";
  host: string;
  port: number;
  tls: "implicit" | "starttls" | "none";
  /** Absolute path to a PEM bundle of extra trusted CAs. */
  tlsCaFile?: string;
  user: string;
  /** Exactly one of `password`, `passwordCommand`, `oauth2TokenCommand` is set. */
  password?: string;
  passwordCommand?: string;
  /** Run `passwordCommand` through `/bin/sh -c`; otherwise split it with `splitCommandLine`. */
  passwordShell: boolean;
  oauth2TokenCommand?: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

export type StoreConfig = MaildirStoreConfig | ImapStoreConfig;

export interface AccountConfig {
  /** Matches `[A-Za-z0-9._-]+` and is neither `.` nor `..`: safe as a directory name. */
  name: string;
  /**
   * Absolute root state directory, shared by all accounts unless an account sets its own.
   * Per-account state belongs in `join(stateDir, name)`.
   */
  stateDir: string;
  /** Days; only messages younger than this are synchronized. */
  maxage?: number;
  conflict: ConflictPolicy;
  /** Percent, 0..100. */
  maxDelete: number;
  include: string[];
  exclude: string[];
  /** Left folder name -> right folder name; one-to-one. */
  rename: Record<string, string>;
  left: StoreConfig;
  right: StoreConfig;
}

export interface Config {
  /** Absolute path of the file the config was read from. */
  path: string;
  accounts: AccountConfig[];
}

export const DEFAULTS = {
  conflict: "keep",
  maxDelete: 50,
  include: ["*"],
  exclude: [],
  layout: "maildir++",
  tls: "implicit",
  implicitTlsPort: 993,
  plainPort: 143,
  connectTimeoutMs: 30_000,
  commandTimeoutMs: 120_000,
} as const;
