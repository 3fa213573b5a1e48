#!/usr/bin/env node
/**
 * Builds the three shipped forms of tandem from src/main.ts:
 *   dist/tandem.cjs  Node, CommonJS, every dependency and the sql.js WebAssembly inside
 *   dist/tandem.mjs  the same as ESM, for Deno (`deno run -A dist/tandem.mjs`)
 *   dist/tandem      a self-contained linux executable (Node single-executable application)
 * Nothing is read beside the outputs at run time; see wasm/README.md for the WebAssembly.
 */
import { spawnSync } from "node:child_process";
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { printWorkerBundle } from "./build/print-worker.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const require = createRequire(import.meta.url);
const started = performance.now();
const rel = (p) => relative(process.cwd(), p) || ".";
const seconds = (t0) => `${((performance.now() - t0) / 1000).toFixed(2)} s`;

async function report(file, t0) {
  const { size } = await stat(file);
  const mb = size >= 1 << 20 ? `${(size / (1 << 20)).toFixed(1)} MB` : `${(size / 1024).toFixed(0)} KB`;
  console.log(`  ${rel(file).padEnd(18)} ${mb.padStart(9)}  ${seconds(t0)}`);
}

function run(cmd, args) {
  // Quiet on success ("Wrote single executable preparation blob ..."); everything on failure.
  const r = spawnSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status ?? r.signal}`);
  }
}

// ---- sql.js WebAssembly: copied to wasm/ and embedded by replacing src/wasm/embedded-sql-wasm.ts ----

const wasmSource = require.resolve("sql.js/dist/sql-wasm.wasm");
const wasmCopy = join(root, "wasm", "sql-wasm.wasm");
await mkdir(dirname(wasmCopy), { recursive: true });
await copyFile(wasmSource, wasmCopy);

function embedSqlWasm(state) {
  return {
    name: "embed-sql-wasm",
    setup(build) {
      build.onLoad({ filter: /[\\/]src[\\/]wasm[\\/]embedded-sql-wasm\.ts$/ }, () => {
        state.used = true;
        return {
          contents: `import bytes from ${JSON.stringify(wasmCopy)};\nexport function embeddedSqlWasm() { return bytes; }\n`,
          loader: "js",
          resolveDir: root,
        };
      });
    },
  };
}

// ---- the Maildir print worker: bundled on its own, embedded as a string by replacing
// src/drivers/maildir/print-worker-code.ts (a worker runs it with `eval`: no file beside the outputs) ----

function embedPrintWorker(code, state) {
  return {
    name: "embed-print-worker",
    setup(build) {
      build.onLoad({ filter: /[\\/]src[\\/]drivers[\\/]maildir[\\/]print-worker-code\.ts$/ }, () => {
        state.used = true;
        return {
          contents: `export function printWorkerCode() { return ${JSON.stringify(code)}; }\nexport function setPrintWorkerCode() {}\n`,
          loader: "js",
        };
      });
    },
  };
}

// ---- bundles ----

const common = {
  absWorkingDir: root,
  entryPoints: ["src/main.ts"],
  bundle: true,
  platform: "node",
  target: "node20",
  loader: { ".wasm": "binary" },
  legalComments: "none",
  logLevel: "warning",
  // Only the runtime entry points of dependencies; no package is left for run time.
  packages: "bundle",
};

const cjsBanner = [
  "#!/usr/bin/env node",
  // import.meta does not exist in CommonJS; give source code that uses it a working equivalent.
  'const __tandem_import_meta_url = require("node:url").pathToFileURL(__filename).href;',
].join("\n");

// Set on globalThis rather than declared: a bundled module may declare its own `require`/`__dirname`.
const esmBanner = [
  "#!/usr/bin/env node",
  'import { createRequire as __tandemCreateRequire } from "node:module";',
  'import { fileURLToPath as __tandemFileURLToPath } from "node:url";',
  'import { dirname as __tandemDirname } from "node:path";',
  "globalThis.require ??= __tandemCreateRequire(import.meta.url);",
  "globalThis.__filename ??= __tandemFileURLToPath(import.meta.url);",
  "globalThis.__dirname ??= __tandemDirname(globalThis.__filename);",
].join("\n");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
console.log("build:");

const cjsEmbed = { used: false };
const esmEmbed = { used: false };
const cjsWorker = { used: false };
const esmWorker = { used: false };
const t0 = performance.now();
const workerCode = await printWorkerBundle();
await Promise.all([
  esbuild
    .build({
      ...common,
      format: "cjs",
      outfile: join(dist, "tandem.cjs"),
      banner: { js: cjsBanner },
      define: {
        "import.meta.url": "__tandem_import_meta_url",
        "import.meta.dirname": "__dirname",
        "import.meta.filename": "__filename",
      },
      plugins: [embedSqlWasm(cjsEmbed), embedPrintWorker(workerCode, cjsWorker)],
    })
    .then(() => report(join(dist, "tandem.cjs"), t0)),
  esbuild
    .build({
      ...common,
      format: "esm",
      outfile: join(dist, "tandem.mjs"),
      banner: { js: esmBanner },
      plugins: [embedSqlWasm(esmEmbed), embedPrintWorker(workerCode, esmWorker)],
    })
    .then(() => report(join(dist, "tandem.mjs"), t0)),
]);
if (!cjsEmbed.used || !esmEmbed.used) {
  throw new Error("src/wasm/embedded-sql-wasm.ts was not bundled: the sql.js WebAssembly is not embedded");
}
if (!cjsWorker.used || !esmWorker.used) {
  throw new Error(
    "src/drivers/maildir/print-worker-code.ts was not bundled: the print worker is not embedded",
  );
}
await chmod(join(dist, "tandem.cjs"), 0o755);
await chmod(join(dist, "tandem.mjs"), 0o755);

// ---- single executable application ----

const t1 = performance.now();
const seaConfig = join(dist, "sea-config.json");
const blob = join(dist, "sea-prep.blob");
const exe = join(dist, "tandem");
await writeFile(
  seaConfig,
  `${JSON.stringify(
    { main: join(dist, "tandem.cjs"), output: blob, disableExperimentalSEAWarning: true, useCodeCache: true },
    null,
    2,
  )}\n`,
);
run(process.execPath, ["--experimental-sea-config", seaConfig]);
await copyFile(process.execPath, exe);
await chmod(exe, 0o755);
if (spawnSync("strip", ["--version"], { stdio: "ignore" }).status === 0) run("strip", [exe]);
// postject's LIEF complains about the section names of a stripped binary; the result is fine
// (test/dist checks it), so keep only other messages.
const warn = console.warn;
console.warn = (...args) => {
  if (!/Can't find string offset for section name/.test(String(args[0]))) warn(...args);
};
try {
  const { inject } = require("postject");
  await inject(exe, "NODE_SEA_BLOB", await readFile(blob), {
    sentinelFuse: "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2",
  });
} finally {
  console.warn = warn;
}
await report(exe, t1);

console.log(`build: done in ${seconds(started)}`);
