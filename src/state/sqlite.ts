import { setFlagsFromString } from "node:v8";
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
    // V8 compiles WebAssembly with its baseline compiler (Liftoff), then compiles the functions
    // that run hot again with its optimizing one (TurboFan), on background threads. For SQLite in
    // tandem's runs that second compile costs more CPU and memory than its faster code gives
    // back, even over a 100,000-message first sync (README, Speed). The flag is read when a
    // module is compiled, so it holds for sql.js's, compiled below; a runtime that does not take
    // it keeps its default.
    //
    // A run that opens its states (one with changes, a first sync) also keeps V8's heap small:
    // the young generation stays at its first size and the old one grows by 30% between full
    // collections (default: up to 32 MB and a growth of 1.1-4x). Measured on a 100,000-message
    // account: peak memory of Maildir-change runs 173 -> 147 MB, of first syncs 190 -> 154 MB,
    // for 3-7% more CPU (README, Speed). No-change runs never get here and keep V8's defaults.
    try {
      setFlagsFromString("--liftoff-only");
      setFlagsFromString("--semi-space-growth-factor=1");
      setFlagsFromString("--heap-growing-percent=30");
    } catch {
      // no V8 flags here
    }
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
