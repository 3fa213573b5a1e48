// syncFolders() lets a folder's verification run on while the next folder is listed and written,
// and never lets two folders write at once: a journal flush must not make durable the record of a
// store write that the other folder has not flushed yet (sync-account.ts, writeTurn()).
import { afterEach, describe, expect, it } from "vitest";
import { DriverError, type Folder, type Store } from "../../src/drivers/driver.js";
import {
  change,
  drift,
  makeWorld,
  passFolder,
  seed,
  show,
  sync,
  type World,
  wrapFolders,
} from "./harness.js";

const FOLDERS = ["one", "two", "three"];

let world: World | undefined;
afterEach(() => {
  world?.cleanup();
  world = undefined;
});

/** Three folders synced once (a proof is left), then a flag changed on the left in each. */
async function changedPair(): Promise<World> {
  const w = makeWorld();
  for (const f of FOLDERS) seed(w.roots.left, `${f}A ${f}B:S ${f}C`, f);
  expect((await sync(w)).exitCode).toBe(0);
  for (const f of FOLDERS) change(w.roots.left, `+${f}A:F -${f}B:S`, f);
  return w;
}

type Event = { what: "write" | "flush" | "print-start" | "print-end"; folder: string };

/**
 * The right side's folders, each write, flush and print logged; `hold` (folder → ms) holds a
 * folder's prints that long, each write takes `slow` ms; `fail` folders fail their first print
 * after their writes with a retryable error, `onFail` called first.
 */
function logged(
  log: Event[],
  hold: Record<string, number> = {},
  slow = 0,
  fail = new Set<string>(),
  onFail: (folder: string) => void = () => {},
): (store: Store, side: "left" | "right") => Store {
  return (store, side) =>
    side === "left"
      ? store
      : wrapFolders(store, (f: Folder) => {
          const note = (what: Event["what"]) => log.push({ what, folder: f.name });
          const write =
            <A extends unknown[], T>(fn: (...a: A) => Promise<T>) =>
            async (...a: A): Promise<T> => {
              note("write");
              await new Promise((r) => setTimeout(r, slow));
              return await fn(...a);
            };
          return {
            ...passFolder(f),
            append: write((i) => f.append(i)),
            setFlags: write((k, a, r) => f.setFlags(k, a, r)),
            remove: write((k) => f.remove(k)),
            flush: async () => {
              note("flush");
              await f.flush?.();
            },
            printFlags: async () => {
              note("print-start");
              const wrote = log.some((e) => e.folder === f.name && e.what === "write");
              if (wrote && fail.delete(f.name)) {
                onFail(f.name);
                throw new DriverError("injected: connection lost while printing", {
                  scope: "store",
                  retryable: true,
                });
              }
              await new Promise((r) => setTimeout(r, hold[f.name] ?? 0));
              const p = await f.printFlags!();
              note("print-end");
              return p;
            },
          };
        });
}

/**
 * One folder writes at a time: wherever the writes pass from one folder to another, the first has
 * flushed in between (its turn ends with the flush that makes its writes and their records durable).
 */
function expectTurns(log: Event[]): void {
  let last: { folder: string; at: number } | undefined;
  let handovers = 0;
  log.forEach((e, i) => {
    if (e.what !== "write") return;
    if (last && last.folder !== e.folder) {
      handovers++;
      const flushed = log.slice(last.at, i).some((x) => x.folder === last!.folder && x.what === "flush");
      expect(flushed, `${e.folder} wrote at ${i} before ${last.folder} flushed its write at ${last.at}`).toBe(
        true,
      );
    }
    last = { folder: e.folder, at: i };
  });
  expect(handovers).toBeGreaterThan(1);
}

describe("a folder's verification and the next folder's writes", () => {
  it("the next folder is written while a folder's verification print is under way", async () => {
    world = await changedPair();
    const log: Event[] = [];
    // Every verification print held long enough for the next folder to be listed and written.
    const r = await sync(world, { wrap: logged(log, { one: 300, two: 300, three: 300 }) });
    expect(r.exitCode).toBe(0);
    expect(drift(r)).toEqual([]);
    for (const f of FOLDERS) expect(show(world.roots.right, f)).toBe(show(world.roots.left, f));
    // Some folder's print was held while another folder wrote.
    const overlapped = FOLDERS.some((f) => {
      // The verification print: the first after the folder's writes (the proof's came before).
      const wrote = log.findIndex((e) => e.folder === f && e.what === "write");
      const start = log.findIndex((e, i) => i > wrote && e.folder === f && e.what === "print-start");
      const end = log.findIndex((e, i) => i > start && e.folder === f && e.what === "print-end");
      return start >= 0 && log.slice(start, end).some((e) => e.what === "write" && e.folder !== f);
    });
    expect(overlapped, JSON.stringify(log)).toBe(true);
    expectTurns(log);
    // The next run has nothing to do, and proves it.
    const again = await sync(world);
    expect(again.exitCode).toBe(0);
    expect(again.proven).toBe(true);
  });

  it("a store failure at the next folder goes up only after the held verification has settled", async () => {
    world = await changedPair();
    const log: Event[] = [];
    const inner = logged(log, { one: 300, two: 300, three: 300 });
    let opens = 0;
    const r = await sync(world, {
      wrap: (store, side) => {
        const s = inner(store, side);
        if (side === "left") return s;
        // The right store dies when the run opens its second folder for syncing.
        return {
          ...s,
          openFolder: async (name, o) => {
            if (!o?.lookOnly && ++opens === 2)
              throw new DriverError("injected: store gone", { scope: "store" });
            return await s.openFolder(name, o);
          },
        };
      },
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.failure).toMatch(/store gone/);
    // The first folder's verification print (held 300 ms) ended before the run returned.
    const first = r.folders.find((f) => FOLDERS.includes(f.folder) && f.verified);
    expect(first, JSON.stringify(r.folders)).toBeDefined();
    const ends = log.filter((e) => e.folder === first!.folder && e.what === "print-end");
    expect(ends.length).toBe(2);
  });

  it("a verification that fails and is retried waits for its turn to write; the run ends clean", async () => {
    world = await changedPair();
    const w = world;
    const log: Event[] = [];
    // Each failed verification meets a new change on the left: its retry has writes to make,
    // while the next folder is being written.
    const r = await sync(w, {
      wrap: logged(log, {}, 20, new Set(FOLDERS), (f) => change(w.roots.left, `+${f}C:FS`, f)),
      retryDelayScale: 0.0001,
    });
    expect(
      r.exitCode,
      JSON.stringify(r.folders.map((f) => [f.folder, f.errors, f.conflicts, f.stops, f.drift])),
    ).toBe(0);
    expect(drift(r)).toEqual([]);
    expect(r.folders.every((f) => f.errors.length === 0 && f.verified)).toBe(true);
    for (const f of FOLDERS) expect(show(world.roots.right, f)).toBe(show(world.roots.left, f));
    for (const f of FOLDERS) expect(show(w.roots.right, f)).toContain(`${f}C:FS`);
    // Each folder wrote twice (its changes, then the new one on retry), never inside another's turn.
    for (const f of FOLDERS)
      expect(log.filter((e) => e.folder === f && e.what === "write").length).toBeGreaterThan(2);
    expectTurns(log);
    const again = await sync(w);
    expect(again.exitCode).toBe(0);
    expect(again.proven).toBe(true);
  });
});
