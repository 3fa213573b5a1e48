import { EXIT } from "../../src/cli/exit.js";
import type { ConflictPolicy } from "../../src/config/config.js";

/**
 * The engine's decisions as a table (SYNC-MODEL.md "What the tests must show"), shared by every
 * pair of stores (Maildir↔Maildir here, IMAP in test/imap). Each row: `base` is what both sides
 * hold after a first sync; `left`/`right` are a mail client's changes (notation in harness.ts);
 * `expect` is both sides afterwards (or `left`/`right` where they differ).
 */
export interface Scenario {
  name: string;
  base: string;
  left?: string;
  right?: string;
  expect: string | { left: string; right: string };
  policy?: ConflictPolicy;
  exit?: number;
  force?: boolean;
  maxage?: number;
}

export const TABLE: Scenario[] = [
  { name: "new on left", base: "", left: "nA:S", expect: "A:S" },
  { name: "new on both, different", base: "B", left: "nA", right: "nC:F", expect: "A B C:F" },
  {
    name: "same new message on both sides is paired, flags merged",
    base: "",
    left: "nA:S",
    right: "nA:F",
    expect: "A:FS",
  },
  { name: "flag added on left", base: "A B", left: "+A:S", expect: "A:S B" },
  { name: "flag removed on left", base: "A:FS", left: "-A:F", expect: "A:S" },
  { name: "same flag change on both", base: "A", left: "+A:S", right: "+A:S", expect: "A:S" },
  { name: "different flags on both merge", base: "A:S", left: "+A:F", right: "-A:S +A:R", expect: "A:FR" },
  { name: "removed on left", base: "A B C", left: "xA", expect: "B C" },
  { name: "removed on both", base: "A B", left: "xA", right: "xA", expect: "B" },
  {
    name: "removed on left, flagged on right: keep",
    base: "A B",
    left: "xA",
    right: "+A:F",
    expect: "A:F B",
  },
  {
    name: "removed on left, flagged on right: left wins",
    base: "A B",
    left: "xA",
    right: "+A:F",
    policy: "left",
    expect: "B",
  },
  {
    name: "removed on left, flagged on right: right wins",
    base: "A B",
    left: "xA",
    right: "+A:F",
    policy: "right",
    expect: "A:F B",
  },
  {
    name: "removed on left, only \\Deleted added on right: removed, no conflict",
    base: "A B",
    left: "xA",
    right: "+A:T",
    policy: "fail",
    expect: "B",
  },
  {
    name: "removed on left, flagged on right: fail",
    base: "A B",
    left: "xA",
    right: "+A:F",
    policy: "fail",
    exit: EXIT.drift,
    expect: { left: "B", right: "A:F B" },
  },
  {
    name: "max-delete guard",
    base: "A B C D E F",
    left: "xA xB xC xD",
    exit: EXIT.guard,
    expect: { left: "E F", right: "A B C D E F" },
  },
  { name: "max-delete guard, forced", base: "A B C D E F", left: "xA xB xC xD", force: true, expect: "E F" },
  {
    name: "empty-side guard",
    base: "A B",
    left: "xA xB",
    exit: EXIT.guard,
    expect: { left: "", right: "A B" },
  },
  { name: "empty-side guard, forced", base: "A B", left: "xA xB", force: true, expect: "" },
  { name: "maxage: new inside the window is copied", base: "", left: "nA@10", maxage: 30, expect: "A" },
  {
    name: "maxage: new outside the window stays",
    base: "",
    left: "nA@40 nB@5",
    maxage: 30,
    expect: { left: "A B", right: "B" },
  },
];

export function mirror(s: Scenario): Scenario {
  const swap = (p?: ConflictPolicy): ConflictPolicy | undefined =>
    p === "left" ? "right" : p === "right" ? "left" : p;
  return {
    ...s,
    name: `${s.name} (sides swapped)`,
    left: s.right,
    right: s.left,
    policy: swap(s.policy),
    expect: typeof s.expect === "string" ? s.expect : { left: s.expect.right, right: s.expect.left },
  };
}

/** Every row, and every row with the sides swapped. */
export const ALL = TABLE.flatMap((s) => [s, mirror(s)]);
