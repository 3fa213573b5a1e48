import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { change, seed, show } from "../engine/harness.js";

/**
 * What only a terminal shows: policy `ask` prompting, and the live progress line. `script` (from
 * util-linux/bsdutils, on every Debian) gives the binary a pseudo-terminal on stdin and stderr.
 */
const root = resolve(import.meta.dirname, "../..");
const bin = join(root, "dist", "tandem");
const haveScript = existsSync("/usr/bin/script");

interface Run {
  code: number;
  out: string;
}

function inTerminal(args: string[], input: string): Promise<Run> {
  const cmd = [bin, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  return new Promise((done) => {
    const child = spawn("script", ["-qec", cmd, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    // Answer only once the question is on the screen.
    const answer = setInterval(() => {
      if (/\[k\]eep/.test(out) || /msg\/s/.test(out)) {
        child.stdin.write(input);
        clearInterval(answer);
      }
    }, 20);
    child.on("exit", (code) => {
      clearInterval(answer);
      done({ code: code ?? -1, out });
    });
  });
}

function noTerminal(args: string[]): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("exit", (code) => done({ code: code ?? -1, out }));
  });
}

interface World {
  dir: string;
  left: string;
  right: string;
  config: string;
}

function world(): World {
  const dir = mkdtempSync(join(tmpdir(), "tandem-tty-"));
  const left = join(dir, "left");
  const right = join(dir, "right");
  const config = join(dir, "config.toml");
  writeFileSync(
    config,
    `[defaults]\nstateDir = ${JSON.stringify(join(dir, "state"))}\n[accounts.t]\nconflict = "ask"\n` +
      `[accounts.t.left]\ntype = "maildir"\npath = ${JSON.stringify(left)}\n` +
      `[accounts.t.right]\ntype = "maildir"\npath = ${JSON.stringify(right)}\n`,
  );
  return { dir, left, right, config };
}

const made: string[] = [];
beforeAll(() => {
  if (!existsSync(bin)) throw new Error("dist/tandem is missing: npm test builds it first");
});
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

async function conflicted(): Promise<World> {
  const w = world();
  made.push(w.dir);
  seed(w.left, "A B");
  seed(w.right, "A B");
  expect((await noTerminal(["sync", "--config", w.config])).code).toBe(0);
  change(w.left, "xA");
  change(w.right, "+A:F");
  return w;
}

describe.skipIf(!haveScript)("on a terminal", () => {
  it("policy ask: the user keeps the message", async () => {
    const w = await conflicted();
    const r = await inTerminal(["sync", "--config", w.config], "k\n");
    expect(r.out).toMatch(/removed on left, flags changed on right/);
    expect(r.code, r.out).toBe(0);
    expect(show(w.left)).toBe("A:F B");
    expect(show(w.right)).toBe("A:F B");
  });

  it("policy ask: the user lets the removal win", async () => {
    const w = await conflicted();
    const r = await inTerminal(["sync", "--config", w.config], "r\n");
    expect(r.code, r.out).toBe(0);
    expect(show(w.left)).toBe("B");
    expect(show(w.right)).toBe("B");
  });

  it("policy ask without a terminal acts as fail: exit 3, nothing decided", async () => {
    const w = await conflicted();
    const r = await noTerminal(["sync", "--config", w.config]);
    expect(r.code, r.out).toBe(3);
    expect(r.out).toMatch(/conflict/);
    expect(show(w.right)).toBe("A:F B");
  });

  it("a live progress line while copying, none with --quiet", async () => {
    const w = world();
    made.push(w.dir);
    const tags = Array.from({ length: 400 }, (_, i) => `P${i}`).join(" ");
    seed(w.left, tags);
    const r = await inTerminal(["sync", "--config", w.config], "");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/INBOX: \d+\/400 copied, \d+ msg\/s/);
    const w2 = world();
    made.push(w2.dir);
    seed(w2.left, tags);
    const q = await inTerminal(["sync", "--config", w2.config, "--quiet"], "");
    expect(q.code, q.out).toBe(0);
    expect(q.out).not.toMatch(/msg\/s/);
  });
});
