import type { Folder } from "../drivers/driver.js";
import {
  type Conflict,
  type ContentMatch,
  emptyPlan,
  type Plan,
  planSize,
  type Resolution,
  sidesWritten,
} from "../model/plan.js";
import type { FolderReport } from "../model/report.js";
import type { MessageMeta, Side } from "../model/types.js";
import type { SideState, StateRow } from "../state/side-state.js";
import { applyPlan, DOUBT, FLAGS, flushBoth } from "./apply.js";
import { matchByContent } from "./content-match.js";
import { detectChanges } from "./detect-changes.js";
import { digestOf } from "./digest.js";
import { checkGuards } from "./guards.js";
import { listAll, WINDOW_MARGIN_MS } from "./listing.js";
import { type ConflictPolicy, resolveConflict } from "./policy.js";
import { precheck } from "./precheck.js";
import { reconcile } from "./reconcile.js";

/**
 * One folder through steps 2–7 of a run (SYNC-MODEL.md): list both sides at once, pre-check the
 * states, detect changes, pair equal new messages, reconcile, run the guards, apply.
 * Reads happen before the plan; every write happens after it, in applyPlan.
 */
export interface FolderJob {
  names: Record<Side, string>;
  handles: Record<Side, Folder>;
  states: Record<Side, SideState>;
  /** Window start, ms (0: no maxage). */
  minDate: number;
  /** The run's clock, ms. */
  now: number;
  policy: ConflictPolicy;
  /** For policy `ask`: asks the user; absent when there is no terminal (then `ask` acts as `fail`). */
  ask?: (c: Conflict, folder: string) => Promise<Resolution>;
  maxDelete: number;
  force: boolean;
  dryRun: boolean;
  /** Re-pairing after the state was forgotten: a Message-ID unique on both sides is evidence enough. */
  resync?: boolean;
  report: FolderReport;
  /** Both stores can keep keywords (default true). */
  keywords?: boolean;
  /** Per side: list incrementally where the store supports it. */
  incremental?: Record<Side, boolean>;
  /** Called once this folder's listing is done (the next folder's may start). */
  onListed?: () => void;
  /** Quiet-side path: called once this folder's writes are recorded and flushed; only its verification is left. */
  onWritten?: () => void;
  onProgress?: (done: number, total: number) => void;
}

export interface FolderOutcome {
  plan: Plan;
  /** Pairs an open conflict holds apart: verification expects them to differ. */
  held: Set<string>;
  /** The folder was stopped before any write. */
  stopped: boolean;
  /** Per side, a full listing of this run made after its last write: verification may reuse it. */
  listing?: Partial<Record<Side, Map<string, MessageMeta>>>;
  /** The state's rows, when this run recorded nothing: verification may reuse them. */
  rows?: Record<Side, StateRow[]>;
}

/** Step 3 of one folder, done ahead while the previous folder is still being applied. */
export interface Listed {
  /** The state's rows as read with the listing. */
  raw: Record<Side, StateRow[]>;
  listing: Record<Side, Map<string, MessageMeta>>;
  /** Per side: listed in full (not incrementally). */
  full: Record<Side, boolean>;
}

/** Checks both folders' identity and lists both sides at once (SYNC-MODEL.md step 3). */
export async function listFolder(job: FolderJob): Promise<Listed> {
  const { names, handles, states, report } = job;
  for (const side of ["left", "right"] as const) {
    const known = states[side].folder(names[side]);
    if (known && known.identity !== handles[side].identity) {
      // Every key of this side is void (IMAP UIDVALIDITY changed). Forget them; the pre-check then
      // re-links each pair by content where the evidence holds, and stops the folder where it does not.
      for (const row of states[side].rows(names[side])) states[side].deleteMessage(names[side], row.key);
      report.mended.push(
        `${side} identity changed from ${known.identity} to ${handles[side].identity}: re-pairing by content`,
      );
    }
  }
  const mask = maskFor(job);
  const raw: Record<Side, StateRow[]> = {
    left: states.left.rows(names.left),
    right: states.right.rows(names.right),
  };
  const [leftList, rightList] = await Promise.all([
    listSide(job, "left", mask, raw.left),
    listSide(job, "right", mask, raw.right),
  ]);
  return {
    raw,
    listing: { left: leftList.listing, right: rightList.listing },
    full: { left: leftList.full, right: rightList.full },
  };
}

function maskFor(job: FolderJob): (f: string[]) => string[] {
  return job.keywords === false ? dropKeywords : identityMask;
}

