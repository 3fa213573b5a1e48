import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import {
  change,
  DAY,
  drift,
  FaultCounter,
  makeWorld,
  NOW,
  seed,
  show,
  sync,
  type World,
  work,
} from "./harness.js";
import { ALL, type Scenario } from "./table.js";

/**
 * The engine's decisions as a table (SYNC-MODEL.md "What the tests must show"). Each row:
 * `base` is what both sides hold after a first sync; `left`/`right` are a mail client's changes
 * (notation in harness.ts); `expect` is both sides afterwards (or `left`/`right` when they differ).
 * Every row also runs with the sides swapped, is run a second time (nothing left to do), and is
 * cut off at every store write, before and after the write lands, then resumed.
 */
async function prepare(s: Scenario): Promise<World> {
  const w = makeWorld({ conflict: s.policy ?? "keep", maxage: s.maxage });
  seed(w.roots.left, s.base);
  seed(w.roots.right, s.base);
  const first = await sync(w, { policy: "keep" });
  expect(first.exitCode, `base sync: ${JSON.stringify(first)}`).toBe(EXIT.ok);
  change(w.roots.left, s.left ?? "");
  change(w.roots.right, s.right ?? "");
  return w;
}

function expectFinal(w: World, s: Scenario): void {
  const exp = typeof s.expect === "string" ? { left: s.expect, right: s.expect } : s.expect;
  expect({ left: show(w.roots.left), right: show(w.roots.right) }).toEqual(exp);
}

describe("engine scenarios (Maildir ↔ Maildir)", () => {
  for (const s of ALL) {
    it(`${s.name}: result, then a second run plans nothing`, async () => {
      const w = await prepare(s);
      try {
        const r = await sync(w, { force: s.force ?? false });
        expect(r.exitCode, JSON.stringify(r.folders, null, 1)).toBe(s.exit ?? EXIT.ok);
        expect(drift(r)).toEqual([]);
        expectFinal(w, s);
        const again = await sync(w, { force: s.force ?? false });
        expect(work(again)).toBe(0);
        expect(again.exitCode).toBe(s.exit ?? EXIT.ok);
        expect(drift(again)).toEqual([]);
        expectFinal(w, s);
      } finally {
        w.cleanup();
      }
    });
  }
});

describe("engine scenarios cut off at every write and resumed", () => {
  for (const s of ALL.filter((x) => (x.exit ?? EXIT.ok) !== EXIT.guard)) {
    it(`${s.name}`, async () => {
      const probe = await prepare(s);
      const counter = new FaultCounter();
      await sync(probe, { counter, force: s.force ?? false });
      probe.cleanup();
      for (let at = 0; at < counter.writes; at++) {
        for (const when of ["before", "after"] as const) {
          const w = await prepare(s);
          try {
            const cut = await sync(w, { counter: new FaultCounter({ at, when }), force: s.force ?? false });
            expect(cut.exitCode, `cut at write ${at} ${when}`).toBe(EXIT.failure);
            const resumed = await sync(w, { force: s.force ?? false });
            expect(
              resumed.exitCode,
              `resume after cut at ${at} ${when}: ${JSON.stringify(resumed.folders)}`,
            ).toBe(s.exit ?? EXIT.ok);
            expect(drift(resumed)).toEqual([]);
            expectFinal(w, s);
            const again = await sync(w, { force: s.force ?? false });
            expect(work(again), `third run after cut at ${at} ${when}`).toBe(0);
          } finally {
            w.cleanup();
          }
        }
      }
    });
  }
});

