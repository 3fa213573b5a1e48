/**
 * End-to-end: the shipped forms (dist/tandem, dist/tandem.cjs under node, dist/tandem.mjs under Deno)
 * run as child processes on two real Maildirs, with a config file and a state directory of their own
 * and an environment of PATH and HOME only. What is checked is what a user sees: exit status, which
 * stream carries what, the Maildirs on disk and the files in the state directory.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { change, deliver, show } from "../engine/harness.js";
import { type CommandResult, runCommand } from "../helpers/run-command.js";

const root = resolve(import.meta.dirname, "../..");
const dist = join(root, "dist");
const BIN = join(dist, "tandem");
const CJS = join(dist, "tandem.cjs");
const MJS = join(dist, "tandem.mjs");
const DENO = join(root, "node_modules", ".bin", "deno");
const DAY = 86_400_000;
const ACCOUNT = "mail";

type Result = CommandResult;

function run(cmd: string, args: string[], cwd: string, home: string): Promise<Result> {
  return runCommand(cmd, args, { cwd, home, timeoutMs: 45_000 });
}

const dirs: string[] = [];
const children: ChildProcess[] = [];

interface Setup {
  dir: string;
  left: string;
  right: string;
  /** The `[defaults] stateDir`; the account's state is in `<state>/mail`. */
  state: string;
  config: string;
  /** `dist/tandem <args> --config <config>`. */
  tandem(...args: string[]): Promise<Result>;
  /** Any command, from the setup's directory, with the setup's environment. */
  exec(cmd: string, args: string[]): Promise<Result>;
}

/** Two Maildir roots (the right one not yet created), a state dir and a config naming them. */
function setup(opts: { account?: string; right?: string } = {}): Setup {
  const dir = mkdtempSync(join(tmpdir(), "tandem-e2e-"));
  dirs.push(dir);
  const left = join(dir, "left");
  const right = opts.right ?? join(dir, "right");
  const state = join(dir, "state");
  for (const s of ["cur", "new", "tmp"]) mkdirSync(join(left, s), { recursive: true });
  const config = join(dir, "tandem.toml");
  writeFileSync(
    config,
    [
      "[defaults]",
      `stateDir = ${JSON.stringify(state)}`,
      "",
      `[accounts.${ACCOUNT}]`,
      ...(opts.account ? [opts.account] : []),
      `[accounts.${ACCOUNT}.left]`,
      'type = "maildir"',
      `path = ${JSON.stringify(left)}`,
      'layout = "maildir++"',
      `[accounts.${ACCOUNT}.right]`,
      'type = "maildir"',
      `path = ${JSON.stringify(right)}`,
      'layout = "maildir++"',
      "",
    ].join("\n"),
  );
  const exec = (cmd: string, args: string[]) => run(cmd, args, dir, dir);
  return {
    dir,
    left,
    right,
    state,
    config,
    exec,
    tandem: (...args) => exec(BIN, [...args, "--config", config]),
  };
}

/** Delivers each tag as a new message (optionally with flags, `A:FS`) dated yesterday. */
function seed(root: string, spec: string): void {
  for (const item of spec.split(/\s+/).filter(Boolean)) {
    const [tag, letters = ""] = item.split(":");
    deliver(root, tag!, letters, Date.now() - DAY);
  }
}

