/** Exit statuses (README "Exit status"): the only place they are defined. */
export const EXIT = {
  /** Done and verified. */
  ok: 0,
  /** Failure: connection, authentication, I/O. */
  failure: 1,
  /** Usage or config error. */
  usage: 2,
  /** Finished, but drift or unresolved conflicts remain. */
  drift: 3,
  /** Stopped by a safety guard. */
  guard: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
