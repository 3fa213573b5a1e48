import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mergeFlags, pairIdFor, type ReconcileInput, reconcile } from "../../src/engine/reconcile.js";
import type {
  Conflict,
  ContentMatch,
  PairInfo,
  Plan,
  Resolution,
  SideChanges,
} from "../../src/model/plan.js";
import type { Flag, MessageMeta, Side } from "../../src/model/types.js";

/**
 * The pure merge (SYNC-MODEL.md step 5, invariant 6): mergeFlags and reconcile() as tables, then
 * properties over generated inputs: the same input gives the same plan, and swapping the sides gives
 * the mirrored plan (pairIds `l:` ↔ `r:`, sides swapped).
 */
const S = "\\Seen";
const F = "\\Flagged";
const A = "\\Answered";
const D = "\\Draft";
const T = "\\Deleted";
const FWD = "$Forwarded";
const ALL_FLAGS: Flag[] = [S, F, A, D, T, FWD];

const sorted = (f: Flag[]) => [...f].sort();

describe("mergeFlags: per-flag 3-way merge", () => {
  const rows: { name: string; lNow: Flag[]; lWas: Flag[]; rNow: Flag[]; rWas: Flag[]; want: Flag[] }[] = [
    { name: "nothing changed", lNow: [S], lWas: [S], rNow: [S], rWas: [S], want: [S] },
    { name: "added on left", lNow: [S, F], lWas: [S], rNow: [S], rWas: [S], want: [F, S] },
    { name: "added on right", lNow: [S], lWas: [S], rNow: [S, F], rWas: [S], want: [F, S] },
    { name: "removed on left", lNow: [], lWas: [S], rNow: [S], rWas: [S], want: [] },
    { name: "removed on right", lNow: [S], lWas: [S], rNow: [], rWas: [S], want: [] },
    { name: "same add on both", lNow: [F], lWas: [], rNow: [F], rWas: [], want: [F] },
    { name: "same removal on both", lNow: [], lWas: [F], rNow: [], rWas: [F], want: [] },
    {
      name: "different flags on both merge",
      lNow: [S, F],
      lWas: [S],
      rNow: [A],
      rWas: [S],
      want: [A, F],
    },
    { name: "keywords merge like system flags", lNow: [FWD], lWas: [], rNow: [S], rWas: [], want: [FWD, S] },
    {
      name: "states left apart, neither side changed: presence wins",
      lNow: [S],
      lWas: [S],
      rNow: [],
      rWas: [],
      want: [S],
    },
    {
      name: "states left apart, both changed: presence wins",
      lNow: [S],
      lWas: [],
      rNow: [],
      rWas: [S],
      want: [S],
    },
    {
      name: "states left apart, the side that changed wins",
      lNow: [],
      lWas: [S],
      rNow: [S],
      rWas: [S],
      want: [],
    },
    {
      name: "unsorted input gives sorted output",
      lNow: [S, A, F],
      lWas: [S, A, F],
      rNow: [F, A, S],
      rWas: [S, A, F],
      want: [A, F, S],
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      expect(mergeFlags(r.lNow, r.lWas, r.rNow, r.rWas)).toEqual(sorted(r.want));
      expect(mergeFlags(r.rNow, r.rWas, r.lNow, r.lWas), "sides swapped").toEqual(sorted(r.want));
    });
  }

  const flags = fc.subarray(ALL_FLAGS);
  it("is symmetric, idempotent on agreement, and only ever yields flags one side has now", () => {
    fc.assert(
      fc.property(flags, flags, flags, flags, (lNow, lWas, rNow, rWas) => {
        const m = mergeFlags(lNow, lWas, rNow, rWas);
        expect(mergeFlags(rNow, rWas, lNow, lWas)).toEqual(m);
        expect(m).toEqual(sorted([...new Set(m)]));
        for (const f of m) expect(lNow.includes(f) || rNow.includes(f)).toBe(true);
        // A flag both sides have now is kept; a flag neither has is absent.
        for (const f of lNow) if (rNow.includes(f)) expect(m).toContain(f);
        // With one agreed state, the merge is the per-flag rule: one side's change wins.
        const agreed = mergeFlags(lNow, lWas, rNow, lWas);
        for (const f of ALL_FLAGS) {
          const l = lNow.includes(f);
          const r = rNow.includes(f);
          const was = lWas.includes(f);
          const want = l === r ? l : l !== was ? l : r;
          expect(agreed.includes(f), `flag ${f}`).toBe(want);
        }
      }),
      { seed: 6, numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// reconcile() tables

const msg = (key: string, flags: Flag[] = [], date = 1000): MessageMeta => ({
  key,
  flags: sorted(flags),
  size: 10,
  date,
});

function pair(
  pairId: string,
  leftKey: string,
  rightKey: string,
  flags: Flag[] = [],
  rightFlags = flags,
): PairInfo {
  return {
    pairId,
    leftKey,
    rightKey,
    leftFlags: sorted(flags),
    rightFlags: sorted(rightFlags),
    date: 1000,
    digest: "d",
  };
}

function changes(
  c: { added?: MessageMeta[]; flagged?: [string, MessageMeta][]; gone?: string[] } = {},
): SideChanges {
  return { added: c.added ?? [], flagged: new Map(c.flagged ?? []), gone: new Set(c.gone ?? []) };
}

const policy =
  (r: Resolution) =>
  (_c: Conflict): Resolution =>
    r;

function input(p: Partial<ReconcileInput> = {}): ReconcileInput {
  return {
    pairs: new Map(),
    left: changes(),
    right: changes(),
    matches: [],
    decide: policy("keep"),
    ...p,
  };
}

const pairs = (...ps: PairInfo[]) => new Map(ps.map((x) => [x.pairId, x]));
const empty: Plan = { copies: [], flags: [], removals: [], records: [], conflicts: [] };
const P = pair("p1", "L1", "R1", [S]);

describe("reconcile(): the plan for one folder", () => {
  const rows: { name: string; in: ReconcileInput; want: Partial<Plan> }[] = [
    { name: "nothing changed: empty plan", in: input({ pairs: pairs(P) }), want: {} },
    {
      name: "new on left is copied under l:<key>",
      in: input({ left: changes({ added: [msg("L9", [F])] }) }),
      want: { copies: [{ from: "left", msg: msg("L9", [F]), pairId: "l:L9" }] },
    },
    {
      name: "new on both, different messages: both copied",
      in: input({ left: changes({ added: [msg("L9")] }), right: changes({ added: [msg("R9")] }) }),
      want: {
        copies: [
          { from: "left", msg: msg("L9"), pairId: "l:L9" },
          { from: "right", msg: msg("R9"), pairId: "r:R9" },
        ],
      },
    },
    {
      name: "flag added on left: written on right, recorded on left",
      in: input({ pairs: pairs(P), left: changes({ flagged: [["p1", msg("L1", [S, F])]] }) }),
      want: {
        flags: [{ side: "right", key: "R1", pairId: "p1", add: [F], remove: [], flags: [F, S] }],
        records: [{ kind: "flags", side: "left", pairId: "p1", flags: [F, S] }],
      },
    },
    {
      name: "flag removed on right: written on left, recorded on right",
      in: input({ pairs: pairs(P), right: changes({ flagged: [["p1", msg("R1", [])]] }) }),
      want: {
        flags: [{ side: "left", key: "L1", pairId: "p1", add: [], remove: [S], flags: [] }],
        records: [{ kind: "flags", side: "right", pairId: "p1", flags: [] }],
      },
    },
    {
      name: "same change on both: recorded on both, nothing sent",
      in: input({
        pairs: pairs(P),
        left: changes({ flagged: [["p1", msg("L1", [S, F])]] }),
        right: changes({ flagged: [["p1", msg("R1", [S, F])]] }),
      }),
      want: {
        records: [
          { kind: "flags", side: "left", pairId: "p1", flags: [F, S] },
          { kind: "flags", side: "right", pairId: "p1", flags: [F, S] },
        ],
      },
    },
    {
      name: "different flags on both merge, written on both",
      in: input({
        pairs: pairs(P),
        left: changes({ flagged: [["p1", msg("L1", [S, F])]] }),
        right: changes({ flagged: [["p1", msg("R1", [A])]] }),
      }),
      want: {
        flags: [
          { side: "left", key: "L1", pairId: "p1", add: [A], remove: [S], flags: [A, F] },
          { side: "right", key: "R1", pairId: "p1", add: [F], remove: [], flags: [A, F] },
        ],
      },
    },
    {
      name: "removed on left: removed on right",
      in: input({ pairs: pairs(P), left: changes({ gone: ["p1"] }) }),
      want: { removals: [{ side: "right", key: "R1", pairId: "p1" }] },
    },
    {
      name: "removed on both: forgotten",
      in: input({ pairs: pairs(P), left: changes({ gone: ["p1"] }), right: changes({ gone: ["p1"] }) }),
      want: { records: [{ kind: "forget", pairId: "p1" }] },
    },
    {
      name: "removed on left, flagged on right, keep: forgotten and copied back under r:<key>",
      in: input({
        pairs: pairs(P),
        left: changes({ gone: ["p1"] }),
        right: changes({ flagged: [["p1", msg("R1", [S, F])]] }),
      }),
      want: {
        records: [{ kind: "forget", pairId: "p1" }],
        copies: [{ from: "right", msg: msg("R1", [S, F]), pairId: "r:R1" }],
      },
    },
    {
      name: "removed on left, flagged on right, left wins: removed on right",
      in: input({
        pairs: pairs(P),
        left: changes({ gone: ["p1"] }),
        right: changes({ flagged: [["p1", msg("R1", [S, F])]] }),
        decide: policy("left"),
      }),
      want: { removals: [{ side: "right", key: "R1", pairId: "p1" }] },
    },
    {
      name: "removed on left, flagged on right, right wins: kept",
      in: input({
        pairs: pairs(P),
        left: changes({ gone: ["p1"] }),
        right: changes({ flagged: [["p1", msg("R1", [S, F])]] }),
        decide: policy("right"),
      }),
      want: {
        records: [{ kind: "forget", pairId: "p1" }],
        copies: [{ from: "right", msg: msg("R1", [S, F]), pairId: "r:R1" }],
      },
    },
    {
      name: "removed on left, flagged on right, fail: an open conflict, nothing else",
      in: input({
        pairs: pairs(P),
        left: changes({ gone: ["p1"] }),
        right: changes({ flagged: [["p1", msg("R1", [S, F])]] }),
        decide: policy("fail"),
      }),
      want: {
        conflicts: [
          {
            pairId: "p1",
            reason: "removed-vs-changed",
            removedOn: "left",
            changed: msg("R1", [S, F]),
            text: "removed on left, flags changed on right",
          },
        ],
      },
    },
    {
      name: "a pair the pre-check kept out is skipped",
      in: input({ left: changes({ gone: ["p1"], flagged: [["p2", msg("L2", [S])]] }) }),
      want: {},
    },
    {
      name: "same new message on both: paired under l:<left key>, flags merged by union",
      in: input({
        left: changes({ added: [msg("L9", [S])] }),
        right: changes({ added: [msg("R9", [F])] }),
        matches: [{ left: msg("L9", [S]), right: msg("R9", [F]), digest: "dd" }],
      }),
      want: {
        records: [
          { kind: "pair", pairId: "l:L9", left: msg("L9", [S]), right: msg("R9", [F]), digest: "dd" },
        ],
        flags: [
          { side: "left", key: "L9", pairId: "l:L9", add: [F], remove: [], flags: [F, S] },
          { side: "right", key: "R9", pairId: "l:L9", add: [S], remove: [], flags: [F, S] },
        ],
      },
    },
    {
      name: "same new message on both with the same flags: only the pair is recorded",
      in: input({
        left: changes({ added: [msg("L9", [S])] }),
        right: changes({ added: [msg("R9", [S])] }),
        matches: [{ left: msg("L9", [S]), right: msg("R9", [S]), digest: "dd" }],
      }),
      want: {
        records: [
          { kind: "pair", pairId: "l:L9", left: msg("L9", [S]), right: msg("R9", [S]), digest: "dd" },
        ],
      },
    },
    {
      name: "states left apart by a cut run, one side now changes another flag: both written to the merge",
      in: input({
        pairs: pairs(pair("p1", "L1", "R1", [S], [])),
        left: changes({ flagged: [["p1", msg("L1", [S, F])]] }),
      }),
      want: {
        flags: [{ side: "right", key: "R1", pairId: "p1", add: [F, S], remove: [], flags: [F, S] }],
        records: [{ kind: "flags", side: "left", pairId: "p1", flags: [F, S] }],
      },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const plan = reconcile(r.in);
      expect(plan).toEqual({ ...empty, ...r.want });
      // The mirrored input gives the mirrored plan.
      expect(normalize(reconcile(mirrorInput(r.in)))).toEqual(normalize(mirrorPlan(plan, r.in.matches)));
    });
  }

  it("pairIdFor names the source side and key", () => {
    expect(pairIdFor("left", "k")).toBe("l:k");
    expect(pairIdFor("right", "k")).toBe("r:k");
  });

  it("a content match is named by its left key in both orientations (not mirrored like copies)", () => {
    const m: ContentMatch = { left: msg("L9"), right: msg("R9"), digest: "dd" };
    const a = reconcile(
      input({ left: changes({ added: [m.left] }), right: changes({ added: [m.right] }), matches: [m] }),
    );
    const b = reconcile(
      input({
        left: changes({ added: [m.right] }),
        right: changes({ added: [m.left] }),
        matches: [{ left: m.right, right: m.left, digest: "dd" }],
      }),
    );
    expect(a.records).toEqual([{ kind: "pair", pairId: "l:L9", left: m.left, right: m.right, digest: "dd" }]);
    expect(b.records).toEqual([{ kind: "pair", pairId: "l:R9", left: m.right, right: m.left, digest: "dd" }]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Mirroring and properties

const swapSide = (s: Side): Side => (s === "left" ? "right" : "left");
const mirrorPairId = (id: string) =>
  id.startsWith("l:") ? `r:${id.slice(2)}` : id.startsWith("r:") ? `l:${id.slice(2)}` : id;
const mirrorRes = (r: Resolution): Resolution => (r === "left" || r === "right" ? swapSide(r) : r);

function mirrorChanges(c: SideChanges): SideChanges {
  return {
    added: c.added,
    flagged: new Map([...c.flagged].map(([id, m]) => [mirrorPairId(id), m])),
    gone: new Set([...c.gone].map(mirrorPairId)),
  };
}

function mirrorInput(i: ReconcileInput): ReconcileInput {
  return {
    pairs: new Map(
      [...i.pairs.values()].map((p) => [
        mirrorPairId(p.pairId),
        {
          ...p,
          pairId: mirrorPairId(p.pairId),
          leftKey: p.rightKey,
          rightKey: p.leftKey,
          leftFlags: p.rightFlags,
          rightFlags: p.leftFlags,
        },
      ]),
    ),
    left: mirrorChanges(i.right),
    right: mirrorChanges(i.left),
    matches: i.matches.map((m) => ({ left: m.right, right: m.left, digest: m.digest })),
    decide: (c) =>
      mirrorRes(
        i.decide({
          ...c,
          pairId: mirrorPairId(c.pairId),
          removedOn: swapSide(c.removedOn),
          text: mirrorText(c.text),
        }),
      ),
  };
}

const mirrorText = (t: string) => t.replace(/\b(left|right)\b/g, (s) => (s === "left" ? "right" : "left"));

/**
 * The mirrored plan. A content match is named by its left key in either orientation (pairIdFor("left",
 * …)), so its id maps `l:<left key>` → `l:<right key>` rather than to `r:<left key>`.
 */
function mirrorPlan(p: Plan, matches: readonly ContentMatch[] = []): Plan {
  const byMatch = new Map(
    matches.map((m) => [pairIdFor("left", m.left.key), pairIdFor("left", m.right.key)]),
  );
  const mirrorId = (id: string) => byMatch.get(id) ?? mirrorPairId(id);
  return {
    copies: p.copies.map((c) => ({ ...c, from: swapSide(c.from), pairId: mirrorId(c.pairId) })),
    flags: p.flags.map((f) => ({ ...f, side: swapSide(f.side), pairId: mirrorId(f.pairId) })),
    removals: p.removals.map((r) => ({ ...r, side: swapSide(r.side), pairId: mirrorId(r.pairId) })),
    records: p.records.map((r) =>
      r.kind === "flags"
        ? { ...r, side: swapSide(r.side), pairId: mirrorId(r.pairId) }
        : r.kind === "forget"
          ? { ...r, pairId: mirrorId(r.pairId) }
          : { ...r, pairId: mirrorId(r.pairId), left: r.right, right: r.left },
    ),
    conflicts: p.conflicts.map((c) => ({
      ...c,
      pairId: mirrorId(c.pairId),
      removedOn: swapSide(c.removedOn),
      text: mirrorText(c.text),
    })),
  };
}

/** A plan with each list in a canonical order: mirroring may reorder ops, never change them. */
function normalize(p: Plan): Record<keyof Plan, string[]> {
  const s = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();
  return {
    copies: s(p.copies),
    flags: s(p.flags),
    removals: s(p.removals),
    records: s(p.records),
    conflicts: s(p.conflicts),
  };
}

/**
 * Generated inputs shaped like the engine's: pairs with keys `a<n>` (left) and `b<n>` (right) under ids
 * `p<n>`, `l:a<n>` or `r:b<n>`; per pair and side: unchanged, flags changed, or gone; new messages
 * `na<n>`/`nb<n>`, some matched by content; a fixed policy.
 */
const flagsArb = fc.subarray(ALL_FLAGS).map(sorted);
const fate = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "same" as const }) },
  { weight: 3, arbitrary: flagsArb.map((flags) => ({ kind: "flagged" as const, flags })) },
  { weight: 2, arbitrary: fc.constant({ kind: "gone" as const }) },
);
const inputArb: fc.Arbitrary<ReconcileInput> = fc
  .record({
    pairs: fc.array(
      fc.record({
        idKind: fc.constantFrom("p", "l", "r"),
        flags: flagsArb,
        apart: fc.option(flagsArb, { freq: 5, nil: undefined }),
        left: fate,
        right: fate,
      }),
      { maxLength: 8 },
    ),
    unknownTouched: fc.array(fc.nat(3), { maxLength: 2 }),
    newLeft: fc.array(flagsArb, { maxLength: 4 }),
    newRight: fc.array(flagsArb, { maxLength: 4 }),
    matched: fc.nat(4),
    resolution: fc.constantFrom<Resolution>("keep", "left", "right", "fail"),
  })
  .map((g) => {
    const ps: PairInfo[] = [];
    const left = changes();
    const right = changes();
    g.pairs.forEach((x, n) => {
      const pairId = x.idKind === "p" ? `p${n}` : x.idKind === "l" ? `l:a${n}` : `r:b${n}`;
      const p = pair(pairId, `a${n}`, `b${n}`, x.flags, x.apart ?? x.flags);
      ps.push(p);
      for (const [side, f, ch, key] of [
        ["left", x.left, left, p.leftKey],
        ["right", x.right, right, p.rightKey],
      ] as const) {
        const was = side === "left" ? p.leftFlags : p.rightFlags;
        if (f.kind === "gone") ch.gone.add(pairId);
        else if (f.kind === "flagged" && f.flags.join(" ") !== was.join(" "))
          ch.flagged.set(pairId, msg(key, f.flags));
      }
    });
    for (const n of g.unknownTouched) left.gone.add(`q${n}`);
    left.added = g.newLeft.map((f, n) => msg(`na${n}`, f, 2000 + n));
    right.added = g.newRight.map((f, n) => msg(`nb${n}`, f, 2000 + n));
    const k = Math.min(g.matched, left.added.length, right.added.length);
    const matches: ContentMatch[] = [];
    for (let n = 0; n < k; n++)
      matches.push({ left: left.added[n]!, right: right.added[n]!, digest: `d${n}` });
    return {
      pairs: pairs(...ps),
      left,
      right,
      matches,
      decide: policy(g.resolution),
    } satisfies ReconcileInput;
  });

/** A deep copy with fresh Maps and Sets, so that no state can be shared between two calls. */
function copyInput(i: ReconcileInput): ReconcileInput {
  const c = <T>(x: T): T => structuredClone(x);
  return { pairs: c(i.pairs), left: c(i.left), right: c(i.right), matches: c(i.matches), decide: i.decide };
}

describe("reconcile() properties", () => {
  it("invariant 6: the same input gives the same plan, and the input is not changed", () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const before = copyInput(i);
        const a = reconcile(copyInput(i));
        const b = reconcile(copyInput(i));
        expect(b).toEqual(a);
        expect(reconcile(i)).toEqual(a);
        expect(i).toEqual(before);
      }),
      { seed: 60, numRuns: 500 },
    );
  });

  it("swapping the sides mirrors the plan", () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        expect(normalize(reconcile(mirrorInput(i)))).toEqual(normalize(mirrorPlan(reconcile(i), i.matches)));
      }),
      { seed: 61, numRuns: 500 },
    );
  });

  it("every touched, known pair ends with one decision; nothing is both removed and copied", () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const plan = reconcile(i);
        const removed = new Set(plan.removals.map((r) => r.pairId));
        for (const c of plan.copies) expect(removed.has(c.pairId)).toBe(false);
        for (const r of plan.removals) {
          const p = i.pairs.get(r.pairId)!;
          expect(r.key).toBe(r.side === "left" ? p.leftKey : p.rightKey);
          // Only the other side's removal removes: never because of a side's own state.
          expect((r.side === "left" ? i.right : i.left).gone.has(r.pairId)).toBe(true);
        }
        // Each flag op writes the merge, and only to a side whose current flags differ from it.
        for (const f of plan.flags) expect(sorted(f.flags)).toEqual(f.flags);
        // New messages: matched ones are paired, the rest copied exactly once.
        const copiedKeys = plan.copies.map((c) => `${c.from}:${c.msg.key}`);
        expect(new Set(copiedKeys).size).toBe(copiedKeys.length);
        for (const m of i.left.added)
          expect(copiedKeys.includes(`left:${m.key}`)).toBe(!i.matches.some((x) => x.left.key === m.key));
        for (const m of i.right.added)
          expect(copiedKeys.includes(`right:${m.key}`)).toBe(!i.matches.some((x) => x.right.key === m.key));
      }),
      { seed: 62, numRuns: 500 },
    );
  });
});