/** Every path under `dir` with its kind, mode, size and mtime in nanoseconds. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p, { bigint: true });
      out.push(`${relative(dir, p)} ${st.mode.toString(8)} ${st.size} ${st.mtimeNs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  out.push(`. ${statSync(dir, { bigint: true }).mtimeNs}`);
  walk(dir);
  return out;
}

/** The unique base name (the Maildir key) of the file that holds message `tag`. */
function keyOf(root: string, tag: string): string {
  for (const sub of ["cur", "new"]) {
    for (const name of readdirSync(join(root, sub))) {
      if (readFileSync(join(root, sub, name), "latin1").includes(`Subject: ${tag}\r\n`))
        return name.split(":2,")[0]!;
    }
  }
  throw new Error(`no message ${tag} in ${root}`);
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

beforeAll(() => {
  if (![CJS, MJS, BIN].every((f) => existsSync(f))) {
    const r = spawnSync(process.execPath, [join(root, "scripts", "build.mjs")], {
      cwd: root,
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
  }
}, 120_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("dist/tandem sync", () => {
  it.concurrent("copies new mail both ways, carries flags and removals, and verifies", async () => {
    const s = setup();
    seed(s.left, "A B:S");
    seed(s.right, "C:F");

    const first = await s.tandem("sync");
    expect(first.err).toBe("");
    expect(first.code).toBe(0);
    expect(first.out).toContain("INBOX: copied 2 → right, 1 → left; verified");
    expect(first.out).toContain(`${ACCOUNT}: 1 of 1 folder(s) verified`);
    expect(show(s.left)).toBe("A B:S C:F");
    expect(show(s.right)).toBe("A B:S C:F");

    // A mail client renames files for flags and unlinks them to remove; new mail arrives.
    change(s.left, "+A:R -B:S");
    change(s.right, "xC +B:F");
    seed(s.right, "D");
    const second = await s.tandem("sync");
    expect(second.err).toBe("");
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/INBOX: .*verified/);
    expect(show(s.left)).toBe("A:R B:F D");
    expect(show(s.right)).toBe("A:R B:F D");

    // Converged: a third run has nothing to do and says only that the folder is verified.
    const third = await s.tandem("sync", "--json");
    expect(third.code).toBe(0);
    const f = JSON.parse(third.out).accounts[0].folders[0];
    expect([f.copied, f.flagged, f.removed]).toEqual([
      { left: 0, right: 0 },
      { left: 0, right: 0 },
      { left: 0, right: 0 },
    ]);
    expect(f.verified).toBe(true);
  });

  it.concurrent("--dry-run says what it would do and writes nothing", async () => {
    const s = setup();
    seed(s.left, "A B");
    // The right root exists here, so that nothing but copies is planned.
    for (const sub of ["cur", "new", "tmp"]) mkdirSync(join(s.right, sub), { recursive: true });
    seed(s.right, "C:S");

    let before = snapshot(s.dir);
    const fresh = await s.tandem("sync", "--dry-run");
    expect(fresh.err).toBe("");
    expect(fresh.code).toBe(0);
    expect(fresh.out).toContain(`${ACCOUNT}: dry run, nothing written (1 folder(s))`);
    expect(fresh.out).toContain("INBOX: would copy 2 → right, 1 → left");
    expect(snapshot(s.dir)).toEqual(before);
    expect(existsSync(s.state)).toBe(false);

    // With state: a flag change and a new message are planned, and again nothing is written.
    expect((await s.tandem("sync")).code).toBe(0);
    change(s.left, "+A:F");
    seed(s.right, "D");
    before = snapshot(s.dir);
    const dry = await s.tandem("sync", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.out).toContain("would copy 0 → right, 1 → left");
    expect(dry.out).toContain("flags 1 → right, 0 → left");
    expect(snapshot(s.dir)).toEqual(before);
    expect(show(s.left)).toBe("A:F B C:S");
    expect(show(s.right)).toBe("A B C:S D");
  });

  it("--dry-run before the first sync, when the right Maildir root does not exist yet", async () => {
    const s = setup();
    seed(s.left, "A");
    const before = snapshot(s.dir);
    const r = await s.tandem("sync", "--dry-run");
    expect(r.code).toBe(0);
    expect(r.out).toContain("would copy 1 → right, 0 → left");
    expect(snapshot(s.dir)).toEqual(before);
  });

  it.concurrent("--json prints exactly one JSON document on stdout, logs on stderr", async () => {
    const s = setup();
    seed(s.left, "A B:S");
    seed(s.right, "C");
    const r = await s.tandem("sync", "--json", "--verbose");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(r.out.trimEnd().split("\n").at(-1)).toBe("}");
    expect(doc.exitCode).toBe(0);
    expect(doc.accounts).toHaveLength(1);
    const [account] = doc.accounts;
    expect(account).toMatchObject({ account: ACCOUNT, dryRun: false, exitCode: 0 });
    expect(account.folders).toEqual([
      expect.objectContaining({
        folder: "INBOX",
        rightName: "INBOX",
        copied: { left: 1, right: 2 },
        created: [],
        conflicts: [],
        stops: [],
        errors: [],
        drift: [],
        verified: true,
      }),
    ]);
    // No human summary on either stream.
    expect(r.out).not.toContain("folder(s) verified");
    expect(r.err).not.toContain("folder(s) verified");
  });

  it.concurrent("conflict policy fail stops with exit 3; --conflict keep resolves it", async () => {
    const s = setup({ account: 'conflict = "fail"' });
    seed(s.left, "A B");
    expect((await s.tandem("sync")).code).toBe(0);
    change(s.left, "xA");
    change(s.right, "+A:F");

    const failed = await s.tandem("sync");
    expect(failed.code).toBe(3);
    expect(failed.out).toBe("");
    expect(failed.err).toContain("INBOX:");
    expect(failed.err).toContain("1 conflict(s) open");
    expect(failed.err).toMatch(/conflict \S+: /);
    // Nothing was decided: A is still gone on the left and flagged on the right.
    expect(show(s.left)).toBe("B");
    expect(show(s.right)).toBe("A:F B");

    const json = await s.tandem("sync", "--json");
    expect(json.code).toBe(3);
    const doc = JSON.parse(json.out);
    expect(doc.exitCode).toBe(3);
    expect(doc.accounts[0].folders[0].conflicts).toHaveLength(1);

    const kept = await s.tandem("sync", "--conflict", "keep");
    expect(kept.err).toBe("");
    expect(kept.code).toBe(0);
    expect(show(s.left)).toBe("A:F B");
    expect(show(s.right)).toBe("A:F B");
    expect((await s.tandem("verify")).code).toBe(0);
  });

  it.concurrent("the max-delete guard stops with exit 4 and names --force; --force goes on", async () => {
    const s = setup({ account: "maxDelete = 50" });
    seed(s.left, "A B C D E F");
    expect((await s.tandem("sync")).code).toBe(0);
    change(s.left, "xA xB xC xD");

    const stopped = await s.tandem("sync");
    expect(stopped.code).toBe(4);
    expect(stopped.out).toBe("");
    expect(stopped.err).toContain("stopped");
    expect(stopped.err).toContain("too many removals on right (4 of 6, more than 50%)");
    expect(stopped.err).toContain("--force");
    expect(show(s.right)).toBe("A B C D E F");

    const json = await s.tandem("sync", "--json");
    expect(json.code).toBe(4);
    expect(JSON.parse(json.out).accounts[0].folders[0].stops).toEqual([
      expect.objectContaining({ guard: "max-delete" }),
    ]);

    const forced = await s.tandem("sync", "--force");
    expect(forced.code).toBe(0);
    expect(forced.out).toContain("removed 4 on right, 0 on left");
    expect(show(s.left)).toBe("E F");
    expect(show(s.right)).toBe("E F");
  });

  it.concurrent("state files are private: directories 0700, files 0600", async () => {
    const s = setup();
    seed(s.left, "A");
    expect((await s.tandem("sync")).code).toBe(0);
    const dir = join(s.state, ACCOUNT);
    expect(mode(s.state).toString(8)).toBe("700");
    expect(mode(dir).toString(8)).toBe("700");
    const files = readdirSync(dir).sort();
    expect(files).toEqual(expect.arrayContaining(["left.db", "right.db", "status.json"]));
    expect(files).not.toContain("lock");
    for (const f of files) expect(`${f} ${mode(join(dir, f)).toString(8)}`).toBe(`${f} 600`);
  });
});

describe("dist/tandem output to a reader that went away", () => {
  it.concurrent("`tandem sync | true`: the run completes, no crash, the exit status is the run's", async () => {
    const s = setup();
    seed(s.left, "A B:S");
    // `true` exits without reading: every write to the pipe fails with EPIPE.
    const r = await s.exec("bash", [
      "-c",
      `set -o pipefail; "${BIN}" sync --json --config "${s.config}" | true`,
    ]);
    expect(r.err).not.toMatch(/EPIPE|Unhandled|at /);
    expect(r.code).toBe(0);
    expect(show(s.right)).toBe("A B:S");
  });
});

describe("dist/tandem verify and status", () => {
  it.concurrent("verify finds a message deleted behind tandem's back (exit 3, key named)", async () => {
    const s = setup();
    seed(s.left, "A B C");
    expect((await s.tandem("sync")).code).toBe(0);
    const clean = await s.tandem("verify");
    expect(clean.code).toBe(0);
    expect(clean.out).toContain("INBOX: verified");

    const key = keyOf(s.right, "B");
    change(s.right, "xB");
    const r = await s.tandem("verify");
    expect(r.code).toBe(3);
    expect(r.out).toContain("1 drift");
    expect(r.out).toContain(`drift on right ${key}: `);

    const json = await s.tandem("verify", "--json");
    expect(json.code).toBe(3);
    const doc = JSON.parse(json.out);
    expect(doc.exitCode).toBe(3);
    expect(doc.accounts[0].folders[0].drift).toEqual([
      expect.objectContaining({ folder: "INBOX", side: "right", key }),
    ]);
    // verify writes nothing to the Maildirs: the drift is still there.
    expect(show(s.left)).toBe("A B C");
    expect(show(s.right)).toBe("A C");
  });

  it.concurrent("status and status --json show the last run and the message counts", async () => {
    const s = setup();
    const never = await s.tandem("status");
    expect(never.code).toBe(0);
    expect(never.out).toContain(`${ACCOUNT}: never synced`);

    seed(s.left, "A B");
    seed(s.right, "C");
    const t0 = Date.now();
    expect((await s.tandem("sync")).code).toBe(0);

    const r = await s.tandem("status");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      new RegExp(
        `^${ACCOUNT}: last run \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z, exit 0; left 3 messages in 1 folders, right 3 in 1\\n$`,
      ),
    );

    const json = await s.tandem("status", "--json");
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.out);
    expect(doc.accounts).toEqual([
      {
        account: ACCOUNT,
        stateDir: join(s.state, ACCOUNT),
        lastRun: expect.any(String),
        lastExitCode: 0,
        left: { folders: 1, messages: 3 },
        right: { folders: 1, messages: 3 },
      },
    ]);
    const last = Date.parse(doc.accounts[0].lastRun);
    expect(last).toBeGreaterThanOrEqual(t0 - 1000);
    expect(last).toBeLessThanOrEqual(Date.now());
  });
});

describe("dist/tandem errors", () => {
  it.concurrent("exit 2 for usage and config errors, with the message on stderr", async () => {
    const s = setup();
    seed(s.left, "A");
    const cases: [string[], string][] = [
      [["sync", "nosuch"], `no account "nosuch" in ${s.config} (accounts: ${ACCOUNT})`],
      [["sync", "--maxage", "abc"], '--maxage expects a whole number of days, got "abc"'],
      [["sync", "--maxage", "0"], '--maxage expects a whole number of days, got "0"'],
      [
        ["sync", "--conflict", "maybe"],
        '--conflict expects one of keep, left, right, fail, ask, got "maybe"',
      ],
      [["verify", "nosuch"], 'no account "nosuch"'],
      [["status", "nosuch"], 'no account "nosuch"'],
    ];
    const results = await Promise.all(cases.map(([args]) => s.tandem(...args)));
    results.forEach((r, i) => {
      const [args, message] = cases[i]!;
      expect({ args, code: r.code, out: r.out }).toEqual({ args, code: 2, out: "" });
      expect(r.err).toContain(message);
    });
    // Nothing ran: no state, no right Maildir.
    expect(existsSync(s.state)).toBe(false);
    expect(existsSync(s.right)).toBe(false);

    const bad = join(s.dir, "bad.toml");
    writeFileSync(bad, `[defaults]\nmaxDelete = 10\n[accounts.mail.left\ntype = "maildir"\n`);
    const syntax = await s.exec(BIN, ["sync", "--config", bad]);
    expect(syntax.code).toBe(2);
    expect(syntax.out).toBe("");
    expect(syntax.err).toContain(`${basename(bad)}:3`);
    expect(syntax.err).toContain("TOML syntax error");
  });

  it.concurrent("exit 1 when a Maildir root cannot be created", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tandem-e2e-file-"));
    dirs.push(dir);
    writeFileSync(join(dir, "plain-file"), "not a directory\n");
    const right = join(dir, "plain-file", "maildir");
    const s = setup({ right });
    seed(s.left, "A");
    const r = await s.tandem("sync");
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toContain(`${ACCOUNT}: failed: `);
    expect(r.err).toContain(join(dir, "plain-file"));
    // The left side is untouched and the lock is released.
    expect(show(s.left)).toBe("A");
    expect(existsSync(join(s.state, ACCOUNT, "lock"))).toBe(false);
  });

  it.concurrent("a lock held by a live process makes sync exit 1; a dead owner's lock is taken over", async () => {
    const s = setup();
    seed(s.left, "A");
    const lockDir = join(s.state, ACCOUNT);
    const lock = join(lockDir, "lock");
    mkdirSync(lockDir, { recursive: true, mode: 0o700 });

    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
    children.push(sleeper);
    const livePid = sleeper.pid!;
    try {
      writeFileSync(lock, `${livePid}\n`);
      const busy = await s.tandem("sync");
      expect(busy.code).toBe(1);
      expect(busy.out).toBe("");
      expect(busy.err).toContain(
        `Cannot sync account "${ACCOUNT}": it is busy, another tandem run (pid ${livePid}) holds its lock`,
      );
      expect(readFileSync(lock, "utf8")).toBe(`${livePid}\n`);
      expect(existsSync(s.right)).toBe(false);
    } finally {
      sleeper.kill("SIGKILL");
      if (sleeper.exitCode === null && sleeper.signalCode === null)
        await new Promise((done) => sleeper.on("exit", done));
    }

    const gone = spawn("true", [], { stdio: "ignore" });
    const deadPid = gone.pid!;
    await new Promise((done) => gone.on("exit", done));
    writeFileSync(lock, `${deadPid}\n`);
    const taken = await s.tandem("sync");
    expect(taken.err).toBe("");
    expect(taken.code).toBe(0);
    expect(show(s.right)).toBe("A");
    expect(existsSync(lock)).toBe(false);
  });
});