/** Steps 2–7 of one folder; `listed` when the listing was done ahead (listFolder). */
export async function syncFolder(job: FolderJob, listed?: Listed): Promise<FolderOutcome> {
  const { names, handles, states, report } = job;
  const ahead = listed ?? (await listFolder(job));
  // The listing is done: the caller may start listing the next folder while this one is applied.
  job.onListed?.();
  const mask = maskFor(job);
  // The state's rows, read once; read again only after something recorded changes them.
  let raw = ahead.raw;
  const { listing, full } = ahead;
  settleFlagIntents(job, raw, listing);
  const pre = await precheck({
    folder: names,
    handles,
    states,
    rows: { left: maskRows(raw.left, mask), right: maskRows(raw.right, mask) },
    listing,
  });
  report.mended.push(...pre.mended);
  const empty: FolderOutcome = {
    plan: emptyPlan(),
    held: new Set(),
    stopped: true,
  };
  if (pre.problems.length > 0) {
    report.stops.push(...pre.problems.map((message) => ({ guard: "precheck", message })));
    return empty;
  }
  await dropLateDuplicates(job, listing);
  if (pre.mended.length > 0)
    raw = { left: states.left.rows(names.left), right: states.right.rows(names.right) };
  const rows: Record<Side, StateRow[]> = { left: maskRows(raw.left, mask), right: maskRows(raw.right, mask) };
  const left = detectChanges(rows.left, listing.left.values(), job.minDate);
  const right = detectChanges(rows.right, listing.right.values(), job.minDate);
  const matches = await matchByContent(handles.left, handles.right, left.added, right.added, {
    trustMessageId: job.resync === true,
  });
  noteInterruptedCopies(job, matches);

  // Policy `ask` needs the user's answers, but reconciliation is pure: plan once to find the
  // conflicts, ask, then plan again with the answers.
  const answers = new Map<string, Resolution>();
  const decide = (c: Conflict): Resolution =>
    answers.get(c.pairId) ?? resolveConflict(c, job.policy === "ask" ? "fail" : job.policy);
  let plan = reconcile({ pairs: pre.pairs, left, right, matches, decide });
  if (job.policy === "ask" && job.ask && plan.conflicts.length > 0) {
    for (const c of plan.conflicts) answers.set(c.pairId, await job.ask(c, names.left));
    plan = reconcile({ pairs: pre.pairs, left, right, matches, decide });
  }
  report.conflicts.push(...plan.conflicts.map((c) => ({ pairId: c.pairId, text: c.text })));
  const held = new Set(plan.conflicts.map((c) => c.pairId));

  const inWindow = (r: StateRow) => r.date >= job.minDate;
  const listedInWindow = (m: Map<string, MessageMeta>) => {
    let n = 0;
    // A known message may come without a date (NaN): without a window, every message counts.
    for (const x of m.values()) if (!(x.date < job.minDate)) n++;
    return n;
  };
  const stops = checkGuards({
    folder: names.left,
    plan,
    stateCount: { left: rows.left.filter(inWindow).length, right: rows.right.filter(inWindow).length },
    listedCount: { left: listedInWindow(listing.left), right: listedInWindow(listing.right) },
    maxDelete: job.maxDelete,
  });
  if (stops.length > 0 && !job.force) {
    report.stops.push(...stops.map((s) => ({ guard: s.guard, message: s.message })));
    return { ...empty, plan };
  }
  if (job.dryRun) return { plan, held, stopped: false };
  const written = sidesWritten(plan);

  const total = plan.copies.length;
  // applyPlan mirrors every row it records into these maps: afterwards they are the state's rows.
  const current: Record<Side, Map<string, StateRow>> = {
    left: new Map(rows.left.map((r) => [r.key, r])),
    right: new Map(rows.right.map((r) => [r.key, r])),
  };
  await applyPlan(plan, {
    folder: names,
    handles,
    states,
    pairs: pre.pairs,
    rows: current,
    report,
    now: job.now,
    onProgress: job.onProgress ? (done) => job.onProgress?.(done, total) : undefined,
  });
  await recordSettled(job, plan);
  // A side listed in full this run and not written since: that listing is as fresh as a second
  // one would be, so verification uses it instead of listing that side again.
  const reuse: Partial<Record<Side, Map<string, MessageMeta>>> = {};
  for (const side of ["left", "right"] as const)
    if (full[side] && !written[side]) reuse[side] = listing[side];
  // Nothing recorded at all: the rows read at the start are still the state. Otherwise, without a
  // mask, the rows as applyPlan left them are (a second read of 5,000 rows costs ~10 ms a side).
  const unchanged = planSize(plan) === 0 && report.mended.length === 0;
  const after =
    mask === identityMask
      ? { left: [...current.left.values()], right: [...current.right.values()] }
      : undefined;
  return { plan, held, stopped: false, listing: reuse, rows: unchanged ? raw : after };
}

/**
 * After applyPlan: the folder's copy and flag intents are closed when everything settled, the
 * markers recorded, and everything flushed (the stores' writes first).
 */
