import type { Flag, MessageMeta, Side } from "./types.js";

/** A pair as both states agree on it, after the pre-check. */
export interface PairInfo {
  pairId: string;
  leftKey: string;
  rightKey: string;
  /** Agreed flags as recorded in each side's state (they differ only after an interrupted run). */
  leftFlags: Flag[];
  rightFlags: Flag[];
  date: number;
  digest: string;
}

/** What differs between one side's listing and its own state, for one folder (SYNC-MODEL.md step 4). */
export interface SideChanges {
  /** Listed, not in the state, inside the window; ordered by key. */
  added: MessageMeta[];
  /** pairId → the message as listed now, where its flags differ from the state's. */
  flagged: Map<string, MessageMeta>;
  /** pairIds whose key is in the state (inside the window) but no longer listed. */
  gone: Set<string>;
}

/** Two new messages, one on each side, found to have the same content. */
export interface ContentMatch {
  left: MessageMeta;
  right: MessageMeta;
  digest: string;
}

export type ConflictReason = "removed-vs-changed";

/** A contradiction the policy must settle: a value, not an exception (STYLE.md). */
export interface Conflict {
  pairId: string;
  reason: ConflictReason;
  /** The side that removed the message. */
  removedOn: Side;
  /** The side whose copy changed, with its key and flags now. */
  changed: MessageMeta;
  text: string;
}

/** How one conflict is settled: the winner's action is carried out, `fail` leaves it open. */
export type Resolution = "keep" | "left" | "right" | "fail";

export interface CopyOp {
  from: Side;
  msg: MessageMeta;
  pairId: string;
}

export interface FlagOp {
  /** The side whose store is written. */
  side: Side;
  key: string;
  pairId: string;
  add: Flag[];
  remove: Flag[];
  /** The flags that side's state records once the store confirmed the change. */
  flags: Flag[];
}

export interface RemoveOp {
  /** The side whose store loses the message. */
  side: Side;
  key: string;
  pairId: string;
}

/** State-only records: nothing is sent to a store. */
export type RecordOp =
  | { kind: "flags"; side: Side; pairId: string; flags: Flag[] }
  | { kind: "forget"; pairId: string }
  | { kind: "pair"; pairId: string; left: MessageMeta; right: MessageMeta; digest: string };

/** The engine's decision for one folder (SYNC-MODEL.md "plan"). */
export interface Plan {
  copies: CopyOp[];
  flags: FlagOp[];
  removals: RemoveOp[];
  records: RecordOp[];
  conflicts: Conflict[];
}

export function emptyPlan(): Plan {
  return { copies: [], flags: [], removals: [], records: [], conflicts: [] };
}

/** The stores a plan writes to: a copy's target, and each side flags are set or messages removed on. */
export function sidesWritten(plan: Plan): Record<Side, boolean> {
  const written: Record<Side, boolean> = { left: false, right: false };
  for (const c of plan.copies) written[c.from === "left" ? "right" : "left"] = true;
  for (const f of plan.flags) written[f.side] = true;
  for (const r of plan.removals) written[r.side] = true;
  return written;
}

/** A side's changes when it has none. */
export function noChanges(): SideChanges {
  return { added: [], flagged: new Map(), gone: new Set() };
}

export function planSize(plan: Plan): number {
  return plan.copies.length + plan.flags.length + plan.removals.length + plan.records.length;
}
