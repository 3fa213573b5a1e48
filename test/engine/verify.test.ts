import { describe, expect, it } from "vitest";
import type { Folder } from "../../src/drivers/driver.js";
import { verifyFolder } from "../../src/engine/verify.js";
import { fingerprintOf } from "../../src/model/fingerprint.js";
import type { MessageMeta, Side } from "../../src/model/types.js";
import type { StateRow } from "../../src/state/side-state.js";

// verifyFolder on its own, with listings handed in (no store is read): each kind of drift it can
// name, found exactly, in a folder where everything else agrees.

const DAY = 86_400_000;

function row(side: Side, key: string, pairId: string, flags: string[] = [], date = 100 * DAY): StateRow {
  return { folder: side === "left" ? "L" : "R", key, pairId, flags, size: 10, date, digest: "" };
}

/** The listing a store would give for these rows (keys and flags as recorded). */
function listingOf(rows: StateRow[]): Map<string, MessageMeta> {
  return new Map(rows.map((r) => [r.key, { key: r.key, flags: [...r.flags], size: r.size, date: r.date }]));
}

const noStore = {} as Folder;

async function drift(
  rows: Record<Side, StateRow[]>,
  listing: Record<Side, Map<string, MessageMeta>>,
  opts: { minDate?: number; skip?: string[] } = {},
): Promise<string[]> {
  const found = await verifyFolder({
    folder: { left: "L", right: "R" },
    handles: { left: noStore, right: noStore },
    rows,
    minDate: opts.minDate ?? 0,
    skipPairs: new Set(opts.skip ?? []),
    listing,
  });
  return found.map((d) => `${d.side} ${d.key} ${d.what}`);
}

describe("verifyFolder", () => {
  const left = [row("left", "1/1", "p1", ["\\Seen"]), row("left", "1/2", "p2"), row("left", "1/3", "p3")];
  const right = [row("right", "a", "p1", ["\\Seen"]), row("right", "b", "p2"), row("right", "c", "p3")];

  it("finds nothing where stores and states agree, and leaves the listings it was given as they were", async () => {
    const listing = { left: listingOf(left), right: listingOf(right) };
    expect(await drift({ left, right }, listing)).toEqual([]);
    expect([...listing.left.keys()]).toEqual(["1/1", "1/2", "1/3"]);
    expect([...listing.right.keys()]).toEqual(["a", "b", "c"]);
  });

  it("names each store-side drift: missing, flags, unrecorded", async () => {
    const l = listingOf(left);
    l.delete("1/2");
    l.get("1/3")!.flags = ["\\Flagged"];
    const r = listingOf(right);
    r.set("z", { key: "z", flags: [], size: 1, date: 100 * DAY });
    expect(await drift({ left, right }, { left: l, right: r })).toEqual([
      "left 1/2 recorded in the state but missing from the store",
      'left 1/3 flags differ: state has "", store has "\\Flagged"',
      "right z in the store but not paired",
    ]);
  });

  it("names each state-side drift: a pair known on one side only, states that disagree on flags", async () => {
    const l = [...left, row("left", "1/4", "p4")];
    const r = [
      row("right", "a", "p1", ["\\Seen"]),
      row("right", "b", "p2", ["\\Seen"]),
      row("right", "d", "p5"),
    ];
    expect(await drift({ left: l, right: r }, { left: listingOf(l), right: listingOf(r) })).toEqual([
      'left 1/2 states disagree on flags: left "", right "\\Seen"',
      "left 1/3 pair recorded on left only",
      "left 1/4 pair recorded on left only",
      "right d pair recorded on right only",
    ]);
  });

  it("a pairId recorded twice on one side does not hide a pair the other side knows alone", async () => {
    const l = [row("left", "1/1", "p1", ["\\Seen"]), row("left", "1/2", "p1", ["\\Seen"])];
    const r = [row("right", "a", "p1", ["\\Seen"]), row("right", "b", "p2")];
    const found = await drift({ left: l, right: r }, { left: listingOf(l), right: listingOf(r) });
    expect(found).toContain("right b pair recorded on right only");
    expect(found).toContain("left 1/2 pair recorded on left only");
  });

  it("a pairId recorded twice on both sides is named, though both states print the same pairs", async () => {
    const l = [row("left", "1/1", "p1", ["\\Seen"]), row("left", "1/2", "p1", ["\\Seen"])];
    const r = [row("right", "a", "p1", ["\\Seen"]), row("right", "b", "p1", ["\\Seen"])];
    const found = await drift({ left: l, right: r }, { left: listingOf(l), right: listingOf(r) });
    expect(found).toContain("left 1/2 pair recorded on left only");
  });

  it("where all agrees, the stores are printed, not listed; where a print differs, listed and named", async () => {
    const calls: string[] = [];
    const store = (side: Side, listed: MessageMeta[]): Folder =>
      ({
        printFlags: async () => {
          calls.push(`${side} print`);
          return { count: listed.length, fingerprint: fingerprintOf(listed) };
        },
        listFlags: async () => {
          calls.push(`${side} list`);
          return listed.map((m) => ({ key: m.key, flags: m.flags }));
        },
      }) as unknown as Folder;
    const prints: string[] = [];
    const verify = (l: MessageMeta[], r: MessageMeta[]) =>
      verifyFolder({
        folder: { left: "L", right: "R" },
        handles: { left: store("left", l), right: store("right", r) },
        rows: { left, right },
        minDate: 0,
        fingerprint: (side, fingerprint, count) => prints.push(`${side} ${count} ${fingerprint}`),
      });
    const l = [...listingOf(left).values()];
    const r = [...listingOf(right).values()];
    expect(await verify(l, r)).toEqual([]);
    expect(calls).toEqual(["left print", "right print"]);
    expect(prints).toEqual([`left 3 ${fingerprintOf(l)}`, `right 3 ${fingerprintOf(r)}`]);
    calls.length = 0;
    const changed = r.map((m) => (m.key === "b" ? { ...m, flags: ["\\Flagged"] } : m));
    expect((await verify(l, changed)).map((d) => `${d.side} ${d.key} ${d.what}`)).toEqual([
      'right b flags differ: state has "", store has "\\Flagged"',
    ]);
    expect(calls).toEqual(["left print", "right print", "left list", "right list"]);
  });

  it("held pairs and pairs outside the window are not drift; listed messages outside it are not either", async () => {
    const l = [row("left", "1/1", "p1", ["\\Seen"]), row("left", "1/2", "old", [], 1 * DAY)];
    const r = [row("right", "a", "p1")];
    const ll = listingOf(l);
    ll.delete("1/2");
    const rl = listingOf(r);
    rl.set("y", { key: "y", flags: [], size: 1, date: 2 * DAY });
    expect(
      await drift({ left: l, right: r }, { left: ll, right: rl }, { minDate: 50 * DAY, skip: ["p1"] }),
    ).toEqual([]);
  });
});
