#!/usr/bin/env node
/**
 * `npm test [-- vitest args]`: typecheck, lint, build, then the test suite, in that order. Stops at
 * the first failing step and exits with its status. Extra arguments go to `vitest run`.
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// vitest's JSON report, read back for one plain closing line of counts.
const summaryFile = join(tmpdir(), `tandem-vitest-${process.pid}.json`);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const steps = [
  ["typecheck", npm, ["run", "--silent", "typecheck"]],
  ["lint", npm, ["run", "--silent", "lint"]],
  ["build", npm, ["run", "--silent", "build"]],
  [
    "vitest",
    join(root, "node_modules", ".bin", "vitest"),
    [
      "run",
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${summaryFile}`,
      ...process.argv.slice(2),
    ],
  ],
];

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: "inherit" });
    child.on("error", (err) => {
      console.error(`test: cannot run ${cmd}: ${err.message}`);
      resolve(1);
    });
    child.on("exit", (code, signal) => resolve(code ?? 128 + (constants.signals[signal] ?? 0)));
  });
}

const started = performance.now();
for (const [name, cmd, args] of steps) {
  console.log(`\n== ${name}`);
  const t0 = performance.now();
  const code = await run(cmd, args);
  const took = ((performance.now() - t0) / 1000).toFixed(1);
  if (code !== 0) {
    console.log(`== ${name}: FAILED (exit ${code}) after ${took} s`);
    if (name === "vitest") printCounts();
    process.exit(code);
  }
  console.log(`== ${name}: ok, ${took} s`);
}
console.log(`\n== all steps passed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
printCounts();

/** The plain closing line CI reads: `tests: N passed, N failed, N skipped`. */
function printCounts() {
  try {
    const r = JSON.parse(readFileSync(summaryFile, "utf8"));
    rmSync(summaryFile, { force: true });
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  } catch {
    // No report (vitest did not run): the steps above said why.
  }
}
