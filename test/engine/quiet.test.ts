import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import type { Store } from "../../src/drivers/driver.js";
import { mirrored } from "../../src/engine/quiet.js";
import type { FolderJob } from "../../src/engine/sync-folder.js";
import type { Side } from "../../src/model/types.js";
import { SideState, type StateRow } from "../../src/state/side-state.js";
import { change, cleanPair, drift, makeWorld, passFolder, show, sync, work, wrapFolders } from "./harness.js";

// The quiet-side path (src/engine/quiet.ts): after a clean run, a folder whose one side prints
// exactly as that run left it is synced from the other side's changes only, and verified by the
// states' prints carried forward from the proof. Every result must be the ordinary path's.

const other = (s: Side): Side => (s === "left" ? "right" : "left");

describe("quiet-side path", () => {
  const cases: [string, string, string, string][] = [
    ["a new message", "nG:S", "A B:S C:FS D:R G:S", "E F:S"],
    ["a flag added and one taken away", "+A:F -C:F", "A:F B:S C:S D:R", "E F:S"],
    ["a removal", "xB", "A C:FS D:R", "E F:S"],
    ["one removed, one new, one flagged", "xA nH +D:S", "B:S C:FS D:RS H", "E F:S"],
  ];
  for (const [what, spec, inbox, work_] of cases)
    for (const side of ["left", "right"] as const) {
      it(`${what} on the ${side}: synced from its changes only, verified by carried prints`, async () => {
        const w = await cleanPair();
        try {
          change(w.roots[side], spec);
          const r = await sync(w);
          expect(r.exitCode).toBe(EXIT.ok);
          expect(drift(r)).toEqual([]);
          const inboxReport = r.folders.find((f) => f.folder === "INBOX")!;
          // The other side is the quiet one; and the carried prints matched the stores' fresh ones.
          expect(inboxReport.quiet).toBe(other(side));
          expect(inboxReport.verified).toBe(true);
          expect(r.folders.find((f) => f.folder === "work")!.proven).toBe(true);
          for (const s of ["left", "right"] as const) {
            expect(show(w.roots[s])).toBe(inbox);
            expect(show(w.roots[s], "work")).toBe(work_);
          }
          // The proof it left is a real one: the next run is proven, and a change after it is seen.
          const again = await sync(w);
          expect(again.proven).toBe(true);
          expect(work(again)).toBe(0);
          change(w.roots[other(side)], "-C:S");
          const third = await sync(w);
          expect(third.folders.find((f) => f.folder === "INBOX")!.quiet).toBe(side);
          expect(show(w.roots[side])).toBe(show(w.roots[other(side)]));
        } finally {
          w.cleanup();
        }
      });
    }

  it("changes on both sides of a folder take the ordinary path", async () => {
    const w = await cleanPair();
    try {
      change(w.roots.left, "+A:F");
      change(w.roots.right, "nG");
      const r = await sync(w);
      expect(r.exitCode).toBe(EXIT.ok);
      expect(r.folders.find((f) => f.folder === "INBOX")!.quiet).toBeUndefined();
      expect(show(w.roots.left)).toBe("A:F B:S C:FS D:R G");
      expect(show(w.roots.right)).toBe("A:F B:S C:FS D:R G");
      expect((await sync(w)).proven).toBe(true);
    } finally {
      w.cleanup();
    }
  });

  it("a folder the proof path printed is not printed again to find its quiet side", async () => {
    const w = await cleanPair();
    try {
      change(w.roots.left, "nG");
      const prints = { left: 0, right: 0 };
      const r = await sync(w, {
        wrap: (store, side) => counting(store, () => prints[side]++),
      });
      expect(r.folders.find((f) => f.folder === "INBOX")!.quiet).toBe("right");
      // The proof path prints both folders on each side; after the copy, verification prints the
      // written side afresh; the changed side, not written since, stands as printed. Nothing else.
      expect(prints).toEqual({ left: 2, right: 3 });
    } finally {
      w.cleanup();
    }
  });

  it("a message another program removes from the quiet side during the run is drift, named", async () => {
    const w = await cleanPair();
    try {
      change(w.roots.left, "nG");
      // While tandem copies G to the right, another program removes D there: the right's fresh
      // print then differs from the carried one, and the full comparison must name D.
      let removed = "";
      const r = await sync(w, {
        wrap: (store, side) =>
          side === "right" ? meddling(store, () => (removed = removeTagged(w.roots.right, "D"))) : store,
      });
      expect(removed).not.toBe("");
      expect(r.exitCode).toBe(EXIT.drift);
      const inbox = r.folders.find((f) => f.folder === "INBOX")!;
      expect(inbox.quiet).toBeUndefined();
      expect(inbox.verified).toBe(false);
      expect(drift(r)).toEqual([`INBOX right ${removed} recorded in the state but missing from the store`]);
    } finally {
      w.cleanup();
    }
  });
});

