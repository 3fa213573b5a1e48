import initSqlJs from "sql.js";
import { loadSqlWasm } from "../wasm/sql-wasm-binary.js";

// The only module that loads sql.js (ARCHITECTURE.md: only src/state/ imports it).
export type SqlJs = Awaited<ReturnType<typeof initSqlJs>>;
export type Database = InstanceType<SqlJs["Database"]>;
export type Statement = ReturnType<Database["prepare"]>;

let sqlPromise: Promise<SqlJs> | undefined;

/** Loads sql.js once per process, with the WebAssembly embedded in the bundle (no file beside the binary). */
export function loadSqlJs(): Promise<SqlJs> {
  if (!sqlPromise) {
    const wasmBinary = loadSqlWasm();
    // Emscripten wants an ArrayBuffer holding exactly the module's bytes.
    const buf = wasmBinary?.buffer.slice(
      wasmBinary.byteOffset,
      wasmBinary.byteOffset + wasmBinary.byteLength,
    );
    sqlPromise = initSqlJs(buf ? { wasmBinary: buf as ArrayBuffer } : {});
  }
  return sqlPromise;
}