describe("dist/tandem with a damaged state file", () => {
  it.concurrent("status, sync and verify report it with exit 1, no internal error", async () => {
    const s = setup();
    seed(s.left, "A");
    expect((await s.tandem("sync")).code).toBe(0);
    const db = join(s.state, ACCOUNT, "left.db");
    writeFileSync(db, "x".repeat(200));
    for (const args of [["status"], ["status", "--json"], ["sync"], ["verify"]]) {
      const r = await s.tandem(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.out + r.err).toContain(`State file ${db} is damaged`);
      expect(r.err).not.toContain("internal error");
    }
    const json = await s.tandem("sync", "--json");
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out).accounts[0].failure).toContain("is damaged");
    expect(readFileSync(db, "utf8")).toBe("x".repeat(200));
  });
});

describe("a run with nothing changed, in every shipped form (the embedded print worker started)", () => {
  for (const [form, cmd] of [
    ["dist/tandem", () => [BIN]],
    ["node dist/tandem.cjs", () => [process.execPath, CJS]],
    ["deno run -A dist/tandem.mjs", () => [DENO, "run", "-A", MJS]],
  ] as const) {
    it.concurrent(`${form}: proven by the last run's proof; a change afterwards is synced`, async () => {
      const s = setup();
      const [exe, ...pre] = cmd();
      const sync = async () => {
        const r = await s.exec(exe!, [...pre, "sync", "--json", "--config", s.config]);
        expect(r.err).toBe("");
        return JSON.parse(r.out) as { exitCode: number; accounts: Array<{ proven?: boolean }> };
      };
      seed(s.left, "A B:S");
      seed(s.right, "C:F");
      mkdirSync(join(s.left, ".Box", "cur"), { recursive: true });
      for (const sub of ["new", "tmp"]) mkdirSync(join(s.left, ".Box", sub));
      seed(join(s.left, ".Box"), "D E:R");
      expect((await sync()).exitCode).toBe(0);
      const again = await sync();
      expect(again.exitCode).toBe(0);
      expect(again.accounts[0]!.proven).toBe(true);
      seed(s.right, "F");
      const changed = await sync();
      expect(changed.accounts[0]!.proven).toBeUndefined();
      expect(show(s.left)).toBe("A B:S C:F F");
      expect((await sync()).accounts[0]!.proven).toBe(true);
    });
  }
});

