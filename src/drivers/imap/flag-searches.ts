// A folder's keys and flags from a few ESEARCH answers instead of a FETCH line per message: the
// answers' checks and the print made of them, shared by ImapFolder (listFlags, printFlags) and the
// store's pipelined printing of many folders (ImapStore.printFolders).
import { ListingPrint } from "../../model/fingerprint.js";
import type { Flag } from "../../model/types.js";
import type { Selected, SetSearches } from "./lean/ops.js";
import { eachPosition, isSendableFlag, parseUidRanges, type UidRanges } from "./lean/parse.js";

/** The system flags a message can carry, with their search keys (\Recent never counts: listingFlags). */
export const SYSTEM_SEARCH: ReadonlyArray<readonly [Flag, string]> = [
  ["\\Answered", "ANSWERED"],
  ["\\Deleted", "DELETED"],
  ["\\Draft", "DRAFT"],
  ["\\Flagged", "FLAGGED"],
  ["\\Seen", "SEEN"],
];

/** Every UID (`all`) and, per flag in sorted order, the set of UIDs that carry it. */
export interface FoundFlags {
  all: UidRanges;
  byFlag: Array<[Flag, string]>;
}

/** What to search for, as the mailbox's FLAGS (in a selection's answer) tells it. */
export interface FlagTable {
  /** The keywords a message can carry, as the mailbox spells them. */
  keywords: Flag[];
  /** Each flag as spelled, with its search criteria. */
  searchFor: Array<[Flag, string]>;
}

/** Starts the searches that every flag listing needs: ALL, each system flag, each of `keywords`. */
export function startFlagSearches(searches: SetSearches, keywords: readonly string[]): void {
  searches.add("ALL");
  for (const [, key] of SYSTEM_SEARCH) searches.add(key);
  for (const kw of keywords) searches.add(`KEYWORD ${kw}`);
}

/**
 * The flags to search for, from the mailbox's FLAGS; null when that cannot be trusted to be what
 * a FETCH would say: no FLAGS, a flag we cannot search for (an unknown system flag, a keyword that
 * is no atom), two flags differing only in case.
 */
export function flagTable(selected: Selected): FlagTable | null {
  if (!selected.flags) return null;
  const spelled = new Map<string, Flag>();
  const keywords: Flag[] = [];
  const lower = new Set<string>();
  for (const f of selected.flags) {
    const l = f.toLowerCase();
    if (l === "\\recent") continue;
    if (lower.has(l)) return null;
    lower.add(l);
    if (f.startsWith("\\")) {
      const sys = SYSTEM_SEARCH.find(([name]) => name.toLowerCase() === l);
      if (!sys) return null;
      spelled.set(sys[1], f);
    } else {
      if (!isSendableFlag(f)) return null;
      keywords.push(f);
    }
  }
  const searchFor: Array<[Flag, string]> = SYSTEM_SEARCH.map(([name, key]) => [
    spelled.get(key) ?? name,
    key,
  ]);
  for (const kw of keywords) searchFor.push([kw, `KEYWORD ${kw}`]);
  return { keywords, searchFor };
}

/** Keywords of `table` that `searches` has not searched for. */
export function unsearched(table: FlagTable, searches: SetSearches): Flag[] {
  return table.keywords.filter((kw) => !searches.sets.has(`KEYWORD ${kw}`));
}

/**
 * The answers, once every search of `table` was answered; null when they cannot be trusted: the
 * server announced a change while they ran, an answer was odd, a keyword searched for but no
 * longer in FLAGS is found on a message, or ALL did not find EXISTS many UIDs.
 */
export function foundFlags(selected: Selected, table: FlagTable, searches: SetSearches): FoundFlags | null {
  if (searches.changed || searches.odd) return null;
  const listed = new Set(table.keywords);
  for (const [criteria, set] of searches.sets) {
    if (criteria.startsWith("KEYWORD ") && !listed.has(criteria.slice(8)) && set !== "") return null;
  }
  for (const [, criteria] of table.searchFor) if (!searches.sets.has(criteria)) return null;
  const all = parseUidRanges(searches.sets.get("ALL") ?? "");
  if (!all || all.count !== selected.exists) return null;
  const searchFor = [...table.searchFor].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { all, byFlag: searchFor.map(([flag, criteria]) => [flag, searches.sets.get(criteria)!]) };
}

/**
 * The print of the listing `found` describes (keys `<identity>/<uid>`), without building it: one
 * bit per flag and message. Undefined when a set names a UID that ALL has not, or more than 31
 * flags are in use.
 */
export function printFound(
  identity: string,
  found: FoundFlags,
): { count: number; fingerprint: string } | undefined {
  const { all, byFlag } = found;
  if (byFlag.length > 31) return undefined;
  const bits = new Uint32Array(all.count);
  for (let f = 0; f < byFlag.length; f++) {
    const bit = 1 << f;
    const ok = eachPosition(byFlag[f]![1], all, (from, to) => {
      for (let i = from; i <= to; i++) bits[i]! |= bit;
    });
    if (!ok) return undefined;
  }
  // Few distinct flag sets in a folder: each becomes an array once (byFlag is in flag order).
  const sets = new Map<number, string>();
  const flagsOf = (mask: number): string => {
    let text = sets.get(mask);
    if (text === undefined) {
      text = ListingPrint.flagText(byFlag.filter((_, f) => (mask & (1 << f)) !== 0).map(([flag]) => flag));
      sets.set(mask, text);
    }
    return text;
  };
  const print = new ListingPrint();
  print.key(`${identity}/`);
  // Keys `<identity>/<uid>` of consecutive UIDs share all but the last digit: that part is
  // hashed once per ten UIDs, and each key adds its last digit (the print is the same).
  const prefix = print.mark();
  let tens = -1;
  let upToTens = prefix;
  let p = 0;
  for (let r = 0; r < all.lo.length; r++) {
    for (let u = all.lo[r]!, hi = all.hi[r]!; u <= hi; u++) {
      const t = Math.floor(u / 10);
      if (t !== tens) {
        print.resume(prefix);
        if (t > 0) print.keyDigits(t);
        upToTens = print.mark();
        tens = t;
      } else print.resume(upToTens);
      print.keyDigit(u - t * 10);
      print.flagText(flagsOf(bits[p++]!));
    }
  }
  return { count: print.count, fingerprint: print.digest() };
}
