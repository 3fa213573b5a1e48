import type { Folder } from "../drivers/driver.js";
import type { PairInfo } from "../model/plan.js";
import { type MessageMeta, otherSide, type Side } from "../model/types.js";
import type { SideState, StateRow } from "../state/side-state.js";
import { digestOf } from "./digest.js";

/**
 * Pre-check (SYNC-MODEL.md step 2): both states must know the same pairs. A run cut off between
 * recording one side and the other leaves a pair on one side only; it is mended where the evidence
 * is unambiguous (the pairId names the source key, or exactly one unrecorded message on the other
 * side has the recorded digest), and otherwise the folder stops. It never mends by deleting a message.
 */
export interface PrecheckInput {
  folder: Record<Side, string>;
  handles: Record<Side, Folder>;
  states: Record<Side, SideState>;
  rows: Record<Side, StateRow[]>;
  listing: Record<Side, Map<string, MessageMeta>>;
}

export interface PrecheckResult {
  pairs: Map<string, PairInfo>;
  /** What was mended, for the report. */
  mended: string[];
  /** Why the folder must stop; empty when it may go on. */
  problems: string[];
}

export async function precheck(input: PrecheckInput): Promise<PrecheckResult> {
  const pairs = new Map<string, PairInfo>();
  const mended: string[] = [];
  const problems: string[] = [];
  // Only the right side is indexed: in the usual case every left row finds its twin there.
  const rightByPair = new Map<string, StateRow>();
  for (const row of input.rows.right) rightByPair.set(row.pairId, row);
  let unpaired = false;
  for (const l of input.rows.left) {
    const r = rightByPair.get(l.pairId);
    if (r) pairs.set(l.pairId, pairInfo(l.pairId, l, r));
    else unpaired = true;
  }
  if (!unpaired && pairs.size === rightByPair.size) return { pairs, mended, problems };
  // A pair known on one side only (a run was cut off): left's, then those only right knows, in row
  // order, so the order is stable; the last row of a pairId stands, as a map by pairId keeps it.
  const leftByPair = new Map<string, StateRow>();
  for (const row of input.rows.left) leftByPair.set(row.pairId, row);
  const lonely = [...leftByPair.values()].filter((l) => !rightByPair.has(l.pairId));
  for (const r of rightByPair.values()) if (!leftByPair.has(r.pairId)) lonely.push(r);
  const recorded: Record<Side, Set<string>> = {
    left: new Set(input.rows.left.map((r) => r.key)),
    right: new Set(input.rows.right.map((r) => r.key)),
  };
  for (const row of lonely) {
    const pairId = row.pairId;
    const has: Side = leftByPair.has(pairId) ? "left" : "right";
    const lacks = otherSide(has);
    const st = input.states[has];
    if (!input.listing[has].has(row.key)) {
      // Gone from the side that still records it, and unknown to the other: a removal was cut off.
      st.deleteMessage(input.folder[has], row.key);
      mended.push(`forgot ${pairId} (removed, recorded on ${has} only)`);
      continue;
    }
    const found = await findCounterpart(input, lacks, pairId, row, recorded[lacks]);
    if (found) {
      const copy: StateRow = { ...row, folder: input.folder[lacks], key: found.key, size: found.size };
      input.states[lacks].putMessage(copy);
      recorded[lacks].add(found.key);
      pairs.set(pairId, has === "left" ? pairInfo(pairId, row, copy) : pairInfo(pairId, copy, row));
      mended.push(`re-linked ${pairId} on ${lacks} to ${found.key}`);
      continue;
    }
    problems.push(
      `Cannot sync folder "${input.folder.left}": pair ${pairId} is recorded on ${has} only and its counterpart cannot be found on ${lacks}; run \`tandem sync --resync\` to re-pair the folder by content`,
    );
  }
  return { pairs, mended, problems };
}

async function findCounterpart(
  input: PrecheckInput,
  side: Side,
  pairId: string,
  row: StateRow,
  recorded: Set<string>,
): Promise<MessageMeta | undefined> {
  const prefix = side === "left" ? "l:" : "r:";
  if (pairId.startsWith(prefix)) {
    const m = input.listing[side].get(pairId.slice(2));
    if (m && !recorded.has(m.key)) return m;
  }
  if (row.digest === "") return undefined;
  // A copy keeps its arrival date, so only unrecorded messages of (nearly) that date are read.
  const candidates = [...input.listing[side].values()].filter(
    (m) => !recorded.has(m.key) && Math.abs(m.date - row.date) <= 2000,
  );
  const hits: MessageMeta[] = [];
  for (const m of candidates) {
    if ((await digestOf(input.handles[side].read(m.key))) === row.digest) hits.push(m);
  }
  return hits.length === 1 ? hits[0] : undefined;
}

/** A pair as the two states' rows record it. */
export function pairInfo(pairId: string, l: StateRow, r: StateRow): PairInfo {
  return {
    pairId,
    leftKey: l.key,
    rightKey: r.key,
    leftFlags: l.flags,
    rightFlags: r.flags,
    date: l.date,
    digest: l.digest || r.digest,
  };
}