export async function recordSettled(job: FolderJob, plan: Plan): Promise<void> {
  const { names, handles, states, report } = job;
  const settled = plan.conflicts.length === 0 && report.errors.length === 0;
  if (settled) {
    for (const side of ["left", "right"] as const)
      for (const i of states[side].intents(names[side]))
        if (!i.pairId.startsWith(DOUBT)) states[side].deleteIntent(names[side], i.pairId);
  }
  // The marker may advance only when every change up to it was carried out: a held conflict or a
  // failed write must be seen again by the next run, which an incremental listing would skip.
  for (const side of ["left", "right"] as const) {
    const h = handles[side];
    states[side].putFolder({
      name: names[side],
      identity: h.identity,
      uidNext: settled ? (h.marker.uidNext ?? null) : null,
      highestModseq: settled ? (h.marker.highestModseq ?? null) : null,
      count: h.marker.count ?? null,
      minDate: job.minDate,
    });
  }
  // One flush for everything applyPlan left recorded but unflushed: the stores' writes first.
  await flushBoth({ handles, states }, "right");
}

/**
 * Flags are written after a FLAGS intent names the flags the message is to have. One still open
 * belongs to a run cut off between the store write and its record: where the message now has
 * exactly those flags, they are tandem's own write and are recorded as such (otherwise the next
 * run would take them for the user's change, and carry a change back or see a conflict that none
 * made). Where it has other flags, the listing is the truth. Either way the intent is done.
 */
function settleFlagIntents(
  job: FolderJob,
  raw: Record<Side, StateRow[]>,
  listing: Record<Side, Map<string, MessageMeta>>,
): void {
  const intents: Record<Side, Map<string, string>> = { left: new Map(), right: new Map() };
  /** Pairs whose plan wrote both sides (intent date 1). */
  const both = new Set<string>();
  for (const side of ["left", "right"] as const)
    for (const i of job.states[side].intents(job.names[side]))
      if (i.pairId.startsWith(FLAGS)) {
        intents[side].set(i.pairId.slice(FLAGS.length), i.sourceKey);
        if (i.date === 1) both.add(i.pairId.slice(FLAGS.length));
      }
  if (intents.left.size === 0 && intents.right.size === 0) return;
  const index: Record<Side, Map<string, number>> = {
    left: new Map(raw.left.map((r, i) => [r.pairId, i])),
    right: new Map(raw.right.map((r, i) => [r.pairId, i])),
  };
  const record = (side: Side, pairId: string, flags: string): boolean => {
    const at = index[side].get(pairId);
    const row = at === undefined ? undefined : raw[side][at];
    if (!row || row.flags.join(" ") === flags) return false;
    const fixed = { ...row, flags: flags === "" ? [] : flags.split(" ") };
    raw[side][at!] = fixed;
    if (!job.dryRun) job.states[side].putMessage(fixed);
    return true;
  };
  // A pair's intents name the flags the plan agreed on. Only when every side that was to be
  // written has them now did the whole change happen: then both sides record them. If a write is
  // missing, nothing is recorded: the side that took its flags shows them as its change, and the
  // next plan carries them on, as the interrupted one meant to.
  let mended = 0;
  const pairs = new Set([...intents.left.keys(), ...intents.right.keys()]);
  for (const pairId of pairs) {
    let flags: string | undefined;
    // Both sides were to be written but one intent is gone (a cut between the two journals):
    // whether that write landed is unknown, so nothing is recorded.
    let complete = !both.has(pairId) || (intents.left.has(pairId) && intents.right.has(pairId));
    for (const side of ["left", "right"] as const) {
      const want = intents[side].get(pairId);
      if (want === undefined) continue;
      flags = want;
      const at = index[side].get(pairId);
      const row = at === undefined ? undefined : raw[side][at];
      const now = row ? listing[side].get(row.key) : undefined;
      if (!now || now.flags.join(" ") !== want) complete = false;
    }
    if (complete && flags !== undefined)
      for (const side of ["left", "right"] as const) if (record(side, pairId, flags)) mended++;
    if (!job.dryRun)
      for (const side of ["left", "right"] as const)
        if (intents[side].has(pairId)) job.states[side].deleteIntent(job.names[side], `${FLAGS}${pairId}`);
  }
  if (mended > 0)
    job.report.mended.push(`recorded ${mended} flag record(s) that an interrupted run had left out`);
}

/**
 * A copy whose append failed left a DOUBT intent: its bytes may have reached the store after the
 * run gave up on it, and after a retry had already copied the message again. Such a late arrival
 * is an unrecorded message on the target with the source's arrival date and the very content of
 * the pair the retry made; it is our own duplicate and is removed (evidence: intent + digest).
 * Doubts are kept a week, long enough for any stuck connection to have ended.
 */
