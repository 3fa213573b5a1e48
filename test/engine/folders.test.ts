import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import { change, deliver, drift, makeWorld, NOW, seed, show, sync, work } from "./harness.js";

describe("folders between two Maildirs", () => {
  it("a folder new on one side is created on the other with its messages, nested ones too", async () => {
    const w = makeWorld();
    try {
      seed(w.roots.left, "A", "Work");
      seed(w.roots.right, "B:S", "Work/Clients");
      const r = await sync(w);
      expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
      expect(show(w.roots.right, "Work")).toBe("A");
      expect(show(w.roots.left, "Work/Clients")).toBe("B:S");
      expect(work(await sync(w))).toBe(0);
    } finally {
      w.cleanup();
    }
  });

  it("a folder removed on one side is removed on the other when it is empty there", async () => {
    const w = makeWorld();
    try {
      mkdirSync(join(w.roots.left, ".Old", "cur"), { recursive: true });
      seed(w.roots.left, "A");
      expect((await sync(w)).exitCode).toBe(EXIT.ok);
      expect(existsSync(join(w.roots.right, ".Old"))).toBe(true);
      rmSync(join(w.roots.left, ".Old"), { recursive: true });
      const r = await sync(w);
      expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
      expect(r.folders.find((f) => f.folder === "Old")?.removedFolder).toBe("right");
      expect(existsSync(join(w.roots.right, ".Old", "cur"))).toBe(false);
      expect(show(w.roots.right)).toBe("A");
    } finally {
      w.cleanup();
    }
  });

  it("a folder removed on one side but still holding mail on the other stops with exit 4; --force brings it back", async () => {
    const w = makeWorld();
    try {
      seed(w.roots.left, "A B", "Keep");
      expect((await sync(w)).exitCode).toBe(EXIT.ok);
      rmSync(join(w.roots.left, ".Keep"), { recursive: true });
      const r = await sync(w);
      expect(r.exitCode).toBe(EXIT.guard);
      const stop = r.folders.find((f) => f.folder === "Keep")?.stops[0];
      expect(stop?.guard).toBe("folder-vanished");
      expect(stop?.message).toMatch(/--force/);
      expect(show(w.roots.right, "Keep")).toBe("A B");
      const forced = await sync(w, { force: true });
      expect(forced.exitCode, JSON.stringify(forced.folders)).toBe(EXIT.ok);
      expect(show(w.roots.left, "Keep")).toBe("A B");
      expect(show(w.roots.right, "Keep")).toBe("A B");
    } finally {
      w.cleanup();
    }
  });

  it("a folder name the other side cannot hold is reported and the other folders still sync", async () => {
    const w = makeWorld({});
    w.account.left = { type: "maildir", path: w.roots.left, layout: "fs" };
    try {
      mkdirSync(join(w.roots.left, "v1.2", "cur"), { recursive: true });
      deliver(join(w.roots.left, "v1.2"), "X");
      seed(w.roots.left, "A");
      const r = await sync(w);
      expect(r.exitCode).toBe(EXIT.failure);
      const bad = r.folders.find((f) => f.folder === "v1.2");
      expect(bad?.errors.join(" ")).toMatch(/v1\.2/);
      expect(show(w.roots.right)).toBe("A");
      expect(drift(r)).toEqual([]);
    } finally {
      w.cleanup();
    }
  });

  it("--resync forgets the state and re-pairs by content without copying twice", async () => {
    const w = makeWorld();
    try {
      seed(w.roots.left, "A B:S");
      expect((await sync(w)).exitCode).toBe(EXIT.ok);
      rmSync(w.account.stateDir, { recursive: true });
      change(w.roots.left, "nC");
      const r = await sync(w, { resync: true, now: NOW });
      expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
      expect(show(w.roots.left)).toBe("A B:S C");
      expect(show(w.roots.right)).toBe("A B:S C");
      expect(work(await sync(w))).toBe(0);
    } finally {
      w.cleanup();
    }
  });
});

describe("the rename map", () => {
  it("pairs differently named folders both ways, and a second run does nothing", async () => {
    const w = makeWorld({ rename: { "Sent Mail": "Sent" } });
    try {
      seed(w.roots.left, "A", "Sent Mail");
      seed(w.roots.right, "B:S", "Sent");
      const r = await sync(w);
      expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
      expect(r.folders.find((f) => f.folder === "Sent Mail")?.rightName).toBe("Sent");
      expect(show(w.roots.left, "Sent Mail")).toBe("A B:S");
      expect(show(w.roots.right, "Sent")).toBe("A B:S");
      expect(existsSync(join(w.roots.right, ".Sent Mail"))).toBe(false);
      expect(existsSync(join(w.roots.left, ".Sent"))).toBe(false);
      expect(work(await sync(w))).toBe(0);
    } finally {
      w.cleanup();
    }
  });
});
