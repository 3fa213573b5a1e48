// The engine's scenario table (test/engine/table.ts) with IMAP on one or both sides, against a
// real Dovecot: every row and its mirror, a second run that does nothing, and (IMAP ↔ Maildir)
// each run cut off before and after every store write, then resumed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import type { Side } from "../../src/model/types.js";
import { drift, work } from "../engine/harness.js";
import { ALL, type Scenario } from "../engine/table.js";
import { type DovecotServer, dovecotAvailable, startDovecot } from "../helpers/dovecot.js";
import { FaultCounter, makeSidesWorld, type SideKind, type SidesWorld, sync } from "./sides.js";

const skip = !dovecotAvailable() && !process.env.CI;

let server: DovecotServer;
beforeAll(async () => {
  if (!skip) server = await startDovecot();
});
afterAll(() => server?.stop());

async function prepare(kinds: Record<Side, SideKind>, s: Scenario): Promise<SidesWorld> {
  const w = await makeSidesWorld(kinds, { server, conflict: s.policy ?? "keep", maxage: s.maxage });
  await Promise.all([w.sides.left.seed(s.base), w.sides.right.seed(s.base)]);
  const first = await sync(w, { policy: "keep" });
  expect(first.exitCode, `base sync: ${JSON.stringify(first)}`).toBe(EXIT.ok);
  await Promise.all([w.sides.left.change(s.left ?? ""), w.sides.right.change(s.right ?? "")]);
  return w;
}

async function expectFinal(w: SidesWorld, s: Scenario, what = ""): Promise<void> {
  const exp = typeof s.expect === "string" ? { left: s.expect, right: s.expect } : s.expect;
  const [left, right] = await Promise.all([w.sides.left.show(), w.sides.right.show()]);
  expect({ left, right }, what).toEqual(exp);
}

const PAIRS: [string, Record<Side, SideKind>][] = [
  ["IMAP ↔ Maildir", { left: "imap", right: "maildir" }],
  ["IMAP ↔ IMAP", { left: "imap", right: "imap" }],
];

for (const [label, kinds] of PAIRS) {
  describe.skipIf(skip).concurrent(`engine scenarios (${label})`, () => {
    for (const s of ALL) {
      it(`${s.name}: result, then a second run does nothing`, async () => {
        const w = await prepare(kinds, s);
        try {
          const force = s.force ?? false;
          const r = await sync(w, { force });
          expect(r.exitCode, JSON.stringify(r, null, 1)).toBe(s.exit ?? EXIT.ok);
          expect(drift(r)).toEqual([]);
          await expectFinal(w, s);
          const again = await sync(w, { force });
          expect(work(again), JSON.stringify(again.folders)).toBe(0);
          expect(again.exitCode).toBe(s.exit ?? EXIT.ok);
          expect(drift(again)).toEqual([]);
          await expectFinal(w, s);
        } finally {
          w.cleanup();
        }
      });
    }
  });
}

describe
  .skipIf(skip)
  .concurrent("engine scenarios cut off at every write and resumed (IMAP ↔ Maildir)", () => {
    const kinds: Record<Side, SideKind> = { left: "imap", right: "maildir" };
    for (const s of ALL.filter((x) => (x.exit ?? EXIT.ok) !== EXIT.guard)) {
      it(s.name, async () => {
        const force = s.force ?? false;
        const probe = await prepare(kinds, s);
        const counter = new FaultCounter();
        await sync(probe, { counter, force });
        probe.cleanup();
        for (let at = 0; at < counter.writes; at++) {
          for (const when of ["before", "after"] as const) {
            const w = await prepare(kinds, s);
            try {
              const cut = await sync(w, { counter: new FaultCounter({ at, when }), force });
              expect(cut.exitCode, `cut at write ${at} ${when}`).toBe(EXIT.failure);
              const resumed = await sync(w, { force });
              expect(resumed.exitCode, `resume after cut at ${at} ${when}: ${JSON.stringify(resumed)}`).toBe(
                s.exit ?? EXIT.ok,
              );
              expect(drift(resumed), `cut at ${at} ${when}`).toEqual([]);
              await expectFinal(w, s, `after cut at ${at} ${when}`);
              const again = await sync(w, { force });
              expect(work(again), `third run after cut at ${at} ${when}`).toBe(0);
            } finally {
              w.cleanup();
            }
          }
        }
      });
    }
  });
