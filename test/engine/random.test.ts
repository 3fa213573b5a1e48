import { renameSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import type { ConflictPolicy } from "../../src/config/config.js";
import type { Side } from "../../src/model/types.js";
import {
  change,
  deliver,
  drift,
  FaultCounter,
  type FaultPlan,
  makeWorld,
  scan,
  show,
  sync,
  type World,
  work,
} from "./harness.js";

/**
 * The engine, randomized (SYNC-MODEL.md "Invariants"). Each run starts two empty Maildirs; over a few
 * rounds a "mail client" on each side delivers, flags, unflags and removes messages (sometimes the same
 * new message on both sides, sometimes in a second folder), then tandem syncs; some syncs are cut off at
 * a random store write and run again. A model of both mailboxes (the ledger) predicts the result of each
 * round with the engine's rules, and after every completed sync the test checks: nothing lost, nothing
 * doubled, both sides equal to the prediction, exit 0 without drift, and a second run does nothing.
 * At the end one drift is planted behind tandem's back and `verify` must name exactly it.
 *
 * CI runs a fixed seed; more on demand: TANDEM_FUZZ_RUNS=200 TANDEM_FUZZ_SEED=123 npx vitest run test/engine/random.test.ts
 */
const RUNS = Number(process.env.TANDEM_FUZZ_RUNS ?? 100);
const SEED = Number(process.env.TANDEM_FUZZ_SEED ?? 20_261_101);

const LETTERS = ["D", "F", "P", "R", "S", "T"] as const;
const FOLDERS = ["", "Sub"] as const;
type FolderName = (typeof FOLDERS)[number];

type Op =
  | { kind: "new"; side: Side; folder: number; letters: string }
  | { kind: "both"; folder: number; left: string; right: string }
  | { kind: "flag"; side: Side; folder: number; pick: number; add: boolean; letter: string }
  | { kind: "remove"; side: Side; folder: number; pick: number };

interface Round {
  ops: Op[];
  /** Runs cut off at a store write, one after the other, before the clean run. */
  cuts: FaultPlan[];
}

interface Plant {
  side: Side;
  pick: number;
  how: "remove" | "flags" | "stray";
  letter: string;
}

interface Case {
  twoFolders: boolean;
  policy: ConflictPolicy;
  rounds: Round[];
  plant: Plant;
}

const sideArb = fc.constantFrom<Side>("left", "right");
const lettersArb = fc.subarray([...LETTERS]).map((a) => a.join(""));
const letterArb = fc.constantFrom(...LETTERS);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("new" as const),
      side: sideArb,
      folder: fc.nat(1),
      letters: lettersArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("both" as const),
      folder: fc.nat(1),
      left: lettersArb,
      right: lettersArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("flag" as const),
      side: sideArb,
      folder: fc.nat(1),
      pick: fc.nat(),
      add: fc.boolean(),
      letter: letterArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("remove" as const),
      side: sideArb,
      folder: fc.nat(1),
      pick: fc.nat(),
    }),
  },
);

const roundArb: fc.Arbitrary<Round> = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 8 }),
  cuts: fc.oneof(
    { weight: 2, arbitrary: fc.constant<FaultPlan[]>([]) },
    {
      weight: 1,
      arbitrary: fc.array(
        // Most syncs write a handful of times: small indices mostly, some past the end (not reached).
        fc.record({
          at: fc.oneof({ weight: 3, arbitrary: fc.nat(2) }, { weight: 1, arbitrary: fc.nat(8) }),
          when: fc.constantFrom("before" as const, "after" as const),
        }),
        { minLength: 1, maxLength: 2 },
      ),
    },
  ),
});

const caseArb: fc.Arbitrary<Case> = fc.record({
  twoFolders: fc.boolean(),
  policy: fc.constantFrom<ConflictPolicy>("keep", "keep", "keep", "left", "right"),
  rounds: fc.array(roundArb, { minLength: 1, maxLength: 4 }),
  plant: fc.record({
    side: sideArb,
    pick: fc.nat(),
    how: fc.constantFrom("remove" as const, "flags" as const, "stray" as const),
    letter: letterArb,
  }),
});

