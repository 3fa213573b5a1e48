import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import type * as z from "zod";
import { ConfigError, type ConfigProblem } from "./config-error.js";
import { KeyLines, type KeyPath } from "./key-lines.js";
import {
  configSchema,
  describeValue,
  KNOWN_KEYS,
  type RawAccount,
  type RawConfig,
  type RawStore,
  SECRET_KEYS,
} from "./schema.js";
import { type AccountConfig, type Config, DEFAULTS, type StoreConfig } from "./types.js";

type Env = NodeJS.ProcessEnv;

function homeDir(env: Env): string {
  return env.HOME || homedir();
}

/** An XDG base directory variable: used only when set to an absolute path, as the spec says. */
function xdgDir(env: Env, variable: string, fallback: string): string {
  const value = env[variable];
  return value && isAbsolute(value) ? value : join(homeDir(env), fallback);
}

/** `--config`, else `$TANDEM_CONFIG`, else `$XDG_CONFIG_HOME/tandem/config.toml`; absolute. */
export function resolveConfigPath(opts: { configPath?: string; env?: Env }): string {
  const env = opts.env ?? process.env;
  const given = opts.configPath || env.TANDEM_CONFIG;
  if (given) return resolve(expandHome(given, env));
  return join(xdgDir(env, "XDG_CONFIG_HOME", ".config"), "tandem", "config.toml");
}

/** `$TANDEM_STATE_DIR`, else `$XDG_STATE_HOME/tandem`; absolute. */
export function defaultStateDir(env: Env = process.env): string {
  if (env.TANDEM_STATE_DIR) return resolve(expandHome(env.TANDEM_STATE_DIR, env));
  return join(xdgDir(env, "XDG_STATE_HOME", join(".local", "state")), "tandem");
}

function expandHome(path: string, env: Env): string {
  if (path === "~") return homeDir(env);
  if (path.startsWith("~/")) return join(homeDir(env), path.slice(2));
  return path;
}

export async function loadConfig(opts: { configPath?: string; env?: Env } = {}): Promise<Config> {
  const env = opts.env ?? process.env;
  const path = resolveConfigPath({ ...opts, env });
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === "ENOENT"
        ? "config file not found (pass --config FILE or set TANDEM_CONFIG)"
        : code === "EISDIR"
          ? "is a directory, not a config file"
          : `cannot read config file: ${code ?? (err as Error).message}`;
    throw new ConfigError(path, [{ message }]);
  }
  return parseConfig(text, { path, env });
}

export function parseConfig(text: string, opts: { path: string; env?: Env }): Config {
  const env = opts.env ?? process.env;
  const file = opts.path;
  const absolute = resolve(file);
  const baseDir = dirname(absolute);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  let data: unknown;
  try {
    data = parse(text, { unsafeKeyBehaviour: "throw" });
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document:\s*/, "");
      throw new ConfigError(file, [
        { line: err.line, column: err.column, message: `TOML syntax error: ${reason}` },
      ]);
    }
    throw err;
  }

  const result = configSchema.safeParse(data);
  if (!result.success) {
    const lines = new KeyLines(text);
    const problems = result.error.issues.flatMap((issue) => describeIssue(issue, data, lines));
    throw new ConfigError(file, redact(sortProblems(problems), data));
  }

  const raw: RawConfig = result.data;
  const names = Object.keys(raw.accounts ?? {});
  if (names.length === 0) {
    throw new ConfigError(file, [
      { key: "accounts", message: "no accounts defined (add an [accounts.NAME] table)" },
    ]);
  }
  const accounts = names.map((name) =>
    resolveAccount(name, raw.accounts![name]!, raw.defaults ?? {}, { baseDir, env }),
  );
  return { path: absolute, accounts };
}

interface ResolveContext {
  baseDir: string;
  env: Env;
}

type AccountOptions = NonNullable<RawConfig["defaults"]>;

function resolveAccount(
  name: string,
  raw: RawAccount,
  defaults: AccountOptions,
  ctx: ResolveContext,
): AccountConfig {
  const stateDir = raw.stateDir ?? defaults.stateDir;
  const maxage = raw.maxage ?? defaults.maxage;
  const account: AccountConfig = {
    name,
    stateDir: stateDir === undefined ? defaultStateDir(ctx.env) : absolutePath(stateDir, ctx),
    conflict: raw.conflict ?? defaults.conflict ?? DEFAULTS.conflict,
    maxDelete: raw.maxDelete ?? defaults.maxDelete ?? DEFAULTS.maxDelete,
    include: [...(raw.include ?? defaults.include ?? DEFAULTS.include)],
    exclude: [...(raw.exclude ?? defaults.exclude ?? DEFAULTS.exclude)],
    rename: { ...(raw.rename ?? defaults.rename ?? {}) },
    left: resolveStore(raw.left, ctx),
    right: resolveStore(raw.right, ctx),
  };
  if (maxage !== undefined) account.maxage = maxage;
  return account;
}

