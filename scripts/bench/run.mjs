#!/usr/bin/env node
// npm run bench — times tandem (and mbsync, when installed) against a private Dovecot.
//
//   node scripts/bench/run.mjs [--messages N] [--folders F] [--runs R] [--json FILE]
//                              [--tool tandem|mbsync|both] [--seed S] [--timeout SEC] [--dir D] [--keep]
//                              [--settle]
//
// Every option can also come from the environment: BENCH_MESSAGES, BENCH_FOLDERS, BENCH_RUNS,
// BENCH_JSON, BENCH_TOOL, BENCH_SEED, BENCH_TIMEOUT, BENCH_DIR, BENCH_KEEP=1, BENCH_SETTLE=1 (the
// command line wins).
// --dir names where the working directory (Dovecot, corpus, local Maildirs) is made, default the
// system temp dir: on a tmpfs (--dir /dev/shm) the disk's fsync latency drops out of the times.
// Before the first phase, file creation there is timed (probeCreates): when it is slow, as for
// minutes after many files were removed on ext4, a note says so, and --settle waits (up to six
// minutes) until it is not.
//
// Each tool gets its own Dovecot user holding an identical corpus and its own local Maildir++
// tree, so the changes made for one never reach the other. Phases, each run R times:
//   1 first sync of the server into an empty Maildir (local side and state wiped before each run)
//   2 a run with nothing changed
//   3 after 100 flag changes, 50 new messages and 20 removals on the server (a new set each run)
//   4 after 100 flag changes and 20 removals in the Maildir (a new set each run)
//   5 first sync with maxage 30 days (tandem only: mbsync has no maxage)
// Change sets shrink with small corpora (a fifth, a tenth, a twentieth of the messages at most).
// After every run both sides are listed independently of the tools and compared: the same
// messages per folder, the same flags, no Message-ID twice. Times are never asserted anywhere.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as dovecot from "../dovecot/dovecot.mjs";
import { changeMaildir, changeServer, compare, listMaildir, listServer } from "./check.mjs";
import { prng, writeCorpus } from "./corpus.mjs";
import {
  ACCOUNT,
  findMbsync,
  fresh,
  mbsyncVersion,
  probeCreates,
  timedRun,
  writeMbsyncConfig,
  writeTandemConfig,
} from "./tools.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DIST_TANDEM = path.join(root, "dist", "tandem");
// The binary under test is copied into the working directory first, so that a rebuild of dist/
// while the benchmark runs (the working tree is shared) cannot swap or remove it half way.
let TANDEM_BIN = DIST_TANDEM;
const MAXAGE_DAYS = 30;
/** A file creation slower than this (µs) is noted; --settle waits up to SETTLE_MS for it to pass. */
const SLOW_CREATE_US = 100;
const SETTLE_MS = 6 * 60_000;

const USAGE = `usage: node scripts/bench/run.mjs [--messages N] [--folders F] [--runs R] [--json FILE]
                                  [--tool tandem|mbsync|both] [--seed S] [--timeout SEC] [--dir D] [--keep]
                                  [--settle]`;

