import type { Folder } from "../drivers/driver.js";
import type { Drift } from "../model/report.js";
import { flagsKey, type MessageMeta, type Side } from "../model/types.js";
import type { StateRow } from "../state/side-state.js";
import { digestOf } from "./digest.js";
import { listAll } from "./listing.js";
import { fingerprintOf } from "./proof.js";

/**
 * Verification (SYNC-MODEL.md step 8): a full fresh listing of both sides held against both states.
 * It only reports; it never mends (invariant 7). Every pair must be on both sides with its agreed
 * flags, both states must know the same pairs, and no message inside the window may be unpaired.
 */
export interface VerifyInput {
  folder: Record<Side, string>;
  handles: Record<Side, Folder>;
  rows: Record<Side, readonly StateRow[]>;
  /** Window start (ms); 0 without maxage. */
  minDate: number;
  /** Pairs held by an open conflict: expected to differ. */
  skipPairs?: ReadonlySet<string>;
  /** Also compare contents with the recorded digests. */
  deep?: boolean;
  /** Per side, a full listing made this run after that side's last write; listed afresh when absent. */
  listing?: Partial<Record<Side, Map<string, MessageMeta>>>;
  /** Receives each side's listing as a fingerprint (see proof.ts) with its message count. */
  fingerprint?: (side: Side, fingerprint: string, count: number) => void;
}

export async function verifyFolder(input: VerifyInput): Promise<Drift[]> {
  const fresh = async (side: Side): Promise<Map<string, MessageMeta>> => {
    const reuse = input.listing?.[side];
    if (reuse) return new Map(reuse);
    const h = input.handles[side];
    // Without a window, keys and flags are all verification needs: the store's cheapest listing.
    if (input.minDate === 0 && h.listFlags) {
      const out = new Map<string, MessageMeta>();
      for (const m of await h.listFlags())
        out.set(m.key, { key: m.key, flags: m.flags, size: Number.NaN, date: Number.NaN });
      return out;
    }
    return listAll(h, input.minDate, new Set(input.rows[side].map((r) => r.key)));
  };
  const [left, right] = await Promise.all([fresh("left"), fresh("right")]);
  const listing: Record<Side, Map<string, MessageMeta>> = { left, right };
  if (input.fingerprint)
    for (const side of ["left", "right"] as const)
      input.fingerprint(side, fingerprintOf(listing[side].values()), listing[side].size);
  const drift: Drift[] = [];
  const skip = input.skipPairs ?? new Set<string>();
  const byPair: Record<Side, Map<string, StateRow>> = { left: new Map(), right: new Map() };
  for (const side of ["left", "right"] as const) {
    const folder = input.folder[side];
    for (const row of input.rows[side]) {
      byPair[side].set(row.pairId, row);
      if (row.date < input.minDate || skip.has(row.pairId)) {
        listing[side].delete(row.key);
        continue;
      }
      const m = listing[side].get(row.key);
      listing[side].delete(row.key);
      if (!m) {
        drift.push({
          folder,
          side,
          key: row.key,
          pairId: row.pairId,
          what: "recorded in the state but missing from the store",
        });
      } else if (flagsKey(m.flags) !== flagsKey(row.flags)) {
        drift.push({
          folder,
          side,
          key: row.key,
          pairId: row.pairId,
          what: `flags differ: state has "${flagsKey(row.flags)}", store has "${flagsKey(m.flags)}"`,
        });
      } else if (input.deep && row.digest !== "") {
        const d = await digestOf(input.handles[side].read(row.key));
        if (d !== row.digest)
          drift.push({
            folder,
            side,
            key: row.key,
            pairId: row.pairId,
            what: "content differs from the recorded digest",
          });
      }
    }
    for (const m of listing[side].values()) {
      // A date left out (NaN) counts as inside the window.
      if (!(m.date < input.minDate))
        drift.push({ folder, side, key: m.key, what: "in the store but not paired" });
    }
  }
  for (const side of ["left", "right"] as const) {
    const other = side === "left" ? "right" : "left";
    for (const [pairId, row] of byPair[side]) {
      if (skip.has(pairId) || row.date < input.minDate) continue;
      const twin = byPair[other].get(pairId);
      if (!twin) {
        drift.push({
          folder: input.folder[side],
          side,
          key: row.key,
          pairId,
          what: `pair recorded on ${side} only`,
        });
      } else if (side === "left" && flagsKey(twin.flags) !== flagsKey(row.flags)) {
        drift.push({
          folder: input.folder[side],
          side,
          key: row.key,
          pairId,
          what: `states disagree on flags: left "${flagsKey(row.flags)}", right "${flagsKey(twin.flags)}"`,
        });
      }
    }
  }
  return drift;
}
