import type { SideChanges } from "../model/plan.js";
import { type MessageMeta, sameFlags } from "../model/types.js";
import type { StateRow } from "../state/side-state.js";

/**
 * Change detection for one side of one folder: its listing against its own state (step 4).
 * Pure. Invariant: a state row outside the window (date < minDate) is never reported gone, and a
 * listed message outside the window is never reported new — ageing out is not a deletion.
 */
export function detectChanges(
  rows: readonly StateRow[],
  listing: Iterable<MessageMeta>,
  minDate: number,
): SideChanges {
  const known = new Map<string, StateRow>();
  for (const row of rows) known.set(row.key, row);
  const added: MessageMeta[] = [];
  const flagged = new Map<string, MessageMeta>();
  for (const msg of listing) {
    const row = known.get(msg.key);
    if (row === undefined) {
      if (msg.date >= minDate) added.push(msg);
      continue;
    }
    known.delete(msg.key);
    if (row.date < minDate) continue;
    if (!sameFlags(row.flags, msg.flags)) {
      // A listing may leave size and date out for known keys (NaN): the state has them.
      const whole =
        Number.isNaN(msg.size) || Number.isNaN(msg.date) ? { ...msg, size: row.size, date: row.date } : msg;
      flagged.set(row.pairId, whole);
    }
  }
  const gone = new Set<string>();
  for (const row of known.values()) if (row.date >= minDate) gone.add(row.pairId);
  added.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { added, flagged, gone };
}
