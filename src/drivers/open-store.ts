import { existsSync } from "node:fs";
import type { StoreConfig } from "../config/config.js";
import type { Folder, Store } from "./driver.js";
import { resolveSecret } from "./imap/credentials.js";
import { openImapStore } from "./imap/imap-store.js";
import { openMaildirStore } from "./maildir/maildir-store.js";

/** Opens the store a config section describes. Secrets are resolved here, once per run, and go nowhere else. */
export async function openStore(
  cfg: StoreConfig,
  opts: { onWarning: (msg: string) => void; dryRun?: boolean },
): Promise<Store> {
  if (cfg.type === "maildir") {
    // A dry run writes nothing, not even an empty Maildir: a root that does not exist yet reads as empty.
    if (opts.dryRun && !existsSync(cfg.path)) return emptyStore(`maildir:${cfg.path} (not created yet)`);
    return openMaildirStore({
      path: cfg.path,
      layout: cfg.layout,
      create: !opts.dryRun,
      onWarning: opts.onWarning,
    });
  }
  const auth = await resolveSecret({
    password: cfg.password,
    passwordCommand: cfg.passwordCommand,
    passwordShell: cfg.passwordShell,
    oauth2TokenCommand: cfg.oauth2TokenCommand,
  });
  return openImapStore({
    host: cfg.host,
    port: cfg.port,
    tls: cfg.tls,
    tlsCaFile: cfg.tlsCaFile,
    user: cfg.user,
    auth,
    connectTimeoutMs: cfg.connectTimeoutMs,
    commandTimeoutMs: cfg.commandTimeoutMs,
    onWarning: opts.onWarning,
  });
}

/** A store with no folders and no messages, for a dry run against a Maildir that does not exist yet. */
function emptyStore(label: string): Store {
  const folder = (name: string): Folder => ({
    name,
    identity: "maildir",
    marker: { count: 0 },
    list: async function* () {},
    read: async function* () {},
    readHeader: async () => new Uint8Array(),
    append: async () => {
      throw new Error("a dry run writes nothing");
    },
    setFlags: async () => {},
    remove: async () => {},
    close: async () => {},
  });
  return {
    caps: { keywords: true, incremental: false, stableKeys: true },
    label,
    listFolders: async () => [],
    createFolder: async () => {},
    removeFolder: async () => {},
    openFolder: async (name) => folder(name),
    close: async () => {},
  };
}
