import type { ChangeListing } from "../drivers/driver.js";
import { ListingPrint } from "../model/fingerprint.js";
import {
  emptyPlan,
  noChanges,
  type PairInfo,
  type Plan,
  type SideChanges,
  sidesWritten,
} from "../model/plan.js";
import type { Drift } from "../model/report.js";
import { otherSide, type Side, sameFlags } from "../model/types.js";
import type { StateRow } from "../state/side-state.js";
import { applyPlan } from "./apply.js";
import { detectChanges } from "./detect-changes.js";
import { checkGuards } from "./guards.js";
import { type Print, printOf, samePrint } from "./listing.js";
import { pairInfo } from "./precheck.js";
import type { FolderProof } from "./proof.js";
import { pairIdFor, reconcile } from "./reconcile.js";
import { type FolderJob, listSide, recordSettled } from "./sync-folder.js";
import { verifyFolder } from "./verify.js";

/**
 * The quiet-side path of one folder: when one side prints exactly as the last clean run's proof
 * left it, that side has no change, its listing is its state, and only the pairs the other side
 * changed need to be read, planned, applied and recorded. The proof's prints of both stores and of
 * the pairs are then carried forward by the rows this run changed (a print is a sum: drop the old
 * rows, add the new), and verification holds the stores' fresh prints against them — the same
 * test agreeByPrints() makes from every row, so a run where one side changed costs about its
 * changes instead of a pass over every message of both states. Anything it cannot vouch for (a
 * difference after the apply, a pair it cannot find) goes to the full comparison or the ordinary
 * path, before anything is written.
 *
 * Valid because a proof is only there while both states are exactly as it describes them: it is
 * removed before a run's first state write and written after a clean save (proof.ts), and each
 * folder's rows are only changed by that folder's own sync, once per run (the caller makes sure).
 */
export interface QuietListing {
  proof: FolderProof;
  /** Both stores print as the proof: nothing changed on either side since the last clean run. */
  unchanged: boolean;
  /** The side whose store prints as the proof. */
  quiet: Side;
  /** Each store's print as listed now. */
  printed: Record<Side, Print>;
  /** The changed side's changes against its state (empty when unchanged). */
  changes: SideChanges;
  /** The changed side's state rows: all of them, or those of the listed changes only. */
  rows: StateRow[];
  /** How many rows the changed side's state holds for the folder. */
  stateCount: number;
  /** How many messages the changed side listed. */
  listed: number;
}

export interface QuietOutcome {
  plan: Plan;
  held: Set<string>;
  stopped: boolean;
  drift: Drift[];
  /** The folder's proof for the next run, when it verified clean without held pairs. */
  proof?: FolderProof;
  /** Verified by the carried prints (else by the full comparison). */
  byPrints?: boolean;
}

/**
 * Step 3 on the quiet-side path: undefined when the folder does not qualify (the caller lists it
 * the ordinary way; nothing was changed). Only for a whole sync without a window or keyword mask.
 */
export async function listQuiet(
  job: FolderJob,
  proof: FolderProof,
  /** Stores' prints this run made already (the proof path), of a side it has written nothing to since. */
  given?: Partial<Record<Side, Print>>,
): Promise<QuietListing | undefined> {
  const { names, handles, states } = job;
  if (job.minDate !== 0 || job.keywords === false || job.resync || job.dryRun) return undefined;
  for (const side of ["left", "right"] as const) {
    if (proof.names[side] !== names[side] || proof[side].identity !== handles[side].identity)
      return undefined;
    if (states[side].folder(names[side])?.identity !== handles[side].identity) return undefined;
    // An open intent is the trace of an interrupted run: the ordinary path settles it.
    if (states[side].intents(names[side]).length > 0) return undefined;
  }
  if (!handles.left.listFlags || !handles.right.listFlags) return undefined;
  const [left, right] = await Promise.all([
    given?.left ?? printOf(handles.left),
    given?.right ?? printOf(handles.right),
  ]);
  const printed = { left, right };
  const quietOn = { left: samePrint(left, proof.left), right: samePrint(right, proof.right) };
  if (quietOn.left && quietOn.right)
    return {
      proof,
      unchanged: true,
      quiet: "left",
      printed,
      changes: noChanges(),
      rows: [],
      stateCount: proof.left.count,
      listed: left.count,
    };
  if (!quietOn.left && !quietOn.right) return undefined;
  const quiet: Side = quietOn.left ? "left" : "right";
  const changed = otherSide(quiet);
  const base = { proof, unchanged: false, quiet, printed };
  const sparse = await listChangesOnly(job, changed);
  if (sparse) return { ...base, ...sparse };
  const rows = states[changed].rows(names[changed]);
  const { listing } = await listSide(job, changed, (f) => f, rows);
  const changes = detectChanges(rows, listing.values(), 0);
  return { ...base, changes, rows, stateCount: rows.length, listed: listing.size };
}

