import type { Plan } from "../model/plan.js";
import type { Side } from "../model/types.js";

/**
 * Safety guards (SYNC-MODEL.md step 6), run on a plan before anything is written. Pure.
 * Each guard names what it saw and the flag that lets the user go on.
 */
export type GuardName = "max-delete" | "empty-side" | "identity-changed";

export interface GuardStop {
  guard: GuardName;
  side: Side;
  message: string;
}

export interface GuardInput {
  folder: string;
  plan: Plan;
  /** Rows inside the window in each side's state. */
  stateCount: Record<Side, number>;
  /** Messages inside the window that each side listed. */
  listedCount: Record<Side, number>;
  /** Percent of a folder one run may remove. */
  maxDelete: number;
}

/** Below this many removals the percentage guard does not apply: deleting 2 of 3 messages is ordinary use. */
export const MAX_DELETE_FLOOR = 3;

export function checkGuards(input: GuardInput): GuardStop[] {
  const stops: GuardStop[] = [];
  for (const side of ["left", "right"] as const) {
    const other = side === "left" ? "right" : "left";
    if (input.listedCount[side] === 0 && input.stateCount[side] > 0) {
      stops.push({
        guard: "empty-side",
        side,
        message: `Cannot sync folder "${input.folder}": ${side} lists no messages but its state knows ${input.stateCount[side]}; if the folder was really emptied, run with --force`,
      });
      continue;
    }
    const removing = input.plan.removals.filter((r) => r.side === side).length;
    const total = input.stateCount[side];
    if (removing >= MAX_DELETE_FLOOR && removing * 100 > input.maxDelete * total) {
      stops.push({
        guard: "max-delete",
        side,
        message: `Cannot sync folder "${input.folder}": too many removals on ${side} (${removing} of ${total}, more than ${input.maxDelete}%) because they were removed on ${other}; run with --force if that is intended`,
      });
    }
  }
  return stops;
}