describe("maxage over time", () => {
  it("ageing out is not a deletion, and widening the window brings old mail in once", async () => {
    const w = makeWorld({ maxage: 30 });
    try {
      change(w.roots.left, "nA@20 nB@40");
      let r = await sync(w);
      expect(r.exitCode).toBe(EXIT.ok);
      expect(show(w.roots.right)).toBe("A");
      // 20 days later A is 40 days old: outside the window. Removing it on the left is not carried over.
      change(w.roots.left, "xA");
      r = await sync(w, { now: NOW + 20 * DAY });
      expect(r.exitCode).toBe(EXIT.ok);
      expect(show(w.roots.right)).toBe("A");
      // Widen the window: B (60 days old by then) comes in, once; A is inside again, and since the
      // user did remove it on the left, that removal is now carried over.
      r = await sync(w, { now: NOW + 20 * DAY, maxage: 90 });
      expect(r.exitCode).toBe(EXIT.ok);
      expect(show(w.roots.right)).toBe("B");
      expect(show(w.roots.left)).toBe("B");
      r = await sync(w, { now: NOW + 20 * DAY, maxage: 90 });
      expect(work(r)).toBe(0);
      expect(show(w.roots.right)).toBe("B");
    } finally {
      w.cleanup();
    }
  });
});

describe("verify finds planted drift, exactly", () => {
  it("a message removed behind tandem's back and a flag changed are reported, nothing is mended", async () => {
    const w = makeWorld();
    try {
      seed(w.roots.left, "A B C");
      expect((await sync(w)).exitCode).toBe(EXIT.ok);
      change(w.roots.right, "xB +C:S");
      const r = await sync(w, { verifyOnly: true });
      expect(r.exitCode).toBe(EXIT.drift);
      const d = r.folders.flatMap((f) => f.drift.map((x) => `${x.side} ${x.what}`)).sort();
      expect(d).toEqual([
        'right flags differ: state has "", store has "\\Seen"',
        "right recorded in the state but missing from the store",
      ]);
      expect(show(w.roots.left)).toBe("A B C");
      expect(show(w.roots.right)).toBe("A C:S");
    } finally {
      w.cleanup();
    }
  });
});

describe("interrupted copies", () => {
  it("a copy cut off after its append is found again by its intent and content, not made twice", async () => {
    const w = makeWorld();
    try {
      change(w.roots.left, "nA nB nC");
      const cut = await sync(w, { counter: new FaultCounter({ at: 1, when: "after" }) });
      expect(cut.exitCode).toBe(EXIT.failure);
      const resumed = await sync(w);
      expect(resumed.exitCode).toBe(EXIT.ok);
      expect(resumed.folders[0]?.mended.join(" ")).toMatch(
        /found [1-3] copy\(ies\) to right that an interrupted run had made/,
      );
      expect(show(w.roots.right)).toBe("A B C");
      expect(work(await sync(w))).toBe(0);
    } finally {
      w.cleanup();
    }
  });
});

describe("flags written by a run that was cut off before recording them", () => {
  it("are tandem's own write, not a change that conflicts with a later removal", async () => {
    const w = makeWorld();
    try {
      seed(w.roots.left, "A B");
      seed(w.roots.right, "A B");
      expect((await sync(w)).exitCode).toBe(EXIT.ok);
      change(w.roots.right, "+A:S");
      const cut = await sync(w, { counter: new FaultCounter({ at: 0, when: "after" }) });
      expect(cut.exitCode).toBe(EXIT.failure);
      expect(show(w.roots.left)).toBe("A:S B");
      change(w.roots.right, "xA");
      const r = await sync(w);
      expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
      expect(show(w.roots.left)).toBe("B");
      expect(show(w.roots.right)).toBe("B");
    } finally {
      w.cleanup();
    }
  });

  it("are tandem's own write, so a flag the user takes back stays taken back", async () => {
    const w = makeWorld();
    try {
      seed(w.roots.left, "A:F");
      seed(w.roots.right, "A:F");
      expect((await sync(w)).exitCode).toBe(EXIT.ok);
      change(w.roots.left, "+A:P");
      const cut = await sync(w, { counter: new FaultCounter({ at: 0, when: "after" }) });
      expect(cut.exitCode).toBe(EXIT.failure);
      expect(show(w.roots.right)).toBe("A:FP");
      change(w.roots.left, "-A:P");
      const r = await sync(w);
      expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
      expect(show(w.roots.left)).toBe("A:F");
      expect(show(w.roots.right)).toBe("A:F");
      expect(r.folders[0]?.mended.join(" ")).toMatch(/flag record\(s\) that an interrupted run had left out/);
    } finally {
      w.cleanup();
    }
  });
});