/** tag → Maildir flag letters. */
type Box = Map<string, Set<string>>;

const clone = (b: Box): Box => new Map([...b].map(([t, f]) => [t, new Set(f)]));
const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));
const render = (b: Box): string =>
  [...b]
    .map(([t, f]) => (f.size ? `${t}:${[...f].sort().join("")}` : t))
    .sort()
    .join(" ");

/** The ledger: what both sides agreed on at the last sync, what each client did since, per folder. */
class Ledger {
  agreed = new Map<FolderName, Box>(FOLDERS.map((f) => [f, new Map()]));
  now: Record<Side, Map<FolderName, Box>> = {
    left: new Map(FOLDERS.map((f) => [f, new Map()])),
    right: new Map(FOLDERS.map((f) => [f, new Map()])),
  };
  /** Tags the client removed on each side since the last sync. */
  removed: Record<Side, Set<string>> = { left: new Set(), right: new Set() };
  private next = 0;

  constructor(readonly policy: ConflictPolicy) {}

  newTag(): string {
    return `M${++this.next}`;
  }

  /** The engine's rule for one folder: removals, conflicts by policy, per-flag 3-way merge, new messages. */
  expected(folder: FolderName): Box {
    const was = this.agreed.get(folder)!;
    const l = this.now.left.get(folder)!;
    const r = this.now.right.get(folder)!;
    const out: Box = new Map();
    for (const tag of new Set([...was.keys(), ...l.keys(), ...r.keys()])) {
      const a = was.get(tag);
      const lf = l.get(tag);
      const rf = r.get(tag);
      if (a === undefined) {
        out.set(tag, new Set([...(lf ?? []), ...(rf ?? [])]));
        continue;
      }
      if (lf === undefined && rf === undefined) continue;
      if (lf === undefined || rf === undefined) {
        const kept = (lf ?? rf)!;
        const removedOn: Side = lf === undefined ? "left" : "right";
        // Adding only T (\Deleted) on the kept side agrees with the removal: not a conflict.
        const onlyT = kept.has("T") && !a.has("T") && sameSet(new Set([...kept].filter((f) => f !== "T")), a);
        const changed = !sameSet(kept, a) && !onlyT;
        const winner = this.policy === "keep" ? "keep" : this.policy;
        if (changed && winner !== removedOn) out.set(tag, new Set(kept));
        continue;
      }
      const merged = new Set<string>();
      for (const f of new Set([...lf, ...rf])) {
        if (lf.has(f) === rf.has(f)) merged.add(f);
        else if (lf.has(f) !== a.has(f)) {
          if (lf.has(f)) merged.add(f);
        } else if (rf.has(f)) merged.add(f);
      }
      out.set(tag, merged);
    }
    return out;
  }

  /** Tags present on a side now that neither client removed: these must survive (invariant 1). */
  mustSurvive(folder: FolderName): string[] {
    const tags = new Set([...this.now.left.get(folder)!.keys(), ...this.now.right.get(folder)!.keys()]);
    return [...tags].filter((t) => !this.removed.left.has(t) && !this.removed.right.has(t)).sort();
  }

  settle(result: Map<FolderName, Box>): void {
    for (const [f, box] of result) {
      this.agreed.set(f, clone(box));
      this.now.left.set(f, clone(box));
      this.now.right.set(f, clone(box));
    }
    this.removed.left.clear();
    this.removed.right.clear();
  }
}

function pickTag(box: Box, pick: number): string | undefined {
  const tags = [...box.keys()].sort();
  return tags.length === 0 ? undefined : tags[pick % tags.length];
}