function absolutePath(path: string, ctx: ResolveContext): string {
  return resolve(ctx.baseDir, expandHome(path, ctx.env));
}

function resolveStore(raw: RawStore, ctx: ResolveContext): StoreConfig {
  if (raw.type === "maildir") {
    return { type: "maildir", path: absolutePath(raw.path, ctx), layout: raw.layout ?? DEFAULTS.layout };
  }
  const tls = raw.tls ?? DEFAULTS.tls;
  const store: StoreConfig = {
    type: "imap",
    host: raw.host,
    port: raw.port ?? (tls === "implicit" ? DEFAULTS.implicitTlsPort : DEFAULTS.plainPort),
    tls,
    user: raw.user,
    passwordShell: raw.passwordShell ?? false,
    connectTimeoutMs: raw.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    commandTimeoutMs: raw.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
  };
  if (raw.tlsCaFile !== undefined) store.tlsCaFile = absolutePath(raw.tlsCaFile, ctx);
  if (raw.password !== undefined) store.password = raw.password;
  if (raw.passwordCommand !== undefined) store.passwordCommand = raw.passwordCommand;
  if (raw.oauth2TokenCommand !== undefined) store.oauth2TokenCommand = raw.oauth2TokenCommand;
  return store;
}

// ---- error messages ----

/** `accounts.work.rename."[Gmail]/Sent Mail"`, `accounts.work.include[2]`. */
export function formatKey(path: KeyPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const key = /^[A-Za-z0-9_-]+$/.test(part) ? part : JSON.stringify(part);
      out += out === "" ? key : `.${key}`;
    }
  }
  return out;
}

function valueAt(data: unknown, path: KeyPath): unknown {
  let v = data;
  for (const part of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string | number, unknown>)[part];
  }
  return v;
}

function knownKeysAt(path: KeyPath, data: unknown): readonly string[] {
  if (path.length === 0) return KNOWN_KEYS.top;
  if (path.length === 1 && path[0] === "defaults") return KNOWN_KEYS.defaults;
  if (path[0] === "accounts" && path.length === 2) return KNOWN_KEYS.account;
  if (path[0] === "accounts" && path.length === 3 && (path[2] === "left" || path[2] === "right")) {
    const type = (valueAt(data, path) as { type?: unknown } | undefined)?.type;
    return type === "imap" ? KNOWN_KEYS.imap : type === "maildir" ? KNOWN_KEYS.maildir : KNOWN_KEYS.store;
  }
  return [];
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown, lines: KeyLines): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const at = (p: KeyPath, message: string): ConfigProblem => {
    const problem: ConfigProblem = { message };
    if (p.length > 0) problem.key = formatKey(p);
    const line = lines.lineOf(p);
    if (line !== undefined) problem.line = line;
    return problem;
  };
  switch (issue.code) {
    case "unrecognized_keys": {
      const known = knownKeysAt(path, data);
      return issue.keys.map((key) => {
        const guess = closest(key, known);
        return at([...path, key], `unknown key${guess ? ` (did you mean "${guess}"?)` : ""}`);
      });
    }
    case "invalid_key": {
      if (path[0] === "accounts" && path.length === 2) {
        return [
          at(
            path,
            'invalid account name: use only letters, digits, ".", "_" and "-" (it becomes a directory name)',
          ),
        ];
      }
      return [at(path, issue.issues[0]?.message ?? "invalid key")];
    }
    case "invalid_type": {
      // Only the value's type is ever shown for secret keys; the schema's messages already obey this.
      const last = path[path.length - 1];
      if (typeof last === "string" && SECRET_KEYS.has(last) && issue.message.includes("got ")) {
        return [at(path, `expected a non-empty string, got ${describeValue(valueAt(data, path), true)}`)];
      }
      return [at(path, issue.message)];
    }
    default:
      return [at(path, issue.message)];
  }
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.i - b.i)
    .map(({ p }) => p);
}

/** Belt and braces: no password value may appear in a message, whatever produced it. */
function redact(problems: ConfigProblem[], data: unknown): ConfigProblem[] {
  const secrets: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v !== "object" || v === null) return;
    for (const [k, child] of Object.entries(v)) {
      if (SECRET_KEYS.has(k) && typeof child === "string" && child.length > 0) secrets.push(child);
      else walk(child);
    }
  };
  walk(data);
  if (secrets.length === 0) return problems;
  return problems.map((p) => {
    let message = p.message;
    for (const s of secrets) {
      // Values are shown JSON-quoted; a long secret is also removed wherever it appears. (Replacing
      // every occurrence of a short one would mangle the message around it.)
      message = message.split(JSON.stringify(s)).join('"***"');
      if (s.length >= 8) message = message.split(s).join("***");
    }
    return { ...p, message };
  });
}

/** The known key nearest to a misspelt one, if it is close enough to be a typo. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
