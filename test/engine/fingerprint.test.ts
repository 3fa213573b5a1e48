import { describe, expect, it } from "vitest";
import { fingerprintOf, ListingPrint } from "../../src/model/fingerprint.js";

type E = { key: string; flags: string[] };

function listing(n: number): E[] {
  const out: E[] = [];
  for (let i = 0; i < n; i++)
    out.push({
      key: `17000000${i}.M${i}P42.host`,
      flags: i % 3 === 0 ? ["\\Answered", "\\Seen"] : ["\\Seen"],
    });
  return out;
}

describe("fingerprintOf (the proof's print of a listing)", () => {
  it("is the same in any order of entries and of each entry's flags", () => {
    const a = listing(500);
    const shuffled = [...a].reverse().map((e) => ({ key: e.key, flags: [...e.flags].reverse() }));
    expect(fingerprintOf(shuffled)).toBe(fingerprintOf(a));
    expect(fingerprintOf(new Map(a.map((e) => [e.key, e])).values())).toBe(fingerprintOf(a));
    // The caller's flags are not sorted in place.
    expect(shuffled[shuffled.length - 1]!.flags).toEqual(["\\Seen", "\\Answered"]);
  });

  it("changes with one flag, one key, one entry more or less, or one entry moved to another key", () => {
    const a = listing(500);
    const base = fingerprintOf(a);
    const variants: E[][] = [
      a.map((e, i) => (i === 3 ? { key: e.key, flags: ["\\Seen"] } : e)),
      a.map((e, i) => (i === 7 ? { key: e.key, flags: [...e.flags, "$Junk"] } : e)),
      a.map((e, i) => (i === 9 ? { key: `${e.key}x`, flags: e.flags } : e)),
      a.slice(1),
      [...a, { key: "new", flags: [] }],
      // Two entries swap their flags: the same multiset of flag sets, other pairs of key and flags.
      a.map((e, i) =>
        i === 0 ? { key: e.key, flags: a[1]!.flags } : i === 1 ? { key: e.key, flags: a[0]!.flags } : e,
      ),
    ];
    const prints = variants.map(fingerprintOf);
    for (const p of prints) expect(p).not.toBe(base);
    expect(new Set(prints).size).toBe(prints.length);
  });

  it("tells a flag from a key boundary and no flags from an empty listing", () => {
    expect(fingerprintOf([{ key: "ab", flags: [] }])).not.toBe(fingerprintOf([{ key: "a", flags: ["b"] }]));
    expect(fingerprintOf([{ key: "a", flags: ["b", "c"] }])).not.toBe(
      fingerprintOf([{ key: "a", flags: ["bc"] }]),
    );
    expect(fingerprintOf([])).not.toBe(fingerprintOf([{ key: "", flags: [] }]));
  });

  it("goes on from a digest: entries added and dropped give the print of the listing they leave", () => {
    const a = listing(300);
    const p = ListingPrint.from(fingerprintOf(a.slice(0, 200)))!;
    for (const e of a.slice(200)) p.add(e.key, e.flags);
    expect(p.digest()).toBe(fingerprintOf(a));
    // Drop ten entries and change the flags of five others (drop the old entry, add the new one).
    for (const e of a.slice(0, 10)) p.drop(e.key, e.flags);
    for (const e of a.slice(10, 15)) {
      p.drop(e.key, e.flags);
      p.add(e.key, ["\\Flagged"]);
    }
    const left = [...a.slice(10, 15).map((e) => ({ key: e.key, flags: ["\\Flagged"] })), ...a.slice(15)];
    expect(p.digest()).toBe(fingerprintOf(left));
    // Everything dropped: the print of no listing.
    const q = ListingPrint.from(fingerprintOf(a))!;
    for (const e of a) q.drop(e.key, e.flags);
    expect(q.digest()).toBe(fingerprintOf([]));
    expect(ListingPrint.from("m1:3:abc")).toBeUndefined();
    expect(ListingPrint.from(`x${fingerprintOf(a)}`)).toBeUndefined();
  });

  it("flagText() of a flag set's text ends an entry as flags() of the set does, in any order", () => {
    const sets = [[], ["\\Seen"], ["\\Seen", "\\Answered"], ["$Junk", "\\Flagged", "Work"], ["a", "b c"]];
    for (const flags of sets) {
      const a = new ListingPrint();
      const b = new ListingPrint();
      a.key("1700.M1P2.host");
      a.flags(flags);
      b.key("1700.M1P2.host");
      b.flagText(ListingPrint.flagText([...flags].reverse()));
      expect(b.digest()).toBe(a.digest());
    }
    // And differs with the set: the text is the set's, not a constant.
    const one = new ListingPrint();
    one.key("k");
    one.flagText(ListingPrint.flagText(["\\Seen"]));
    const none = new ListingPrint();
    none.key("k");
    none.flagText(ListingPrint.flagText([]));
    expect(one.digest()).not.toBe(none.digest());
  });
});