/** Runs one client op on disk and in the ledger; returns the op in scenario notation for the log. */
function apply(w: World, ledger: Ledger, op: Op, folders: readonly FolderName[]): string | undefined {
  const folder = folders[op.folder % folders.length]!;
  if (op.kind === "new") {
    const tag = ledger.newTag();
    change(w.roots[op.side], op.letters ? `n${tag}:${op.letters}` : `n${tag}`, folder);
    ledger.now[op.side].get(folder)!.set(tag, new Set(op.letters));
    return `${op.side} ${folder || "INBOX"} n${tag}:${op.letters}`;
  }
  if (op.kind === "both") {
    const tag = ledger.newTag();
    for (const side of ["left", "right"] as const) {
      change(w.roots[side], op[side] ? `n${tag}:${op[side]}` : `n${tag}`, folder);
      ledger.now[side].get(folder)!.set(tag, new Set(op[side]));
    }
    return `both ${folder || "INBOX"} n${tag} left:${op.left} right:${op.right}`;
  }
  const box = ledger.now[op.side].get(folder)!;
  const tag = pickTag(box, op.pick);
  if (tag === undefined) return undefined;
  if (op.kind === "remove") {
    change(w.roots[op.side], `x${tag}`, folder);
    box.delete(tag);
    ledger.removed[op.side].add(tag);
    return `${op.side} ${folder || "INBOX"} x${tag}`;
  }
  change(w.roots[op.side], `${op.add ? "+" : "-"}${tag}:${op.letter}`, folder);
  const flags = box.get(tag)!;
  if (op.add) flags.add(op.letter);
  else flags.delete(op.letter);
  return `${op.side} ${folder || "INBOX"} ${op.add ? "+" : "-"}${tag}:${op.letter}`;
}

function mailbox(w: World, folders: readonly FolderName[]): Record<Side, Record<string, string>> {
  const of = (side: Side) => Object.fromEntries(folders.map((f) => [f || "INBOX", show(w.roots[side], f)]));
  return { left: of("left"), right: of("right") };
}

/** Invariants 1, 2 and 4 after a completed run, against the ledger's prediction. */
async function checkRound(w: World, ledger: Ledger, folders: readonly FolderName[], log: string[]) {
  const ctx = `\n${log.join("\n")}`;
  const predicted = new Map<FolderName, Box>(folders.map((f) => [f, ledger.expected(f)]));
  for (const f of folders) {
    for (const side of ["left", "right"] as const) {
      const found = scan(w.roots[side], f).map((m) => m.tag);
      // 2. nothing doubled
      const doubled = found.filter((t, i) => found.indexOf(t) !== i);
      expect(doubled, `doubled on ${side} ${f || "INBOX"}${ctx}`).toEqual([]);
      // 1. nothing lost: every message no client removed is on both sides
      const missing = ledger.mustSurvive(f).filter((t) => !found.includes(t));
      expect(missing, `lost on ${side} ${f || "INBOX"}${ctx}`).toEqual([]);
    }
  }
  // 4. convergence: both sides equal, and equal to the engine's rule applied to the ledger
  const want = Object.fromEntries(folders.map((f) => [f || "INBOX", render(predicted.get(f)!)]));
  expect(mailbox(w, folders), `mailboxes after the round${ctx}`).toEqual({ left: want, right: want });
  ledger.settle(predicted);
  const again = await sync(w, { force: true });
  expect(again.exitCode, `second run${ctx}\n${JSON.stringify(again.folders)}`).toBe(EXIT.ok);
  expect(drift(again), `second run drift${ctx}`).toEqual([]);
  expect(work(again), `second run did work${ctx}\n${JSON.stringify(again.folders)}`).toBe(0);
  expect(mailbox(w, folders), `second run changed the mailboxes${ctx}`).toEqual({ left: want, right: want });
}

