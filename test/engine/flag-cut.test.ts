// A run cut off at any of its state journal flushes while it carries a flag change from one side
// to the other, then the user takes the change back where it was made: the next run must end with
// the user's last word on both sides, not with the flag the cut run had written. (Seen once in the
// chaos test: the target side's row and the end of its FLAGS intent reached its journal, the
// source side's row did not reach the other journal, and the revert then looked like no change.)
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import type { Side } from "../../src/model/types.js";
import { SideState } from "../../src/state/side-state.js";
import { change, drift, makeWorld, seed, show, sync } from "./harness.js";

/** Runs `fn` with the `nth` flush of `side`'s state failing (the process dies there). */
async function cutAt<T>(side: Side, nth: number, fn: () => Promise<T>): Promise<T | undefined> {
  const flush = SideState.prototype.flush;
  let calls = 0;
  SideState.prototype.flush = function (this: SideState) {
    if (this.side === side && ++calls === nth) throw new Error("cut");
    return flush.call(this);
  };
  try {
    return await fn();
  } catch (err) {
    if ((err as Error).message !== "cut") throw err;
    return undefined;
  } finally {
    SideState.prototype.flush = flush;
  }
}

describe("a flag change cut off at a journal flush, then taken back by the user", () => {
  for (const side of ["left", "right"] as const)
    for (let nth = 1; nth <= 6; nth++)
      it(`cut at the ${side} state's flush #${nth}: the user's revert wins on both sides`, async () => {
        const w = makeWorld();
        try {
          seed(w.roots.left, "A B:S");
          seed(w.roots.right, "C");
          expect((await sync(w)).exitCode).toBe(EXIT.ok);
          change(w.roots.left, "+A:F");
          await cutAt(side, nth, () => sync(w));
          change(w.roots.left, "-A:F");
          const r = await sync(w);
          expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
          expect(drift(r)).toEqual([]);
          expect(show(w.roots.left)).toBe("A B:S C");
          expect(show(w.roots.right)).toBe("A B:S C");
        } finally {
          w.cleanup();
        }
      });
});