/**
 * The changed side's changes from the store's own change listing (IMAP CONDSTORE: what changed
 * since the state's marker; Maildir: the file names against the state's keys and flags), with
 * the state rows of those messages only; undefined where neither way is open. As detectChanges()
 * decides, from fewer rows.
 */
async function listChangesOnly(
  job: FolderJob,
  side: Side,
): Promise<Pick<QuietListing, "changes" | "rows" | "stateCount" | "listed"> | undefined> {
  const h = job.handles[side];
  const state = job.states[side];
  const name = job.names[side];
  const known = state.folder(name);
  let listed: ChangeListing;
  let stateCount: number;
  if (
    h.listChanges &&
    job.incremental?.[side] &&
    known?.identity === h.identity &&
    known.uidNext !== null &&
    known.highestModseq !== null &&
    known.minDate === 0
  ) {
    const keys = state.keys(name);
    stateCount = keys.length;
    listed = await h.listChanges(
      { uidNext: known.uidNext, highestModseq: known.highestModseq, count: known.count ?? undefined },
      {},
      keys,
    );
  } else if (h.listDiff) {
    const flags = state.keyFlags(name);
    stateCount = flags.size;
    listed = await h.listDiff(flags);
  } else return undefined;
  const rows = state.rowsWhere(name, "key", [...listed.changed.map((m) => m.key), ...listed.vanished]);
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const changes = noChanges();
  for (const m of listed.changed) {
    const row = byKey.get(m.key);
    // Without a window (minDate 0), as detectChanges() has it: a date before 1970 counts as outside.
    if (row === undefined) {
      if (m.date >= 0) changes.added.push(m);
    } else if (!(row.date < 0) && !sameFlags(row.flags, m.flags)) {
      const whole =
        Number.isNaN(m.size) || Number.isNaN(m.date) ? { ...m, size: row.size, date: row.date } : m;
      changes.flagged.set(row.pairId, whole);
    }
  }
  let gone = 0;
  for (const k of listed.vanished) {
    const row = byKey.get(k);
    if (row === undefined) continue;
    gone++;
    if (!(row.date < 0)) changes.gone.add(row.pairId);
  }
  changes.added.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { changes, rows, stateCount, listed: stateCount - gone + changes.added.length };
}