describe("the other shipped forms", () => {
  it.concurrent("deno run -A dist/tandem.mjs: sync does real work, verify agrees", async () => {
    const s = setup();
    seed(s.left, "A B:S");
    seed(s.right, "C:F");
    const deno = (...args: string[]) => s.exec(DENO, ["run", "-A", MJS, ...args, "--config", s.config]);
    const r = await deno("sync");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("INBOX: copied 2 → right, 1 → left; verified");
    expect(show(s.left)).toBe("A B:S C:F");
    expect(show(s.right)).toBe("A B:S C:F");
    const v = await deno("verify", "--json");
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out).exitCode).toBe(0);
    // The state Deno wrote is the state node reads.
    const status = await s.tandem("status", "--json");
    expect(JSON.parse(status.out).accounts[0].left).toEqual({ folders: 1, messages: 3 });
  });

  it.concurrent("node dist/tandem.cjs sync", async () => {
    const s = setup();
    seed(s.left, "A");
    seed(s.right, "B:S");
    const r = await s.exec(process.execPath, [CJS, "sync", "--config", s.config]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("INBOX: copied 1 → right, 1 → left; verified");
    expect(show(s.left)).toBe("A B:S");
    expect(show(s.right)).toBe("A B:S");
    expect((await s.tandem("verify")).code).toBe(0);
  });
});
