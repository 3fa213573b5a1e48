import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { loadSqlWasm } from "../../src/wasm/sql-wasm-binary.js";

describe("loadSqlWasm from source", () => {
  it("reads the installed sql.js WebAssembly when nothing is embedded", () => {
    const bytes = loadSqlWasm();
    expect(bytes).toBeInstanceOf(Uint8Array);
    const file = createRequire(import.meta.url).resolve("sql.js/dist/sql-wasm.wasm");
    expect(Buffer.from(bytes!).equals(readFileSync(file))).toBe(true);
    expect(Buffer.from(bytes!.subarray(0, 4)).toString("latin1")).toBe("\0asm");
  });
});