/** Steps 4–8 on the quiet-side path (see listQuiet). */
export async function syncQuiet(job: FolderJob, q: QuietListing): Promise<QuietOutcome | undefined> {
  const { names, handles, states, report } = job;
  if (q.unchanged)
    return { plan: emptyPlan(), held: new Set(), stopped: false, drift: [], proof: q.proof, byPrints: true };
  const quiet = q.quiet;
  const changed = otherSide(quiet);
  // The pairs the changed side touched, with their rows on both sides.
  const ids = new Set<string>([...q.changes.flagged.keys(), ...q.changes.gone]);
  const mine = new Map<string, StateRow>();
  for (const r of q.rows) if (ids.has(r.pairId)) mine.set(r.pairId, r);
  const theirs = new Map<string, StateRow>();
  for (const r of states[quiet].rowsWhere(names[quiet], "pairId", [...ids])) theirs.set(r.pairId, r);
  // The proof's states know every pair on both sides once; anything else is for the ordinary path.
  if (mine.size !== ids.size || theirs.size !== ids.size) return undefined;
  const pairs = new Map<string, PairInfo>();
  for (const id of ids) {
    const c = mine.get(id)!;
    const o = theirs.get(id)!;
    pairs.set(id, changed === "left" ? pairInfo(id, c, o) : pairInfo(id, o, c));
  }
  const sides =
    changed === "left" ? { left: q.changes, right: noChanges() } : { left: noChanges(), right: q.changes };
  // Nothing changed on the quiet side, so nothing can contradict: no conflict, no content match
  // (a conflict would be a bug here; the ordinary path then plans the folder, asking if need be).
  const plan = reconcile({ pairs, ...sides, matches: [], decide: () => "fail" });
  if (plan.conflicts.length > 0) return undefined;
  const counts = (c: number, o: number): Record<Side, number> =>
    changed === "left" ? { left: c, right: o } : { left: o, right: c };
  const stops = checkGuards({
    folder: names.left,
    plan,
    stateCount: counts(q.stateCount, q.proof[quiet].count),
    listedCount: counts(q.listed, q.printed[quiet].count),
    maxDelete: job.maxDelete,
  });
  if (stops.length > 0 && !job.force) {
    report.stops.push(...stops.map((s) => ({ guard: s.guard, message: s.message })));
    return { plan, held: new Set(), stopped: true, drift: [] };
  }
  const before: Record<Side, Map<string, StateRow>> = { left: new Map(), right: new Map() };
  for (const r of mine.values()) before[changed].set(r.key, r);
  for (const r of theirs.values()) before[quiet].set(r.key, r);
  const current: Record<Side, Map<string, StateRow>> = {
    left: new Map(before.left),
    right: new Map(before.right),
  };
  // Verification must know every row written from here on (mirrored()).
  for (const side of ["left", "right"] as const) states[side].watchWrites(names[side]);
  const total = plan.copies.length;
  await applyPlan(plan, {
    folder: names,
    handles,
    states,
    pairs,
    rows: current,
    report,
    now: job.now,
    onProgress: job.onProgress ? (done) => job.onProgress?.(done, total) : undefined,
  });
  await recordSettled(job, plan);
  job.onWritten?.();
  const drift = await verifyQuiet(job, q, plan, before, current);
  return { plan, held: new Set(), stopped: false, ...drift };
}

/**
 * The carried prints stand for the state only if the rows this run wrote are exactly the rows
 * the engine kept in hand: every key the state wrote is among them, and reads back as kept.
 * (Every other row is as the proof found it.) One lookup of the written keys.
 */
export function mirrored(
  job: FolderJob,
  side: Side,
  before: ReadonlyMap<string, StateRow>,
  after: ReadonlyMap<string, StateRow>,
): boolean {
  const written = job.states[side].keysWritten(job.names[side]);
  if (written === null) return false;
  for (const k of written) if (!before.has(k) && !after.has(k)) return false;
  const actual = new Map(
    job.states[side].rowsWhere(job.names[side], "key", [...written]).map((r) => [r.key, r]),
  );
  for (const k of written) {
    const a = actual.get(k);
    const e = after.get(k);
    if (a === undefined || e === undefined) {
      if (a !== e) return false;
    } else if (a.pairId !== e.pairId || !sameFlags(a.flags, e.flags)) return false;
  }
  // A row kept in hand as changed that the state never wrote would be carried wrongly too.
  for (const [k, r] of after) if (before.get(k) !== r && !written.has(k)) return false;
  for (const k of before.keys()) if (!after.has(k) && !written.has(k)) return false;
  return true;
}

/**
 * Step 8 on the quiet-side path: each store's fresh print against its state's print carried
 * forward from the proof, and the pairs' prints of both states against each other, with every
 * pairId this run wrote on the left found once there. All equal: no drift, exactly as
 * agreeByPrints() decides it from every row. Otherwise the full comparison names the drift.
 */
