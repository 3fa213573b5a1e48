import type { Folder } from "../drivers/driver.js";
import { fingerprintOf, ListingPrint } from "../model/fingerprint.js";
import type { Drift } from "../model/report.js";
import { flagsKey, type MessageMeta, type Side, sameFlags } from "../model/types.js";
import type { StateRow } from "../state/side-state.js";
import { digestOf } from "./digest.js";
import { listAll } from "./listing.js";

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
  /** Receives the print of the pairs (pairId and flags) when both states agree on them. */
  pairsPrint?: (fingerprint: string) => void;
}

/** The print of a state's pairs: pairId and agreed flags of each row. */
export function pairsPrintOf(rows: readonly StateRow[]): string {
  const print = new ListingPrint();
  for (const r of rows) print.add(r.pairId, r.flags);
  return print.digest();
}

/**
 * Verification without a listing or a map, where it can decide: true when both stores print as
 * their states (keys and flags: model/fingerprint.ts) and both states print the same pairs with
 * the same flags, pairIds unique on the left (then on the right too). Each equality of prints is
 * exactly "no drift" of the kinds verifyFolder names, so true is its empty answer, reached by
 * hashing instead of a lookup per message; anything else (a difference, a window, held pairs, a
 * deep check, a store that cannot print) is false and the full comparison runs and names the drift.
 */
async function agreeByPrints(input: VerifyInput): Promise<boolean> {
  if (input.minDate !== 0 || input.deep || (input.skipPairs?.size ?? 0) > 0) return false;
  const { rows, handles } = input;
  const pairs = pairsPrintOf(rows.left);
  if (pairs !== pairsPrintOf(rows.right)) return false;
  const pairIds = new Set<string>();
  for (const r of rows.left) pairIds.add(r.pairId);
  if (pairIds.size !== rows.left.length) return false;
  const storePrint = async (side: Side) => {
    const reuse = input.listing?.[side];
    if (reuse) return { count: reuse.size, fingerprint: fingerprintOf(reuse.values()) };
    return await handles[side].printFlags?.();
  };
  const [left, right] = await Promise.all([storePrint("left"), storePrint("right")]);
  if (!left || !right) return false;
  if (left.fingerprint !== fingerprintOf(rows.left) || right.fingerprint !== fingerprintOf(rows.right))
    return false;
  input.fingerprint?.("left", left.fingerprint, left.count);
  input.fingerprint?.("right", right.fingerprint, right.count);
  input.pairsPrint?.(pairs);
  return true;
}

/** One entry of a verification listing: keys and flags; a date only where the listing has one. */
type Seen = { key: string; flags: readonly string[]; date?: number };

export async function verifyFolder(input: VerifyInput): Promise<Drift[]> {
  if (await agreeByPrints(input)) return [];
  // Listings are only read here, never changed: a reused one is the caller's map as it is.
  const fresh = async (side: Side): Promise<Map<string, Seen>> => {
    const reuse = input.listing?.[side];
    if (reuse) return reuse;
    const h = input.handles[side];
    // Without a window, keys and flags are all verification needs: the store's cheapest listing.
    if (input.minDate === 0 && h.listFlags) {
      const out = new Map<string, Seen>();
      for (const m of await h.listFlags()) out.set(m.key, m);
      return out;
    }
    return listAll(h, input.minDate, new Set(input.rows[side].map((r) => r.key)));
  };
  const [left, right] = await Promise.all([fresh("left"), fresh("right")]);
  const listing: Record<Side, Map<string, Seen>> = { left, right };
  if (input.fingerprint)
    for (const side of ["left", "right"] as const)
      input.fingerprint(side, fingerprintOf(listing[side].values()), listing[side].size);
  const drift: Drift[] = [];
  const skip = input.skipPairs ?? new Set<string>();
  for (const side of ["left", "right"] as const) {
    const folder = input.folder[side];
    const listed = listing[side];
    /** Rows whose key is listed: when fewer than listed, some listed message is unrecorded. */
    let matched = 0;
    for (const row of input.rows[side]) {
      const m = listed.get(row.key);
      if (m) matched++;
      if (row.date < input.minDate || skip.has(row.pairId)) continue;
      if (!m) {
        drift.push({
          folder,
          side,
          key: row.key,
          pairId: row.pairId,
          what: "recorded in the state but missing from the store",
        });
      } else if (!sameFlags(m.flags, row.flags)) {
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
    if (matched < listed.size) {
      const recorded = new Set(input.rows[side].map((r) => r.key));
      for (const m of listed.values()) {
        // A date left out (NaN or absent) counts as inside the window.
        if (!recorded.has(m.key) && !((m.date ?? Number.NaN) < input.minDate))
          drift.push({ folder, side, key: m.key, what: "in the store but not paired" });
      }
    }
  }
  // Both states know the same pairs with the same agreed flags. A right row is taken out once
  // matched: what is left is known on the right only (and a pairId twice on the left shows).
  const rightByPair = new Map<string, StateRow>();
  for (const row of input.rows.right) rightByPair.set(row.pairId, row);
  for (const row of input.rows.left) {
    const twin = rightByPair.get(row.pairId);
    if (twin) rightByPair.delete(row.pairId);
    if (skip.has(row.pairId) || row.date < input.minDate) continue;
    if (!twin) {
      drift.push({
        folder: input.folder.left,
        side: "left",
        key: row.key,
        pairId: row.pairId,
        what: "pair recorded on left only",
      });
    } else if (!sameFlags(twin.flags, row.flags)) {
      drift.push({
        folder: input.folder.left,
        side: "left",
        key: row.key,
        pairId: row.pairId,
        what: `states disagree on flags: left "${flagsKey(row.flags)}", right "${flagsKey(twin.flags)}"`,
      });
    }
  }
  for (const row of rightByPair.values()) {
    if (skip.has(row.pairId) || row.date < input.minDate) continue;
    drift.push({
      folder: input.folder.right,
      side: "right",
      key: row.key,
      pairId: row.pairId,
      what: "pair recorded on right only",
    });
  }
  if (drift.length === 0) input.pairsPrint?.(pairsPrintOf(input.rows.left));
  return drift;
}
