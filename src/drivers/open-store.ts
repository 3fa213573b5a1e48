import type { StoreConfig } from "../config/config.js";
import type { Store } from "./driver.js";
import { resolveSecret } from "./imap/credentials.js";
import { openImapStore } from "./imap/imap-store.js";
import { openMaildirStore } from "./maildir/maildir-store.js";

/** Opens the store a config section describes. Secrets are resolved here, once per run, and go nowhere else. */
export async function openStore(
  cfg: StoreConfig,
  opts: { onWarning: (msg: string) => void; dryRun?: boolean },
): Promise<Store> {
  if (cfg.type === "maildir") {
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