describe("mirrored(): carried prints stand for the state only when its written rows are the ones kept in hand", () => {
  const row = (key: string, flags: string[] = []): StateRow => ({
    folder: "INBOX",
    key,
    pairId: `l:${key}`,
    flags,
    size: 1,
    date: 1,
    digest: "",
  });
  it("true for writes mirrored exactly; false for a row written behind the engine's back or kept but not written", async () => {
    const w = makeWorld();
    try {
      const state = await SideState.open(join(w.dir, "st"), "left");
      for (const k of ["a", "b", "c"]) state.putMessage(row(k));
      state.save();
      state.close();
      // Opened again: what it wrote before does not count as written by this run.
      const s = await SideState.open(join(w.dir, "st"), "left");
      try {
        const job = {
          names: { left: "INBOX", right: "INBOX" },
          states: { left: s, right: s },
        } as unknown as FolderJob;
        expect(s.keysWritten("INBOX")).toBeNull();
        s.watchWrites("INBOX");
        const before = new Map([["a", row("a")]]);
        const after = new Map([
          ["a", row("a", ["\\Seen"])],
          ["d", row("d")],
        ]);
        s.putMessage(row("a", ["\\Seen"]));
        s.putMessage(row("d"));
        expect(mirrored(job, "left", before, after)).toBe(true);
        // A row kept in hand as changed, never written: the carried print would be wrong.
        const e = new Map(after).set("e", row("e"));
        expect(mirrored(job, "left", before, e)).toBe(false);
        // A row the state wrote that the engine does not hold.
        s.putMessage(row("b", ["\\Flagged"]));
        expect(mirrored(job, "left", before, after)).toBe(false);
        expect([...(s.keysWritten("INBOX") ?? [])].sort()).toEqual(["a", "b", "d"]);
        s.deleteFolder("INBOX");
        expect(s.keysWritten("INBOX")).toBeNull();
        // A watch begun after a write cannot tell what was written before it.
        s.putMessage(row("x", []));
        s.watchWrites("INBOX");
        expect(s.keysWritten("INBOX")).toBeNull();
        s.putMessage({ ...row("y"), folder: "Other" });
        s.watchWrites("Fresh");
        expect(s.keysWritten("Fresh")).toEqual(new Set());
      } finally {
        s.close();
      }
    } finally {
      w.cleanup();
    }
  });
});

/** The key (file name before `:2,`) of the message tagged `tag`, after removing its file. */
function removeTagged(root: string, tag: string): string {
  for (const sub of ["cur", "new"]) {
    for (const name of readdirSync(join(root, sub))) {
      if (!name.includes(".test")) continue;
      const file = join(root, sub, name);
      if (!readFileSync(file, "latin1").includes(`Subject: ${tag}\r\n`)) continue;
      unlinkSync(file);
      return name.split(":2,")[0]!;
    }
  }
  return "";
}

/** A store whose folders call `onPrint` at each printFlags(). */
function counting(store: Store, onPrint: () => void): Store {
  return meddling(store, () => {}, onPrint);
}

/** A store whose folders call `onAppend` once, after their first append (and `onPrint` at each print). */
function meddling(store: Store, onAppend: () => void, onPrint = () => {}): Store {
  let done = false;
  return wrapFolders(store, (f) => ({
    ...passFolder(f),
    printFlags:
      f.printFlags &&
      (() => {
        onPrint();
        return f.printFlags!();
      }),
    append: async (i) => {
      const key = await f.append(i);
      if (!done) {
        done = true;
        onAppend();
      }
      return key;
    },
    flush: f.flush && (() => f.flush!()),
  }));
}