function parseOptions(argv, env) {
  const o = {
    messages: Number(env.BENCH_MESSAGES ?? 10_000),
    folders: Number(env.BENCH_FOLDERS ?? 20),
    runs: Number(env.BENCH_RUNS ?? 3),
    json: env.BENCH_JSON || undefined,
    tool: env.BENCH_TOOL ?? "both",
    seed: Number(env.BENCH_SEED ?? 20_240_601),
    timeout: Number(env.BENCH_TIMEOUT ?? 1800),
    dir: env.BENCH_DIR || os.tmpdir(),
    keep: env.BENCH_KEEP === "1" || env.BENCH_KEEP === "true",
    settle: env.BENCH_SETTLE === "1" || env.BENCH_SETTLE === "true",
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let value;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq !== -1) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value\n${USAGE}`);
      return argv[++i];
    };
    switch (a) {
      case "--messages":
      case "--folders":
      case "--runs":
      case "--seed":
      case "--timeout":
        o[a.slice(2)] = Number(next());
        break;
      case "--json":
        o.json = next();
        break;
      case "--dir":
        o.dir = next();
        break;
      case "--tool":
        o.tool = next();
        break;
      case "--keep":
        o.keep = true;
        break;
      case "--settle":
        o.settle = true;
        break;
      case "-h":
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  for (const k of ["messages", "folders", "runs", "timeout"]) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`--${k} must be a positive whole number`);
  }
  if (!Number.isInteger(o.seed)) throw new Error("--seed must be a whole number");
  if (!["tandem", "mbsync", "both"].includes(o.tool))
    throw new Error(`--tool must be tandem, mbsync or both`);
  if (o.folders > o.messages) throw new Error("--folders must not exceed --messages");
  return o;
}

const log = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const tailOf = (s, n = 1500) => (s.length > n ? `…${s.slice(-n)}` : s);

/** The phases, in order. `tools` limits a phase to some tools; `prepare` runs untimed before each run. */
function phases(o, trash) {
  const flags = Math.max(1, Math.min(100, Math.floor(o.messages / 5)));
  const adds = Math.max(1, Math.min(50, Math.floor(o.messages / 10)));
  const removes = Math.max(1, Math.min(20, Math.floor(o.messages / 20)));
  return [
    {
      id: 1,
      key: "first-sync",
      name: "first sync into an empty Maildir",
      prepare: async (t) => {
        await fresh(t.local, trash);
        await fresh(t.state, trash);
      },
    },
    { id: 2, key: "no-change", name: "nothing changed", prepare: async () => {} },
    {
      id: 3,
      key: "server-changes",
      name: `server: ${flags} flag changes, ${adds} new, ${removes} removed`,
      changes: { flags, adds, removes },
      prepare: async (t, run) =>
        changeServer(t.user, prng(o.seed + 3000 + run), {
          flags,
          adds,
          removes,
          tag: `r${run}`,
          now: Date.now(),
        }),
    },
    {
      id: 4,
      key: "maildir-changes",
      name: `Maildir: ${flags} flag changes, ${removes} removed`,
      changes: { flags, removes },
      prepare: async (t, run) => changeMaildir(t.local, prng(o.seed + 4000 + run), { flags, removes }),
    },
    {
      id: 5,
      key: "maxage-first-sync",
      name: `first sync with maxage ${MAXAGE_DAYS} days`,
      tools: ["tandem"],
      maxage: MAXAGE_DAYS,
      prepare: async (t) => {
        await fresh(t.local, trash);
        await fresh(t.state, trash);
      },
    },
  ];
}

function toolCommand(t, phase) {
  if (t.name === "tandem") {
    const args = ["sync", ACCOUNT, "--config", t.config, "--quiet"];
    if (phase.maxage) args.push("--maxage", String(phase.maxage));
    return [TANDEM_BIN, args];
  }
  return [t.bin, ["-a", "-c", t.config, "-q"]];
}

async function checkTool(t, phase) {
  const [server, local] = await Promise.all([listServer(t.user), listMaildir(t.local)]);
  return compare(server, local, phase.maxage ? { maxage: { now: Date.now(), days: phase.maxage } } : {});
}

function fmt(x, digits = 2) {
  return x === null || x === undefined || Number.isNaN(x) ? "-" : x.toFixed(digits);
}

function table(result) {
  const rows = [
    [
      "phase",
      "tandem median s",
      "mbsync median s",
      "ratio",
      "tandem peak RSS MB",
      "mbsync peak RSS MB",
      "correct",
      "tandem CPU s",
      "mbsync CPU s",
    ],
  ];
  for (const p of result.phases) {
    const t = p.tools.tandem;
    const m = p.tools.mbsync;
    const correct = Object.entries(p.tools)
      .map(([name, r]) => `${name} ${r.correct ? "yes" : r.allRunsOk ? "NO" : "FAILED"}`)
      .join(", ");
    rows.push([
      `${p.id} ${p.name}`,
      fmt(t?.medianSeconds),
      fmt(m?.medianSeconds),
      p.ratio === null ? "-" : `${p.ratio.toFixed(2)}x`,
      fmt(t?.peakRssMB, 0),
      fmt(m?.peakRssMB, 0),
      correct,
      fmt(t?.medianCpuSeconds),
      fmt(m?.medianCpuSeconds),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r) =>
    r.map((cell, c) => (c === 0 || c === 6 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(" | ");
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.slice(1).map(line)].join("\n");
}

async function main() {
  const o = parseOptions(process.argv.slice(2), process.env);
  if (!dovecot.dovecotAvailable())
    throw new Error("Dovecot is not installed (apt-get install dovecot-imapd)");
  const wanted = o.tool === "both" ? ["tandem", "mbsync"] : [o.tool];
  const mbsyncBin = findMbsync();
  const notes = [];
  if (wanted.includes("tandem") && !existsSync(DIST_TANDEM)) {
    throw new Error(`${path.relative(process.cwd(), DIST_TANDEM)} is missing: run npm run build first`);
  }
  if (wanted.includes("mbsync") && !mbsyncBin) {
    if (o.tool === "mbsync") throw new Error("mbsync is not installed (Debian package isync)");
    notes.push("mbsync is not installed (Debian package isync): tandem only");
  }
  const toolNames = wanted.filter((n) => n !== "mbsync" || mbsyncBin);
  const version = mbsyncBin ? mbsyncVersion(mbsyncBin) : undefined;
  if (!existsSync("/usr/bin/time"))
    notes.push("peak RSS from polling /proc/<pid>/status (install `time` for ru_maxrss)");

  const benchDir = await mkdtemp(path.join(path.resolve(o.dir), "tandem-bench-"));
  // Dovecot's unprivileged processes must reach the instance and the homes inside it.
  await chmod(benchDir, 0o755);
  const home = path.join(benchDir, "home");
  await mkdir(home, { recursive: true });
  if (toolNames.includes("tandem")) {
    TANDEM_BIN = path.join(benchDir, "bin", "tandem");
    await mkdir(path.dirname(TANDEM_BIN), { recursive: true });
    await copyFile(DIST_TANDEM, TANDEM_BIN);
    await chmod(TANDEM_BIN, 0o755);
  }
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, LANG: "C.UTF-8" };
  let server;
  const onSignal = () => process.exit(130);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let failed = false;
  try {
    log(`bench: ${o.messages} messages in ${o.folders} folders, ${o.runs} run(s) per phase, in ${benchDir}`);
    server = await dovecot.startDovecot({ dir: path.join(benchDir, "dovecot"), keepAlive: o.keep });

    // One Dovecot user per tool, with the same corpus.
    const tools = [];
    for (const name of toolNames) {
      const user = await dovecot.addUser(server.dir, `bench-${name}`, `pw-${name}-${o.seed}`);
      const t = {
        name,
        user,
        local: path.join(benchDir, name, "Maildir"),
        state: path.join(benchDir, name, "state"),
        config: path.join(benchDir, name, name === "tandem" ? "tandem.toml" : "mbsyncrc"),
        bin: name === "mbsync" ? mbsyncBin : TANDEM_BIN,
      };
      await mkdir(path.dirname(t.config), { recursive: true });
      if (name === "tandem") await writeTandemConfig(t.config, { user, maildir: t.local, stateDir: t.state });
      else await writeMbsyncConfig(t.config, { user, maildir: t.local, version });
      tools.push(t);
    }

    let t0 = performance.now();
    const now = Date.now();
    const corpus = await writeCorpus({
      roots: tools.map((t) => t.user.maildir),
      messages: o.messages,
      folders: o.folders,
      seed: o.seed,
      now,
    });
    for (const t of tools) await dovecot.chownToMailUser(t.user.maildir);
    corpus.generateSeconds = (performance.now() - t0) / 1000;
    log(
      `corpus: ${corpus.messages} messages, ${(corpus.bytes / 1048576).toFixed(1)} MB, ${corpus.attachments} with attachments, ` +
        `${corpus.withinDays30} in the last 30 days; written in ${corpus.generateSeconds.toFixed(1)} s`,
    );

    // Dovecot indexes the corpus once, before anything is timed.
    t0 = performance.now();
    for (const t of tools) {
      await dovecot.doveadm(server.dir, ["force-resync", "-u", t.user.user, "*"]);
      await dovecot.doveadm(server.dir, ["mailbox", "status", "-u", t.user.user, "messages uidnext", "*"]);
    }
    corpus.indexSeconds = (performance.now() - t0) / 1000;
    log(`dovecot indexed the corpus in ${corpus.indexSeconds.toFixed(1)} s`);

    const result = {
      version: 1,
      date: new Date(now).toISOString(),
      params: {
        messages: o.messages,
        folders: o.folders,
        runs: o.runs,
        seed: o.seed,
        tools: toolNames,
        dir: benchDir,
      },
      host: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? "",
        memGB: os.totalmem() / 2 ** 30,
        node: process.version,
      },
      versions: {},
      notes,
      corpus,
      startup: null,
      phases: [],
      ok: true,
    };
    if (toolNames.includes("tandem")) {
      const v = spawnSync(TANDEM_BIN, ["--version"], { encoding: "utf8", env });
      result.versions.tandem = v.stdout.trim();
      const times = [];
      for (let i = 0; i < 10; i++) {
        const r = await timedRun(TANDEM_BIN, ["--version"], {
          env,
          cwd: benchDir,
          timeoutMs: 60_000,
          tmpDir: benchDir,
        });
        if (r.code !== 0)
          throw new Error(`dist/tandem --version exited with ${r.code ?? r.signal}: ${r.stderr}`);
        times.push(r.wallSeconds);
      }
      result.startup = { command: "dist/tandem --version", runs: times, medianSeconds: median(times) };
      log(`dist/tandem --version: median ${fmt(result.startup.medianSeconds, 3)} s of 10`);
    }
    if (version) result.versions.mbsync = version.text;

    // File creation as the first syncs will meet it (see probeCreates). The probes' files stay
    // in the trash until the timed runs are over.
    const trash = path.join(benchDir, "trash");
    await mkdir(trash, { recursive: true });
    let createMicros = probeCreates(trash);
    const settleUntil = performance.now() + SETTLE_MS;
    while (o.settle && createMicros > SLOW_CREATE_US && performance.now() < settleUntil) {
      log(`file creation is slow (${createMicros.toFixed(0)} µs each): waiting for it to settle`);
      await new Promise((r) => setTimeout(r, 15_000));
      createMicros = probeCreates(trash);
    }
    result.createMicros = createMicros;
    log(`file creation: ${createMicros.toFixed(0)} µs each`);
    if (createMicros > SLOW_CREATE_US)
      notes.push(
        `file creation in ${o.dir} was slow when the first syncs began (${createMicros.toFixed(0)} µs a file, ` +
          `against 20-40 µs on this project's machine): on ext4 that lasts a few minutes after many files were ` +
          `removed, and it slows every tool's first syncs (--settle waits for it)`,
      );

    for (const phase of phases(o, trash)) {
      const names = tools.filter((t) => !phase.tools || phase.tools.includes(t.name));
      const entry = {
        id: phase.id,
        key: phase.key,
        name: phase.name,
        changes: phase.changes ?? null,
        tools: {},
        ratio: null,
      };
      for (const t of names)
        entry.tools[t.name] = {
          runs: [],
          medianSeconds: null,
          peakRssMB: null,
          correct: true,
          allRunsOk: true,
        };
      for (let run = 0; run < o.runs; run++) {
        for (const t of names) {
          await phase.prepare(t, run);
          const [cmd, args] = toolCommand(t, phase);
          const r = await timedRun(cmd, args, {
            env,
            cwd: benchDir,
            timeoutMs: o.timeout * 1000,
            tmpDir: benchDir,
          });
          const check = await checkTool(t, phase);
          const ok = r.code === 0 && !r.timedOut;
          const rec = {
            wallSeconds: r.wallSeconds,
            cpuSeconds: r.cpuSeconds,
            maxRssMB: r.maxRssMB,
            exitCode: r.code,
            signal: r.signal,
            timedOut: r.timedOut,
            ok,
            correct: check.ok,
            serverMessages: check.serverCount,
            maildirMessages: check.localCount,
            duplicates: check.duplicates,
          };
          if (!check.ok) rec.problems = check.problems.slice(0, 20);
          if (!ok) rec.stderr = tailOf(r.stderr);
          const e = entry.tools[t.name];
          e.runs.push(rec);
          e.correct &&= check.ok && ok;
          e.allRunsOk &&= ok;
          log(
            `phase ${phase.id} run ${run + 1}/${o.runs} ${t.name.padEnd(6)} ${r.wallSeconds.toFixed(2)} s ` +
              `(CPU ${fmt(r.cpuSeconds)} s), ` +
              `${r.maxRssMB.toFixed(0)} MB, exit ${r.timedOut ? "timeout" : (r.code ?? r.signal)}, ` +
              `${check.localCount}/${check.serverCount} messages, ${check.ok ? "correct" : "NOT CORRECT"}`,
          );
          if (!ok) log(`  ${t.name} stderr: ${tailOf(r.stderr, 800).replace(/\n/g, "\n  ")}`);
          if (!check.ok) for (const p of check.problems.slice(0, 5)) log(`  ${p}`);
        }
      }
      for (const e of Object.values(entry.tools)) {
        const good = e.runs.filter((r) => r.ok);
        e.medianSeconds = median(good.map((r) => r.wallSeconds));
        e.medianCpuSeconds = median(good.filter((r) => r.cpuSeconds != null).map((r) => r.cpuSeconds));
        e.peakRssMB = Math.max(...e.runs.map((r) => r.maxRssMB));
        if (!e.correct) result.ok = false;
      }
      const tm = entry.tools.tandem?.medianSeconds;
      const mm = entry.tools.mbsync?.medianSeconds;
      entry.ratio = tm != null && mm != null && mm > 0 ? tm / mm : null;
      // Each run of tandem is followed by mbsync's: on a noisy machine the ratio of such a pair
      // says more than the ratio of two medians taken minutes apart.
      const tr = entry.tools.tandem?.runs;
      const mr = entry.tools.mbsync?.runs;
      entry.runRatios =
        tr && mr
          ? tr.map((t, i) => {
              const m = mr[i];
              return t.ok && m?.ok && m.wallSeconds > 0 ? t.wallSeconds / m.wallSeconds : null;
            })
          : null;
      result.phases.push(entry);
    }
    failed = !result.ok;
    // Only now, with nothing left to time (see fresh()).
    await rm(trash, { recursive: true, force: true });

    process.stdout.write(
      `\ntandem benchmark: ${o.messages} messages (${(corpus.bytes / 1048576).toFixed(0)} MB) in ${o.folders} folders, ` +
        `median of ${o.runs} run(s); ${result.versions.tandem ?? ""}${version ? `; mbsync ${version.text}` : ""}\n\n`,
    );
    process.stdout.write(`${table(result)}\n\n`);
    process.stdout.write(
      "CPU s: median user+system CPU time of the same runs (the rest of the wall time is waiting: disk, server)\n",
    );
    const pairs = result.phases.filter((p) => p.runRatios);
    if (pairs.length > 0) {
      process.stdout.write(
        "tandem/mbsync run by run (each tandem run with the mbsync run right after it):\n",
      );
      for (const p of pairs)
        process.stdout.write(
          `  phase ${p.id}: ${p.runRatios.map((r) => (r === null ? "-" : r.toFixed(2))).join(" ")}\n`,
        );
    }
    if (result.startup)
      process.stdout.write(`dist/tandem --version: median ${fmt(result.startup.medianSeconds, 3)} s of 10\n`);
    for (const n of notes) process.stdout.write(`note: ${n}\n`);
    if (o.json) {
      await writeFile(o.json, `${JSON.stringify(result, null, 2)}\n`);
      log(`JSON written to ${o.json}`);
    }
    if (o.keep) {
      log(`kept: ${benchDir}`);
      log(`Dovecot still runs on ${server.host}:${server.port}; stop it with`);
      log(`  node scripts/dovecot/dovecot.mjs stop --dir ${server.dir}`);
    }
  } finally {
    if (!o.keep) {
      if (server) await dovecot.stopDovecot(server.dir).catch(() => {});
      await rm(benchDir, { recursive: true, force: true }).catch(() => {});
    }
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
