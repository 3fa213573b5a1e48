import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Most test time is spent waiting on Dovecot and the disk, not the CPU: more files at once than cores.
    maxWorkers: 3,
    // Verification then also reads the rows back from the state database and checks them against
    // the rows the engine carried through the run (src/engine/sync-account.ts).
    env: { TANDEM_CHECK_ROWS: "1" },
  },
});
