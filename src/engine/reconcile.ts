import type {
  Conflict,
  ContentMatch,
  CopyOp,
  FlagOp,
  PairInfo,
  Plan,
  RecordOp,
  RemoveOp,
  Resolution,
  SideChanges,
} from "../model/plan.js";
import {
  type Flag,
  flagsKey,
  type MessageMeta,
  normalizeFlags,
  otherSide,
  type Side,
} from "../model/types.js";

/**
 * Reconciliation (SYNC-MODEL.md step 5): joins both sides' changes by pairId into a plan.
 * Pure: no I/O, no clock, no randomness; the same input gives the same plan (invariant 6), and
 * swapping the sides gives the mirrored plan. Flags merge per flag, so flag changes never conflict;
 * the only conflict is a message removed on one side and changed on the other.
 */
export interface ReconcileInput {
  pairs: ReadonlyMap<string, PairInfo>;
  left: SideChanges;
  right: SideChanges;
  /** New messages on both sides found to be the same content: paired, never copied. */
  matches: readonly ContentMatch[];
  decide: (c: Conflict) => Resolution;
}

const PREFIX: Record<Side, string> = { left: "l", right: "r" };

/** The pairId of a pair created by copying `key` from `side`: deterministic, and names its source. */
export function pairIdFor(side: Side, key: string): string {
  return `${PREFIX[side]}:${key}`;
}

export function reconcile(input: ReconcileInput): Plan {
  const copies: CopyOp[] = [];
  const flags: FlagOp[] = [];
  const removals: RemoveOp[] = [];
  const records: RecordOp[] = [];
  const conflicts: Conflict[] = [];
  const { left, right } = input;

  const touched = new Set<string>([
    ...left.flagged.keys(),
    ...right.flagged.keys(),
    ...left.gone,
    ...right.gone,
  ]);
  // Pairs whose two states disagree on flags (an interruption) are settled too, by mergeFlags.
  for (const [pairId, pair] of input.pairs)
    if (flagsKey(pair.leftFlags) !== flagsKey(pair.rightFlags)) touched.add(pairId);
  for (const pairId of [...touched].sort()) {
    const pair = input.pairs.get(pairId);
    if (pair === undefined) continue; // the pre-check kept it out; it reports why
    const lGone = left.gone.has(pairId);
    const rGone = right.gone.has(pairId);
    if (lGone && rGone) {
      records.push({ kind: "forget", pairId });
      continue;
    }
    if (lGone || rGone) {
      const removedOn: Side = lGone ? "left" : "right";
      const keptOn = otherSide(removedOn);
      const changed = (keptOn === "left" ? left : right).flagged.get(pairId);
      const keptKey = keptOn === "left" ? pair.leftKey : pair.rightKey;
      // Only \Deleted added on the kept side is no contradiction: both sides want it gone. It is
      // also what a removal cut off between STORE +\Deleted and UID EXPUNGE leaves behind.
      const keptWas = keptOn === "left" ? pair.leftFlags : pair.rightFlags;
      if (changed === undefined || onlyAddsDeleted(keptWas, changed.flags)) {
        removals.push({ side: keptOn, key: keptKey, pairId });
        continue;
      }
      const conflict: Conflict = {
        pairId,
        reason: "removed-vs-changed",
        removedOn,
        changed,
        text: `removed on ${removedOn}, flags changed on ${keptOn}`,
      };
      const resolution = input.decide(conflict);
      if (resolution === "fail") {
        conflicts.push(conflict);
      } else if (resolution === removedOn) {
        removals.push({ side: keptOn, key: keptKey, pairId });
      } else {
        // Keep: the changed copy survives and is brought back as a new pair.
        records.push({ kind: "forget", pairId });
        copies.push({ from: keptOn, msg: changed, pairId: pairIdFor(keptOn, changed.key) });
      }
      continue;
    }
    const lNow = left.flagged.get(pairId)?.flags ?? pair.leftFlags;
    const rNow = right.flagged.get(pairId)?.flags ?? pair.rightFlags;
    const merged = mergeFlags(lNow, pair.leftFlags, rNow, pair.rightFlags);
    settleFlags(
      pairId,
      { left: pair.leftKey, right: pair.rightKey },
      { left: lNow, right: rNow },
      pair,
      merged,
      flags,
      records,
    );
  }

  const matchedLeft = new Set<string>();
  const matchedRight = new Set<string>();
  for (const m of [...input.matches].sort((a, b) => cmp(a.left.key, b.left.key))) {
    matchedLeft.add(m.left.key);
    matchedRight.add(m.right.key);
    const pairId = pairIdFor("left", m.left.key);
    records.push({ kind: "pair", pairId, left: m.left, right: m.right, digest: m.digest });
    const merged = normalizeFlags([...m.left.flags, ...m.right.flags]);
    const recorded = { leftFlags: m.left.flags, rightFlags: m.right.flags };
    settleFlags(
      pairId,
      { left: m.left.key, right: m.right.key },
      { left: m.left.flags, right: m.right.flags },
      recorded,
      merged,
      flags,
      records,
    );
  }
  for (const msg of left.added) {
    if (!matchedLeft.has(msg.key)) copies.push({ from: "left", msg, pairId: pairIdFor("left", msg.key) });
  }
  for (const msg of right.added) {
    if (!matchedRight.has(msg.key)) copies.push({ from: "right", msg, pairId: pairIdFor("right", msg.key) });
  }
  return { copies, flags, removals, records, conflicts };
}

