/**
 * Placeholder for the embedded sql.js WebAssembly. When running from source (vitest, tsc) there is
 * nothing embedded and this returns undefined. `scripts/build.mjs` replaces this whole module in
 * the bundles with one that imports `wasm/sql-wasm.wasm` through esbuild's `binary` loader, so
 * the bytes travel inside dist/tandem.cjs, dist/tandem.mjs and dist/tandem. Keep the export's
 * name and signature in step with the plugin in scripts/build.mjs.
 */
export function embeddedSqlWasm(): Uint8Array | undefined {
  return undefined;
}