/** Invariant 7: one drift planted behind tandem's back is reported, exactly, and nothing is mended. */
async function plantAndVerify(
  w: World,
  ledger: Ledger,
  folders: readonly FolderName[],
  p: Plant,
  log: string[],
) {
  const ctx = `\n${log.join("\n")}`;
  const candidates = folders.flatMap((f) => scan(w.roots[p.side], f));
  const victim = candidates.sort((a, b) => (a.tag < b.tag ? -1 : 1))[p.pick % Math.max(1, candidates.length)];
  let key: string;
  let what: RegExp;
  if (p.how === "stray" || victim === undefined) {
    const file = deliver(w.roots[p.side], ledger.newTag(), p.letter);
    key = basename(file).split(":2,")[0]!;
    what = /in the store but not paired/;
  } else if (p.how === "remove") {
    unlinkSync(victim.file);
    key = basename(victim.file).split(":2,")[0]!;
    what = /recorded in the state but missing from the store/;
  } else {
    const letters = new Set(victim.letters);
    if (letters.has(p.letter)) letters.delete(p.letter);
    else letters.add(p.letter);
    key = basename(victim.file).split(":2,")[0]!;
    renameSync(
      victim.file,
      join(dirname(dirname(victim.file)), "cur", `${key}:2,${[...letters].sort().join("")}`),
    );
    what = /flags differ/;
  }
  log.push(`plant ${p.how} on ${p.side}: ${key}`);
  const before = mailbox(w, folders);
  const r = await sync(w, { verifyOnly: true });
  const found = r.folders.flatMap((f) => f.drift);
  expect(r.exitCode, `verify exit${ctx}`).toBe(EXIT.drift);
  expect(found.length, `verify drift: ${JSON.stringify(found)}${ctx}`).toBe(1);
  expect(found[0]!.side).toBe(p.side);
  expect(found[0]!.key).toBe(key);
  expect(found[0]!.what).toMatch(what);
  expect(mailbox(w, folders), `verify changed the mailboxes${ctx}`).toEqual(before);
}

async function runCase(c: Case): Promise<void> {
  const w = makeWorld({ conflict: c.policy });
  const folders: readonly FolderName[] = c.twoFolders ? FOLDERS : [""];
  const ledger = new Ledger(c.policy);
  const log: string[] = [`policy ${c.policy}, folders ${folders.map((f) => f || "INBOX").join(",")}`];
  try {
    for (const [i, round] of c.rounds.entries()) {
      log.push(`round ${i + 1}`);
      for (const op of round.ops) {
        const done = apply(w, ledger, op, folders);
        if (done) log.push(`  ${done}`);
      }
      // Guards are exercised by the scenario table; here random removals may legitimately trip them.
      for (const fault of round.cuts) {
        const counter = new FaultCounter(fault);
        const cut = await sync(w, { force: true, counter });
        if (counter.writes > fault.at) {
          log.push(`  sync cut at write ${fault.at} ${fault.when} (of ${counter.writes})`);
          expect(cut.exitCode, `cut run\n${log.join("\n")}`).toBe(EXIT.failure);
        } else {
          log.push(`  sync (cut point ${fault.at} not reached: ${counter.writes} writes)`);
          expect(cut.exitCode, `run\n${log.join("\n")}\n${JSON.stringify(cut)}`).toBe(EXIT.ok);
          expect(drift(cut)).toEqual([]);
        }
      }
      // 5. resumable: after any cut runs, a clean run must end as if never cut off
      log.push("  sync");
      const r = await sync(w, { force: true });
      expect(r.exitCode, `run\n${log.join("\n")}\n${JSON.stringify(r)}`).toBe(EXIT.ok);
      expect(drift(r), `drift\n${log.join("\n")}`).toEqual([]);
      await checkRound(w, ledger, folders, log);
    }
    await plantAndVerify(w, ledger, folders, c.plant, log);
  } finally {
    w.cleanup();
  }
}

describe("randomized engine runs (Maildir ↔ Maildir)", () => {
  it(`invariants 1, 2, 4, 5, 7 hold over random client activity (seed ${SEED}, ${RUNS} runs)`, {
    timeout: Math.max(120_000, RUNS * 3_000),
  }, async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, (c) => runCase(c)),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
