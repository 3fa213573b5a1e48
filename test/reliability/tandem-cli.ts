// Runs the shipped binary dist/tandem as a child process, optionally killing it with SIGKILL after a
// delay, with a config file of its own and an environment of PATH and HOME only.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
export const BIN = join(ROOT, "dist", "tandem");
export const ACCOUNT = "chaos";

let privateBin: string | undefined;
let privateDir: string | undefined;

/**
 * Builds dist/tandem when it is missing (npm run build), then runs a private copy of it: the working
 * tree is shared, and a build started elsewhere rewrites dist/tandem while a test runs it.
 */
export async function ensureBuilt(): Promise<void> {
  if (!existsSync(BIN)) {
    const r = spawnSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
    if (r.status !== 0 || !existsSync(BIN)) throw new Error(`npm run build failed (status ${r.status})`);
  }
  privateDir = mkdtempSync(join(tmpdir(), "tandem-bin-"));
  const copy = join(privateDir, "tandem");
  for (let attempt = 0; ; attempt++) {
    copyFileSync(BIN, copy);
    const v = spawnSync(copy, ["--version"], { encoding: "utf8", timeout: 30_000 });
    if (v.status === 0 && /^tandem /.test(v.stdout)) break;
    // Half written by a concurrent build: wait for it to finish.
    if (attempt >= 30) throw new Error(`dist/tandem does not run: ${v.stdout}${v.stderr}`);
    await new Promise((r) => setTimeout(r, 2_000));
  }
  privateBin = copy;
}

export function removePrivateBin(): void {
  if (privateDir) rmSync(privateDir, { recursive: true, force: true });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when this harness killed the run with SIGKILL before it ended by itself. */
  killed: boolean;
  /** True when the run did not end within the hang timeout (then it was killed too). */
  hung: boolean;
  ms: number;
  out: string;
  err: string;
}

export interface RunOpts {
  config: string;
  home: string;
  /** SIGKILL after this many milliseconds, unless the run has ended by then. */
  killAfterMs?: number;
  /** SIGKILL when this settles, unless the run has ended by then. */
  killWhen?: Promise<unknown>;
  hangTimeoutMs?: number;
}

export function runTandem(args: string[], opts: RunOpts): Promise<RunResult> {
  return new Promise((done, fail) => {
    const started = performance.now();
    if (!privateBin) throw new Error("ensureBuilt() first");
    const child = spawn(privateBin, [...args, "--config", opts.config], {
      cwd: opts.home,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: opts.home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let killed = false;
    let hung = false;
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    const alive = () => child.exitCode === null && child.signalCode === null;
    const killer =
      opts.killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            if (alive()) killed = child.kill("SIGKILL");
          }, opts.killAfterMs);
    opts.killWhen?.then(() => {
      if (alive()) killed = child.kill("SIGKILL");
    });
    const hang = setTimeout(() => {
      if (alive()) {
        hung = true;
        child.kill("SIGKILL");
      }
    }, opts.hangTimeoutMs ?? 120_000);
    child.on("error", fail);
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      clearTimeout(hang);
      done({
        code,
        signal,
        killed: killed && signal === "SIGKILL",
        hung,
        ms: performance.now() - started,
        out,
        err,
      });
    });
  });
}

export type SideToml = string[];

export function maildirToml(path: string): SideToml {
  return ['type = "maildir"', `path = ${JSON.stringify(path)}`, 'layout = "maildir++"'];
}

export function imapToml(u: { host: string; port: number; user: string; password: string }): SideToml {
  return [
    'type = "imap"',
    `host = ${JSON.stringify(u.host)}`,
    `port = ${u.port}`,
    'tls = "none"',
    `user = ${JSON.stringify(u.user)}`,
    `password = ${JSON.stringify(u.password)}`,
  ];
}

/** Writes `<dir>/tandem.toml` for one account and returns its path. */
export function writeConfig(dir: string, left: SideToml, right: SideToml, options: string[] = []): string {
  const file = join(dir, "tandem.toml");
  writeFileSync(
    file,
    [
      "[defaults]",
      `stateDir = ${JSON.stringify(join(dir, "state"))}`,
      "",
      `[accounts.${ACCOUNT}]`,
      ...options,
      `[accounts.${ACCOUNT}.left]`,
      ...left,
      `[accounts.${ACCOUNT}.right]`,
      ...right,
      "",
    ].join("\n"),
  );
  return file;
}
