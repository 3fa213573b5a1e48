import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import { SCHEMA_VERSION } from "../../src/state/side-state.js";
import { change, makeWorld, seed, show, sync, work } from "./harness.js";

describe("damaged state", () => {
  const cases: [string, (file: string) => void, RegExp][] = [
    ["garbage", (f) => writeFileSync(f, "this is not a database at all".repeat(10)), /damaged/],
    ["truncated", (f) => truncateSync(f, 2000), /damaged/],
    [
      "a changed byte inside (header and length intact)",
      (f) => {
        const b = readFileSync(f);
        b[b.length - 2000]! ^= 0x01;
        writeFileSync(f, b);
      },
      /damaged .*checksum/,
    ],
    [
      "a newer schema",
      (f) => {
        const b = readFileSync(f);
        // user_version lives at byte offset 60 of the SQLite header, big-endian.
        b.writeUInt32BE(SCHEMA_VERSION + 1, 60);
        writeFileSync(f, b);
      },
      /newer than this tandem/,
    ],
  ];
  for (const [what, damage, message] of cases) {
    it(`${what}: refused with a message naming the file; --resync rebuilds without doubling`, async () => {
      const w = makeWorld();
      try {
        seed(w.roots.left, "A B:S");
        seed(w.roots.right, "C");
        expect((await sync(w)).exitCode).toBe(EXIT.ok);
        change(w.roots.left, "nD");
        expect((await sync(w)).exitCode).toBe(EXIT.ok);
        const dir = join(w.account.stateDir, w.account.name);
        expect(existsSync(join(dir, "left.db.bak"))).toBe(true);
        const file = join(dir, "left.db");
        damage(file);
        const r = await sync(w);
        expect(r.exitCode).toBe(EXIT.failure);
        expect(r.failure).toContain(file);
        expect(r.failure).toMatch(message);
        expect(show(w.roots.left)).toBe("A B:S C D");
        change(w.roots.right, "nE");
        const fixed = await sync(w, { resync: true });
        expect(fixed.exitCode, JSON.stringify(fixed)).toBe(EXIT.ok);
        expect(fixed.notes.join(" ")).toMatch(/moved aside/);
        expect(readdirSync(dir).some((n) => n.startsWith("left.db.damaged-"))).toBe(true);
        expect(show(w.roots.left)).toBe("A B:S C D E");
        expect(show(w.roots.right)).toBe("A B:S C D E");
        expect(work(await sync(w))).toBe(0);
      } finally {
        w.cleanup();
      }
    });
  }
});