function onlyAddsDeleted(was: readonly Flag[], now: readonly Flag[]): boolean {
  const before = new Set(was);
  const after = new Set(now);
  if (!after.has("\\Deleted") || before.has("\\Deleted")) return false;
  for (const f of before) if (!after.has(f)) return false;
  for (const f of after) if (f !== "\\Deleted" && !before.has(f)) return false;
  return true;
}

/**
 * Per-flag 3-way merge. Each side is compared with its own state; where the two sides now differ,
 * the side that changed wins; if both changed or neither did (states that an interrupted run left
 * apart), presence wins, which loses nothing.
 */
export function mergeFlags(
  lNow: readonly Flag[],
  lWas: readonly Flag[],
  rNow: readonly Flag[],
  rWas: readonly Flag[],
): Flag[] {
  const ln = new Set(lNow);
  const lw = new Set(lWas);
  const rn = new Set(rNow);
  const rw = new Set(rWas);
  const out: Flag[] = [];
  for (const f of new Set([...lNow, ...rNow])) {
    const l = ln.has(f);
    const r = rn.has(f);
    if (l === r) {
      out.push(f);
      continue;
    }
    const lChanged = l !== lw.has(f);
    const rChanged = r !== rw.has(f);
    const keep = lChanged && !rChanged ? l : rChanged && !lChanged ? r : true;
    if (keep) out.push(f);
  }
  return normalizeFlags(out);
}

function settleFlags(
  pairId: string,
  keys: Record<Side, string>,
  now: Record<Side, readonly Flag[]>,
  recorded: { leftFlags: readonly Flag[]; rightFlags: readonly Flag[] },
  merged: Flag[],
  flags: FlagOp[],
  records: RecordOp[],
): void {
  const want = flagsKey(merged);
  for (const side of ["left", "right"] as const) {
    const cur = now[side];
    if (flagsKey(cur) !== want) {
      const has = new Set(cur);
      const target = new Set(merged);
      flags.push({
        side,
        key: keys[side],
        pairId,
        add: merged.filter((f) => !has.has(f)),
        remove: cur.filter((f) => !target.has(f)),
        flags: merged,
      });
    } else if (flagsKey(side === "left" ? recorded.leftFlags : recorded.rightFlags) !== want) {
      records.push({ kind: "flags", side, pairId, flags: merged });
    }
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export type { MessageMeta };
