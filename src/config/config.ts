/** The config module's public face: import from `../config/config.js`. */
export { ConfigError, type ConfigProblem } from "./config-error.js";
export { defaultStateDir, loadConfig, parseConfig, resolveConfigPath } from "./load-config.js";
export { splitCommandLine } from "./split-command.js";
export type {
  AccountConfig,
  Config,
  ConflictPolicy,
  ImapStoreConfig,
  MaildirStoreConfig,
  StoreConfig,
} from "./types.js";
