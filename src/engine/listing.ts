import type { Folder } from "../drivers/driver.js";
import { fingerprintOf } from "../model/fingerprint.js";
import type { MessageMeta } from "../model/types.js";

/**
 * Margin below the window start for listings: arrival dates of the two copies of a message may
 * differ by time-zone rounding (IMAP SINCE is day-granular), so a message just inside the window
 * on one side must not be missed on the other and taken for a removal.
 */
export const WINDOW_MARGIN_MS = 2 * 86_400_000;

/**
 * Lists a whole folder (inside the window, with margin) into a map by key. `known`: keys the state
 * holds, whose size and date the store may leave out (NaN) when there is no window.
 */
export async function listAll(
  folder: Folder,
  minDate: number,
  known?: ReadonlySet<string>,
): Promise<Map<string, MessageMeta>> {
  const out = new Map<string, MessageMeta>();
  const opts = minDate > 0 ? { minDate: minDate - WINDOW_MARGIN_MS } : { known };
  for await (const m of folder.list(opts)) out.set(m.key, m);
  return out;
}

/** A listing's print (model/fingerprint.ts) with its message count. */
export type Print = { count: number; fingerprint: string };

/** The same listing, as far as prints tell. */
export function samePrint(a: Print, b: Print): boolean {
  return a.count === b.count && a.fingerprint === b.fingerprint;
}

/** The print of a folder's listFlags(): straight from the store where it can, else of the listing. */
export async function printOf(h: Folder): Promise<Print> {
  const direct = await h.printFlags?.();
  if (direct) return direct;
  const listed = await h.listFlags!();
  return { count: listed.length, fingerprint: fingerprintOf(listed) };
}