async function verifyQuiet(
  job: FolderJob,
  q: QuietListing,
  plan: Plan,
  before: Record<Side, Map<string, StateRow>>,
  after: Record<Side, Map<string, StateRow>>,
): Promise<{ drift: Drift[]; proof?: FolderProof; byPrints?: boolean }> {
  const { names, handles, states } = job;
  const written = sidesWritten(plan);
  const proofOf = (l: Print, r: Print, p: string): FolderProof => ({
    names,
    left: { identity: handles.left.identity, ...l },
    right: { identity: handles.right.identity, ...r },
    pairs: p,
  });
  const carried = (side: Side, start: string, keyOf: (r: StateRow) => string): string | undefined => {
    const print = ListingPrint.from(start);
    if (!print) return undefined;
    for (const r of before[side].values()) print.drop(keyOf(r), r.flags);
    for (const r of after[side].values()) print.add(keyOf(r), r.flags);
    return print.digest();
  };
  const pairsOf = (side: Side) => carried(side, q.proof.pairs, (r) => r.pairId);
  const pairs = pairsOf("left");
  // Every pairId of the left rows this run kept is found once in the left state. One a row had
  // under the same key before this run is: the proof found it once (a pairId twice on the left is
  // drift, and no proof follows drift), and rewriting that row leaves it once. So is one named
  // after its row's own key (pairIdFor: a pair first seen at that key on the left, as every copy
  // from the left makes): a key is one row of the folder and never names another message later
  // (an IMAP key holds its UIDVALIDITY, a Maildir key is a file's unique name), and a pair
  // re-linked under a new key keeps its pairId only once its old key is void. Only the other
  // pairIds this run gave a row could meet another row's, so only those are looked up (a scan of
  // the folder's rows, ~1 ms at 5,000; server-change runs need none).
  const newIds = new Set<string>();
  for (const r of after.left.values())
    if (before.left.get(r.key)?.pairId !== r.pairId && r.pairId !== pairIdFor("left", r.key))
      newIds.add(r.pairId);
  const agree =
    pairs !== undefined &&
    pairs === pairsOf("right") &&
    mirrored(job, "left", before.left, after.left) &&
    mirrored(job, "right", before.right, after.right) &&
    (newIds.size === 0 || states.left.rowsWhere(names.left, "pairId", [...newIds]).length === newIds.size);
  // A side not written since this run printed it in full stands as printed (as verify.ts reuses
  // such a listing). The changed side was read a second time for its changes; should another
  // client have changed it in between, the prints differ and the full comparison lists it afresh.
  const fresh = (side: Side) => (!written[side] ? Promise.resolve(q.printed[side]) : printOf(handles[side]));
  const [left, right] = agree ? await Promise.all([fresh("left"), fresh("right")]) : [undefined, undefined];
  if (
    pairs !== undefined &&
    left &&
    right &&
    left.fingerprint === carried("left", q.proof.left.fingerprint, (r) => r.key) &&
    right.fingerprint === carried("right", q.proof.right.fingerprint, (r) => r.key)
  ) {
    return { drift: [], proof: proofOf(left, right, pairs), byPrints: true };
  }
  // A difference: the full comparison of every row with fresh listings names it.
  const prints: Partial<Record<Side, Print>> = {};
  let pairsPrint: string | undefined;
  const drift = await verifyFolder({
    folder: names,
    handles,
    rows: { left: states.left.rows(names.left), right: states.right.rows(names.right) },
    minDate: 0,
    fingerprint: (s, fingerprint, count) => {
      prints[s] = { fingerprint, count };
    },
    pairsPrint: (p) => {
      pairsPrint = p;
    },
  });
  if (drift.length > 0 || !prints.left || !prints.right || pairsPrint === undefined) return { drift };
  return { drift, proof: proofOf(prints.left, prints.right, pairsPrint) };
}
