import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { embeddedSqlWasm } from "./embedded-sql-wasm.js";

/**
 * The bytes of sql.js's WebAssembly module (`sql-wasm.wasm`), to pass to `initSqlJs({ wasmBinary })`.
 *
 * - In the shipped bundles the bytes are embedded: the build swaps `embedded-sql-wasm.ts` for a
 *   module importing the file with esbuild's `binary` loader (see scripts/build.mjs, wasm/README.md).
 *   Nothing is read from disk, so dist/tandem runs with no file beside it.
 * - From source (vitest, `node --import tsx`, ...) nothing is embedded, and the file is read from
 *   the installed sql.js package. This keeps vitest free of any `.wasm` import plugin.
 *
 * Returns undefined only when neither is available; sql.js would then look for the file itself.
 */
export function loadSqlWasm(): Uint8Array | undefined {
  const embedded = embeddedSqlWasm();
  if (embedded) return embedded;
  try {
    const file = createRequire(import.meta.url).resolve("sql.js/dist/sql-wasm.wasm");
    return readFileSync(file);
  } catch {
    return undefined;
  }
}
