// The vocabulary every stage shares (SYNC-MODEL.md "Words"). Stages talk only through these types.

export type Side = "left" | "right";
export const SIDES: readonly Side[] = ["left", "right"];
export function otherSide(side: Side): Side {
  return side === "left" ? "right" : "left";
}

/**
 * A flag in its canonical IMAP spelling: system flags `\Seen \Answered \Flagged \Deleted \Draft`,
 * or a keyword such as `$Forwarded`, `$Junk` or a user label. Flag sets are always kept sorted
 * (see normalizeFlags) so that two sets compare with `===` after joining.
 */
export type Flag = string;

/** One message as a listing reports it. */
export interface MessageMeta {
  /** How the side names the message: IMAP `UIDVALIDITY/UID`, Maildir the unique base name. */
  key: string;
  /** Sorted, deduplicated (normalizeFlags). */
  flags: Flag[];
  /** Size in bytes as the store reports it (IMAP RFC822.SIZE, Maildir file size). */
  size: number;
  /** Arrival date, ms since the epoch (IMAP INTERNALDATE, Maildir file mtime). */
  date: number;
}

export function normalizeFlags(flags: Iterable<string>): Flag[] {
  return [...new Set(flags)].sort();
}

export function flagsKey(flags: readonly Flag[]): string {
  return flags.join(" ");
}

/** flagsKey(a) === flagsKey(b) without building either string (a flag holds no space). */
export function sameFlags(a: readonly Flag[], b: readonly Flag[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