async function dropLateDuplicates(
  job: FolderJob,
  listing: Record<Side, Map<string, MessageMeta>>,
): Promise<void> {
  for (const to of ["left", "right"] as const) {
    const from = to === "left" ? "right" : "left";
    const doubts = job.states[to].intents(job.names[to]).filter((i) => i.pairId.startsWith(DOUBT));
    if (doubts.length === 0) continue;
    const recorded = new Set(job.states[to].rows(job.names[to]).map((r) => r.key));
    const sourceRows = new Map(job.states[from].rows(job.names[from]).map((r) => [r.key, r]));
    const dupes: string[] = [];
    for (const doubt of doubts) {
      const paired = sourceRows.get(doubt.sourceKey);
      if (paired && paired.digest !== "") {
        for (const m of listing[to].values()) {
          if (recorded.has(m.key) || Math.abs(m.date - doubt.date) > 2000 || dupes.includes(m.key)) continue;
          if ((await digestOf(job.handles[to].read(m.key))) === paired.digest) dupes.push(m.key);
        }
      }
      const since = Number(doubt.pairId.slice(DOUBT.length).split(":")[0]);
      if (!job.dryRun && !(job.now - since <= 7 * 86_400_000))
        job.states[to].deleteIntent(job.names[to], doubt.pairId);
    }
    if (dupes.length === 0 || job.dryRun) continue;
    await job.handles[to].remove(dupes);
    for (const k of dupes) listing[to].delete(k);
    job.report.mended.push(
      `removed ${dupes.length} late duplicate(s) on ${to} of copies whose append had failed`,
    );
  }
}

/**
 * Intents are written before every copy (apply.ts). One still open here belongs to a copy an
 * interrupted run started: if content matching paired its source with a new message on the
 * target, that message is the copy, found again instead of made twice. Reported, then cleared.
 */
function noteInterruptedCopies(job: FolderJob, matches: readonly ContentMatch[]): void {
  const matched: Record<Side, Set<string>> = {
    left: new Set(matches.map((m) => m.left.key)),
    right: new Set(matches.map((m) => m.right.key)),
  };
  for (const to of ["left", "right"] as const) {
    const from = to === "left" ? "right" : "left";
    let found = 0;
    for (const intent of job.states[to].intents(job.names[to]))
      if (
        !intent.pairId.startsWith(DOUBT) &&
        !intent.pairId.startsWith(FLAGS) &&
        matched[from].has(intent.sourceKey)
      )
        found++;
    if (found > 0)
      job.report.mended.push(`found ${found} copy(ies) to ${to} that an interrupted run had made`);
  }
}

/**
 * Step 3 for one side: incremental where the store allows it and the state holds a marker for the
 * same folder identity (the state's rows patched with what changed since), a full listing otherwise.
 */
export async function listSide(
  job: FolderJob,
  side: Side,
  mask: (f: string[]) => string[],
  rows: readonly StateRow[],
): Promise<{ listing: Map<string, MessageMeta>; full: boolean }> {
  const h = job.handles[side];
  const name = job.names[side];
  const known = job.states[side].folder(name);
  if (
    h.listChanges &&
    job.incremental?.[side] &&
    known &&
    known.identity === h.identity &&
    known.uidNext !== null &&
    known.highestModseq !== null &&
    known.minDate <= job.minDate
  ) {
    const changes = await h.listChanges(
      { uidNext: known.uidNext, highestModseq: known.highestModseq, count: known.count ?? undefined },
      job.minDate > 0 ? { minDate: job.minDate - WINDOW_MARGIN_MS } : {},
      rows.map((r) => r.key),
    );
    const listing = new Map<string, MessageMeta>();
    // A state row has every field of a MessageMeta: without a mask it stands for itself (nothing
    // mutates listing entries), which spares an object per message.
    if (mask === identityMask) for (const r of rows) listing.set(r.key, r);
    else
      for (const r of rows)
        listing.set(r.key, { key: r.key, flags: mask(r.flags), size: r.size, date: r.date });
    for (const k of changes.vanished) listing.delete(k);
    for (const m of changes.changed) listing.set(m.key, { ...m, flags: mask(m.flags) });
    return { listing, full: false };
  }
  const listing = await listAll(h, job.minDate, new Set(rows.map((r) => r.key)));
  if (mask !== identityMask) for (const m of listing.values()) m.flags = mask(m.flags);
  return { listing, full: true };
}

const identityMask = (f: string[]): string[] => f;

/** Keywords are not synced when either side cannot store them: they are masked out on both sides. */
function dropKeywords(flags: string[]): string[] {
  return flags.filter((f) => f.startsWith("\\"));
}

function maskRows(rows: StateRow[], mask: (f: string[]) => string[]): StateRow[] {
  // Without a mask the rows are used as they are: a copy of 100,000 rows costs more than the sync.
  return mask === identityMask ? rows : rows.map((r) => ({ ...r, flags: mask(r.flags) }));
}
