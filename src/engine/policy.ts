import type { Conflict, Resolution } from "../model/plan.js";

/**
 * Conflict policies, a closed set resolved in this one place.
 * - keep (default): nothing is lost; a message removed on one side and changed on the other is kept.
 * - left / right: that side's action wins.
 * - fail: the conflict stays open and is reported (exit 3).
 * - ask: the user decides on a terminal; without one it acts as fail (handled by the caller).
 */
export type ConflictPolicy = "keep" | "left" | "right" | "fail" | "ask";

export function resolveConflict(_c: Conflict, policy: Exclude<ConflictPolicy, "ask">): Resolution {
  switch (policy) {
    case "keep":
      return "keep";
    case "left":
      return "left";
    case "right":
      return "right";
    case "fail":
      return "fail";
  }
}
