// The Maildir print worker's code (src/drivers/maildir/print-worker.ts) bundled on its own, one
// CommonJS string: scripts/build.mjs embeds it in the shipped forms, and the driver's tests run it
// from source (test/drivers/maildir-print-worker.test.ts) exactly as built.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export async function printWorkerBundle() {
  const built = await esbuild.build({
    absWorkingDir: root,
    entryPoints: ["src/drivers/maildir/print-worker.ts"],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    write: false,
    legalComments: "none",
    logLevel: "warning",
    packages: "bundle",
  });
  return built.outputFiles[0].text;
}
