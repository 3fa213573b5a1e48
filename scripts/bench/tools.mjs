// The tools under test: their configuration files, and one timed run with its peak RSS.

import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";

const TIME_BIN = "/usr/bin/time";
export const ACCOUNT = "bench";

/** `mbsync` on PATH (or the usual place), or undefined. */
export function findMbsync() {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const p = path.join(dir || ".", "mbsync");
    if (existsSync(p)) return p;
  }
  return existsSync("/usr/bin/mbsync") ? "/usr/bin/mbsync" : undefined;
}

/** "1.4.4" from `mbsync --version` ("isync 1.4.4"). */
export function mbsyncVersion(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(`${r.stdout}${r.stderr}`);
  return m
    ? { text: m[0], major: Number(m[1]), minor: Number(m[2]) }
    : { text: "unknown", major: 0, minor: 0 };
}

const tomlString = (s) => JSON.stringify(s);

/** tandem: the IMAP user on the left, a Maildir++ tree on the right; state under `stateDir`. */
export async function writeTandemConfig(file, { user, maildir, stateDir }) {
  const text = [
    "[defaults]",
    `stateDir = ${tomlString(stateDir)}`,
    "",
    `[accounts.${ACCOUNT}.left]`,
    'type = "imap"',
    `host = ${tomlString(user.host)}`,
    `port = ${user.port}`,
    'tls = "none"',
    `user = ${tomlString(user.user)}`,
    `password = ${tomlString(user.password)}`,
    "",
    `[accounts.${ACCOUNT}.right]`,
    'type = "maildir"',
    `path = ${tomlString(maildir)}`,
    'layout = "maildir++"',
    "",
  ].join("\n");
  await writeFile(file, text, { mode: 0o600 });
}

/**
 * mbsync with the equivalent of tandem's defaults: every folder, both ways, folders created and
 * removals carried out on both sides, state kept inside the Maildir. Option names follow the
 * installed version (Far/Near and TLSType from 1.4 and 1.5 on; Master/Slave and SSLType before).
 */
export async function writeMbsyncConfig(file, { user, maildir, version }) {
  const newNames = version.major > 1 || (version.major === 1 && version.minor >= 4);
  const tlsKey = version.major > 1 || (version.major === 1 && version.minor >= 5) ? "TLSType" : "SSLType";
  const q = (s) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  const text = [
    `IMAPAccount ${ACCOUNT}`,
    `Host ${user.host}`,
    `Port ${user.port}`,
    `User ${q(user.user)}`,
    `Pass ${q(user.password)}`,
    `${tlsKey} None`,
    "AuthMechs LOGIN",
    "",
    `IMAPStore ${ACCOUNT}-far`,
    `Account ${ACCOUNT}`,
    "",
    `MaildirStore ${ACCOUNT}-near`,
    // Maildir++: INBOX is the root and the folders are .A.B inside it (Path is not allowed).
    `Inbox ${q(maildir)}`,
    "SubFolders Maildir++",
    "",
    `Channel ${ACCOUNT}`,
    `${newNames ? "Far" : "Master"} :${ACCOUNT}-far:`,
    `${newNames ? "Near" : "Slave"} :${ACCOUNT}-near:`,
    "Patterns *",
    "Create Both",
    "Expunge Both",
    "Sync All",
    "SyncState *",
    "",
  ].join("\n");
  await writeFile(file, text, { mode: 0o600 });
}

let trashed = 0;

/**
 * Empties a directory (the local side or a state dir before a first sync). With `trash`, the old
 * one is moved into it (one rename) rather than removed: on ext4 without a journal, as here, every
 * file created within seconds of a mass removal makes the kernel skip over the freed inodes one by
 * one (find_inode_bit → recently_deleted in `perf`), which tripled the system time of whichever
 * tool ran next. A user's first sync does not follow the removal of 10,000 files; the caller
 * removes the trash once the timed runs are over.
 */
export async function fresh(dir, trash) {
  if (trash && existsSync(dir)) {
    await mkdir(trash, { recursive: true });
    await rename(dir, path.join(trash, String(++trashed)));
  } else await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}

/**
 * Microseconds per file creation in `dir` right now: `count` empty files made in a new directory
 * inside it, left there for the caller to remove once nothing is timed (removed at once, they
 * would keep the state they probe for going). On ext4 without a journal, creating files within
 * minutes of a mass removal steps over the freed inodes (~0.1-1 ms each on this machine, against
 * ~20-40 µs), and every first sync, of either tool, pays it per message.
 */
export function probeCreates(dir, count = 400) {
  const probe = mkdtempSync(path.join(dir, "create-probe-"));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) closeSync(openSync(path.join(probe, String(i)), "wx"));
  return ((performance.now() - t0) * 1000) / count;
}

function vmHWM(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** user + system CPU seconds of a live process so far (clock ticks are 1/100 s on Linux). */
function cpuSoFar(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Runs `cmd args` to its end. Wall time is measured here; peak RSS and CPU time come from
 * `/usr/bin/time` (the child's rusage) when it is installed, else from polling /proc: VmHWM is a
 * high-water mark, so only growth in the last few milliseconds can be missed; CPU time misses the
 * last poll interval.
 * Resolves to { code, signal, wallSeconds, cpuSeconds, maxRssMB, rssSource, stdout, stderr, timedOut }.
 */
export function timedRun(cmd, args, { env, cwd, timeoutMs, tmpDir }) {
  const useTime = existsSync(TIME_BIN);
  const rssFile = path.join(
    tmpDir,
    `rss-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  );
  const argv = useTime ? [TIME_BIN, "-f", "%M %U %S", "-o", rssFile, cmd, ...args] : [cmd, ...args];
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), {
      env,
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let peakKB = 0;
    let cpuSeconds = null;
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (s) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s) => (stderr += s));
    const poll = useTime
      ? undefined
      : setInterval(() => {
          peakKB = Math.max(peakKB, vmHWM(child.pid));
          cpuSeconds = cpuSoFar(child.pid) ?? cpuSeconds;
        }, 10);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      reject(e);
    });
    child.on("exit", () => {
      if (poll) peakKB = Math.max(peakKB, vmHWM(child.pid));
    });
    child.on("close", async (code, signal) => {
      const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      if (useTime) {
        try {
          const text = readFileSync(rssFile, "utf8");
          // time(1) prints "Command exited with non-zero status N" before the format when it fails.
          const lines = text.trim().split("\n");
          const [kb, user, sys] = (lines[lines.length - 1] ?? "").split(" ").map(Number);
          peakKB = kb || 0;
          cpuSeconds = Number.isFinite(user) && Number.isFinite(sys) ? user + sys : null;
        } catch {}
        await rm(rssFile, { force: true });
      }
      resolve({
        code,
        signal,
        wallSeconds,
        cpuSeconds,
        maxRssMB: peakKB / 1024,
        rssSource: useTime ? "time" : "proc",
        stdout,
        stderr,
        timedOut,
      });
    });
  });
}
