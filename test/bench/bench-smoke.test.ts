/**
 * Smoke test of `npm run bench` at a tiny size: the benchmark runs every phase for every installed
 * tool against a private Dovecot, and every correctness check holds. No time is asserted.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dovecotAvailable } from "../helpers/dovecot.js";

const root = resolve(import.meta.dirname, "../..");
const BIN = join(root, "dist", "tandem");
const dir = mkdtempSync(join(tmpdir(), "tandem-bench-smoke-"));

interface Run {
  ok: boolean;
  wallSeconds: number;
  correct: boolean;
  duplicates: number;
  serverMessages: number;
  maildirMessages: number;
}
interface ToolResult {
  runs: Run[];
  correct: boolean;
  allRunsOk: boolean;
}
interface BenchJson {
  ok: boolean;
  params: { tools: string[] };
  createMicros: number;
  notes: string[];
  phases: {
    id: number;
    key: string;
    tools: Record<string, ToolResult>;
    runRatios: (number | null)[] | null;
  }[];
}

function runBench(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(root, "scripts", "bench", "run.mjs"), ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    const timer = setTimeout(() => child.kill("SIGTERM"), 100_000);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, out, err });
    });
  });
}

beforeAll(() => {
  if (!existsSync(BIN)) {
    const r = spawnSync(process.execPath, [join(root, "scripts", "build.mjs")], {
      cwd: root,
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
  }
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!dovecotAvailable())("npm run bench (smoke, tiny corpus)", () => {
  it("runs every phase and every correctness check holds", { timeout: 110_000 }, async () => {
    const json = join(dir, "bench.json");
    const r = await runBench(["--messages", "60", "--folders", "3", "--runs", "1", "--json", json]);
    expect(r.code, `stdout:\n${r.out}\nstderr:\n${r.err}`).toBe(0);
    expect(r.out).toContain("first sync");

    const result = JSON.parse(readFileSync(json, "utf8")) as BenchJson;
    expect(result.ok).toBe(true);
    expect(result.params.tools).toContain("tandem");
    // File creation was timed before the first syncs; a slow one is a note, in the JSON and on stdout.
    expect(result.createMicros).toBeGreaterThan(0);
    const slow = result.notes.filter((n) => n.startsWith("file creation in "));
    expect(slow).toHaveLength(result.createMicros > 100 ? 1 : 0);
    for (const n of slow) expect(r.out).toContain(`note: ${n}`);
    expect(result.phases.map((p) => p.id)).toEqual([1, 2, 3, 4, 5]);
    for (const phase of result.phases) {
      const expected = phase.id === 5 ? ["tandem"] : result.params.tools;
      expect(Object.keys(phase.tools).sort(), phase.key).toEqual([...expected].sort());
      // With both tools, each pair of runs has its ratio; with tandem alone there is none.
      if (expected.includes("mbsync")) {
        const t = phase.tools.tandem!.runs[0]!.wallSeconds;
        const m = phase.tools.mbsync!.runs[0]!.wallSeconds;
        expect(phase.runRatios, phase.key).toEqual([t / m]);
      } else expect(phase.runRatios, phase.key).toBeNull();
      for (const [tool, t] of Object.entries(phase.tools)) {
        const label = `${phase.key} ${tool}`;
        expect(t.runs, label).toHaveLength(1);
        expect(t.allRunsOk, label).toBe(true);
        expect(t.correct, label).toBe(true);
        for (const run of t.runs) {
          expect(run.ok && run.correct, label).toBe(true);
          expect(run.duplicates, label).toBe(0);
          expect(run.maildirMessages, label).toBe(run.serverMessages);
          expect(run.maildirMessages, label).toBeGreaterThan(0);
        }
      }
    }
  });
});
