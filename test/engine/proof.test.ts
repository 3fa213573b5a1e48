import { readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import { DriverError } from "../../src/drivers/driver.js";
import { SideState } from "../../src/state/side-state.js";
import { change, cleanPair, DAY, drift, NOW, seed, show, sync, type World, work } from "./harness.js";

// The fast path of a run where nothing changed (src/engine/proof.ts): a clean run leaves a proof;
// the next run lists every folder in full, and only when every listing matches the proof is it
// done without loading the states. Every kind of change must send the run down the ordinary path.

const stateDir = (w: World) => join(w.account.stateDir, w.account.name);

describe("proof of an unchanged account", () => {
  it("a second run with nothing changed is proven: nothing loaded, nothing written", async () => {
    const w = await cleanPair();
    try {
      const db = join(stateDir(w), "left.db");
      const before = readFileSync(db);
      const r = await sync(w);
      expect(r.proven).toBe(true);
      expect(r.exitCode).toBe(EXIT.ok);
      expect(work(r)).toBe(0);
      expect(r.folders.map((f) => [f.folder, f.verified])).toEqual([
        ["INBOX", true],
        ["work", true],
      ]);
      expect(readFileSync(db).equals(before)).toBe(true);
      // And again: a proven run leaves the proof valid.
      expect((await sync(w)).proven).toBe(true);
    } finally {
      w.cleanup();
    }
  });

  const changes: [string, (w: World) => void, string, string][] = [
    ["a flag added on the left", (w) => change(w.roots.left, "+A:F"), "A:F B:S C:FS D:R", "E F:S"],
    ["a flag taken away on the right", (w) => change(w.roots.right, "-C:F"), "A B:S C:S D:R", "E F:S"],
    ["a new message in a subfolder", (w) => change(w.roots.right, "nG", "work"), "A B:S C:FS D:R", "E F:S G"],
    ["a removal", (w) => change(w.roots.left, "xB"), "A C:FS D:R", "E F:S"],
    // Same count on that side, other keys: only the fingerprint tells.
    ["one removed, one new", (w) => change(w.roots.left, "xA nH"), "B:S C:FS D:R H", "E F:S"],
  ];
  for (const [what, act, inbox, work_] of changes) {
    it(`${what}: the ordinary path syncs it, and the run after is proven again`, async () => {
      const w = await cleanPair();
      try {
        act(w);
        const r = await sync(w);
        expect(r.proven).toBeUndefined();
        expect(r.exitCode).toBe(EXIT.ok);
        expect(work(r)).toBeGreaterThan(0);
        for (const side of ["left", "right"] as const) {
          expect(show(w.roots[side])).toBe(inbox);
          expect(show(w.roots[side], "work")).toBe(work_);
        }
        const again = await sync(w);
        expect(again.proven).toBe(true);
        expect(work(again)).toBe(0);
      } finally {
        w.cleanup();
      }
    });
  }

  it("one folder changed: only it is synced; the others are proven on their own", async () => {
    const w = await cleanPair();
    try {
      seed(w.roots.left, "X", "quiet");
      await sync(w);
      expect((await sync(w)).proven).toBe(true);
      change(w.roots.right, "+E:F", "work");
      const r = await sync(w);
      expect(r.proven).toBeUndefined();
      expect(r.exitCode).toBe(EXIT.ok);
      const by = (name: string) => r.folders.find((f) => f.folder === name)!;
      expect(by("work").proven).toBeUndefined();
      expect(by("work").flagged.left).toBe(1);
      expect(by("INBOX").proven).toBe(true);
      expect(by("quiet").proven).toBe(true);
      expect(r.folders.every((f) => f.verified)).toBe(true);
      expect(show(w.roots.left, "work")).toBe("E:F F:S");
      // The proof carried over for the untouched folders still holds with the new states.
      const again = await sync(w);
      expect(again.proven).toBe(true);
      expect(work(again)).toBe(0);
      // And it is still a real proof: a change in a folder proven last time is seen.
      change(w.roots.left, "-B:S");
      const third = await sync(w);
      expect(third.folders.find((f) => f.folder === "INBOX")!.flagged.right).toBe(1);
      expect(show(w.roots.right)).toBe("A B C:FS D:R");
    } finally {
      w.cleanup();
    }
  });

  it("a new folder, and a folder removed on one side, are never proven away", async () => {
    const w = await cleanPair();
    try {
      seed(w.roots.left, "N", "fresh");
      let r = await sync(w);
      expect(r.proven).toBeUndefined();
      expect(show(w.roots.right, "fresh")).toBe("N");
      expect((await sync(w)).proven).toBe(true);
      change(w.roots.right, "xN", "fresh");
      await sync(w);
      // The empty folder removed on the left: its removal on the right must be seen.
      const { rmSync } = await import("node:fs");
      rmSync(join(w.roots.left, ".fresh"), { recursive: true });
      r = await sync(w);
      expect(r.proven).toBeUndefined();
      expect(r.folders.find((f) => f.folder === "fresh")?.removedFolder).toBe("right");
      expect((await sync(w)).proven).toBe(true);
    } finally {
      w.cleanup();
    }
  });

  it("drift planted in a state after a clean run is found, not proven away", async () => {
    const w = await cleanPair();
    try {
      const state = await SideState.open(stateDir(w), "right");
      const row = state.rows("INBOX").find((x) => x.flags.length === 0)!;
      state.putMessage({ ...row, flags: ["\\Flagged"] });
      state.save();
      state.close();
      // The stores did not change, the state did: the proof no longer vouches for it.
      const r = await sync(w);
      expect(r.proven).toBeUndefined();
      expect(r.exitCode).toBe(EXIT.ok);
      expect(drift(r)).toEqual([]);
      expect(show(w.roots.left)).toBe("A B:S C:FS D:R");
      expect(show(w.roots.right)).toBe("A B:S C:FS D:R");
    } finally {
      w.cleanup();
    }
  });

  it("a state file touched, a config changed, a maxage or a --folder run: the ordinary path", async () => {
    const w = await cleanPair();
    try {
      const db = join(stateDir(w), "right.db");
      utimesSync(db, new Date(NOW), new Date(NOW + DAY));
      let r = await sync(w);
      expect(r.proven).toBeUndefined();
      expect(r.exitCode).toBe(EXIT.ok);
      // Untouched since that run (nothing was written): the proof it left holds again.
      expect((await sync(w)).proven).toBe(true);

      w.account.exclude = ["nothing-matches-this"];
      r = await sync(w);
      expect(r.proven).toBeUndefined();
      expect((await sync(w)).proven).toBe(true);

      expect((await sync(w, { maxage: 3650 })).proven).toBeUndefined();
      expect((await sync(w, { folders: ["work"] })).proven).toBeUndefined();
      // A run of part of the account leaves no proof behind it.
      expect((await sync(w)).proven).toBeUndefined();
      expect((await sync(w)).proven).toBe(true);
    } finally {
      w.cleanup();
    }
  });

  it("a run that ends with an open conflict leaves no proof", async () => {
    const w = await cleanPair();
    try {
      // Removed on one side, changed on the other: the one conflict there is.
      change(w.roots.left, "xA");
      change(w.roots.right, "+A:F");
      w.account.conflict = "fail";
      const r = await sync(w);
      expect(r.folders[0]!.conflicts.length).toBeGreaterThan(0);
      const again = await sync(w);
      expect(again.proven).toBeUndefined();
      expect(again.folders[0]!.conflicts.length).toBeGreaterThan(0);
    } finally {
      w.cleanup();
    }
  });

  it("a store that cannot be opened: the other one, opened, is closed again (with and without a proof)", async () => {
    for (const withProof of [true, false]) {
      const w = await cleanPair();
      if (!withProof) rmSync(join(stateDir(w), "proof.json"));
      let closed = 0;
      const r = await sync(w, {
        wrap: (store, side) => {
          if (side === "right") throw new DriverError("cannot log in", { scope: "store", code: "EAUTH" });
          const close = store.close.bind(store);
          store.close = async () => {
            closed++;
            await close();
          };
          return store;
        },
      });
      expect(r.failure, String(withProof)).toContain("cannot log in");
      expect(closed, String(withProof)).toBe(1);
    }
  });

  it("a torn proof file is no proof", async () => {
    const w = await cleanPair();
    try {
      await sync(w);
      const file = join(stateDir(w), "proof.json");
      writeFileSync(file, readFileSync(file, "utf8").slice(0, 40));
      const r = await sync(w);
      expect(r.proven).toBeUndefined();
      expect(r.exitCode).toBe(EXIT.ok);
      expect((await sync(w)).proven).toBe(true);
    } finally {
      w.cleanup();
    }
  });
});
