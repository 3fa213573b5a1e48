import { loadSqlWasm } from "../../wasm/sql-wasm-binary.js";
import { EXIT } from "../exit.js";
import { type CliContext, hidden, type RegisterCommand } from "./context.js";

/**
 * Hidden `tandem selftest`: proves a shipped form carries a working sql.js, WebAssembly included,
 * by opening an in-memory database and running `select 1+1`. sql.js is imported lazily so that
 * other commands do not pay for loading it.
 */
export const registerSelftest: RegisterCommand = (cli, ctx: CliContext) =>
  hidden(
    cli.command("selftest", "Check that the embedded components load").action(async (): Promise<number> => {
      const wasmBinary = loadSqlWasm();
      if (!wasmBinary) {
        ctx.err("tandem: selftest failed: sql.js WebAssembly not found\n");
        return EXIT.failure;
      }
      const { default: initSqlJs } = await import("sql.js");
      const SQL = await initSqlJs({ wasmBinary: wasmBinary as unknown as ArrayBuffer });
      const db = new SQL.Database();
      try {
        const value = db.exec("select 1+1")[0]?.values[0]?.[0];
        if (value !== 2) {
          ctx.err(`tandem: selftest failed: select 1+1 returned ${String(value)}\n`);
          return EXIT.failure;
        }
      } finally {
        db.close();
      }
      ctx.out("selftest ok\n");
      return EXIT.ok;
    }),
  );
