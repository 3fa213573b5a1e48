import { join } from "node:path";
import type { AccountConfig } from "../config/config.js";
import {
  DriverError,
  type Folder,
  type FolderInfo,
  type FolderPrint,
  type Store,
} from "../drivers/driver.js";
import type { Conflict, Resolution } from "../model/plan.js";
import { type AccountReport, type FolderReport, newFolderReport } from "../model/report.js";
import { otherSide, type Side } from "../model/types.js";
import { type AccountLock, lockAccount } from "../state/lock.js";
import { SideState, StateError, type StateRow } from "../state/side-state.js";
import { writeStatus } from "../state/status-file.js";
import { canonicalFolder, FolderNames, folderMatcher } from "./folder-map.js";
import { listAll, type Print, printOf, samePrint } from "./listing.js";
import { exitCodeFor } from "./outcome.js";
import { type FolderProof, type Proof, readProof, removeProof, type SideProof, writeProof } from "./proof.js";
import { listQuiet, type QuietListing, syncQuiet } from "./quiet.js";
import { type FolderJob, type FolderOutcome, type Listed, listFolder, syncFolder } from "./sync-folder.js";
import { verifyFolder } from "./verify.js";

/**
 * One run of one account, SYNC-MODEL.md steps 1–9: lock, load both states, open both stores,
 * settle the folder list, sync each folder, verify it, save both states.
 * Invariant: states are saved only at the end; in between, the journals carry every confirmed step.
 */
export interface RunOptions {
  dryRun: boolean;
  force: boolean;
  /** Forget both states of the selected folders and re-pair them by content. */
  resync: boolean;
  /** Only these folders (left names). */
  folders?: string[];
  maxage?: number;
  policy?: AccountConfig["conflict"];
  /** Verify only: no sync step. */
  verifyOnly?: boolean;
  deep?: boolean;
  now: number;
  openStore: (side: Side) => Promise<Store>;
  ask?: (c: Conflict, folder: string) => Promise<Resolution>;
  log: (msg: string) => void;
  /** Tests shorten the retry backoff with this factor. */
  retryDelayScale?: number;
  progress?: (folder: string, done: number, total: number) => void;
}

export async function runAccount(account: AccountConfig, opts: RunOptions): Promise<AccountReport> {
  const report: AccountReport = {
    account: account.name,
    dryRun: opts.dryRun,
    folders: [],
    notes: [],
    exitCode: 0,
  };
  const dir = join(account.stateDir, account.name);
  let lock: AccountLock | undefined;
  const stores: Partial<Record<Side, Store>> = {};
  const states: Partial<Record<Side, SideState>> = {};
  /** Both states, opened once: while the proof path still waits, once it is known to sync. */
  let ahead: Promise<[SideState, SideState]> | undefined;
  try {
    lock = opts.dryRun ? undefined : lockAccount(dir, account.name);
    const readOnly = opts.dryRun || opts.verifyOnly === true;
    const openAhead = () => {
      if (ahead) return;
      // Before the first state write: a proof never outlives the states it vouches for.
      if (!readOnly) removeProof(dir);
      ahead = (async (): Promise<[SideState, SideState]> => {
        const l = await openState(dir, "left", readOnly, opts, report);
        try {
          return [l, await openState(dir, "right", readOnly, opts, report)];
        } catch (err) {
          l.close();
          throw err;
        }
      })();
      // Awaited by the run, or by its cleanup when it failed first: never an unhandled rejection.
      ahead.catch(() => {});
    };
    /** Folders the proof showed unchanged: the ordinary path leaves them as they are. */
    let unchanged = new Map<string, FolderProof>();
    /** Prints the proof path made of folders that differ: the quiet-side path takes them as they are. */
    const printed = new Map<string, Partial<Record<Side, Print>>>();
    const proof = mayProve(account, opts) ? readProof(dir, account) : undefined;
    if (proof) {
      // Each store starts printing the proof's folders the moment it is open, while the other one
      // may still be logging in (a Maildir on a worker thread, IMAP pipelined: printFolders).
      const batch: Batch = {};
      // Once a print differs from the proof the run will sync, and once one side's prints are all
      // in, the main thread mostly waits for the other's: the states are opened then (server
      // changes at 100,000 messages: the IMAP side's last prints came ~130 ms after the Maildir's,
      // and the states took ~45 ms to open after them). Sooner, they held up the main thread's
      // share of the prints instead.
      /** Per side, the batch's prints not in yet. */
      const unprinted: Partial<Record<Side, number>> = {};
      let differs = false;
      const open = await openStores(opts, stores, (side, store) => {
        const names = [...new Set(Object.values(proof.folders).map((f) => f.names[side]))];
        const messages = Object.values(proof.folders).reduce((n, f) => n + f[side].count, 0);
        batch[side] = store.printFolders?.(names, { messages });
        const expected = new Map<string, SideProof | undefined>();
        // A name two proof folders share (never in a valid proof) tells nothing.
        for (const f of Object.values(proof.folders))
          expected.set(f.names[side], expected.has(f.names[side]) ? undefined : f[side]);
        unprinted[side] = batch[side]?.size ?? 0;
        for (const [name, print] of batch[side] ?? []) {
          void print.then(
            (got) => {
              const want = expected.get(name);
              if (got && want && (got.identity !== want.identity || !samePrint(got, want))) differs = true;
              unprinted[side]!--;
              if (differs && (unprinted.left === 0 || unprinted.right === 0)) openAhead();
            },
            () => {},
          );
        }
      });
      const proven = await proveUnchanged(account, opts, open, proof, report, printed, batch);
      if (proven === "all") {
        report.proven = true;
        writeStatus(dir, { lastRun: new Date(opts.now).toISOString(), report });
        return finish(report);
      }
      report.folders = [];
      unchanged = proven;
      // A side whose every folder's other side printed as the proof has nothing to take in: its
      // store will not print again (a Maildir's kept print worker, ~11 MB, goes at once).
      for (const side of ["left", "right"] as const) {
        const other = otherSide(side);
        const fed = Object.entries(proof.folders).some(([name, p]) => {
          if (proven.has(name)) return false;
          const got = printed.get(name)?.[other];
          return got === undefined || !samePrint(got, p[other]);
        });
        if (!fed) open[side].printsDone?.();
      }
    }
    openAhead();
    [states.left, states.right] = await ahead!;
    const { left, right } =
      stores.left && stores.right
        ? { left: stores.left, right: stores.right }
        : await openStores(opts, stores);
    const proofs = await syncFolders(
      account,
      opts,
      { left, right },
      { left: states.left, right: states.right },
      report,
      unchanged,
      proof,
      printed,
    );
    if (!readOnly) {
      states.left.save();
      states.right.save();
      writeStatus(dir, { lastRun: new Date(opts.now).toISOString(), report });
      if (proofs && mayProve(account, opts)) writeProof(dir, account, proofs);
    }
  } catch (err) {
    report.failure = err instanceof Error ? err.message : String(err);
    if (!(err instanceof DriverError) && !(err instanceof Error && /^(State|LockBusy)Error$/.test(err.name)))
      throw err;
  } finally {
    await Promise.allSettled([stores.left?.close(), stores.right?.close()]);
    // Opened ahead by a run that failed before it took them: closed all the same.
    if (ahead && !states.left) {
      const opened = await ahead.catch(() => undefined);
      if (opened) [states.left, states.right] = opened;
    }
    states.left?.close();
    states.right?.close();
    lock?.release();
  }
  return finish(report);
}

function finish(report: AccountReport): AccountReport {
  report.exitCode = exitCodeFor(report);
  return report;
}

/** A run whose result a proof can stand for: a whole, plain sync without a window. */
function mayProve(account: AccountConfig, opts: RunOptions): boolean {
  return (
    !opts.dryRun &&
    !opts.verifyOnly &&
    !opts.resync &&
    !opts.deep &&
    opts.folders === undefined &&
    !(opts.maxage ?? account.maxage)
  );
}

/**
 * The fast path of a run where nothing changed (proof.ts): every folder listed in full on both
 * sides, keys and flags, and each listing's fingerprint held against the last clean run's. All
 * equal: the states, untouched since, are exactly verified again, and there is nothing to do.
 * Any difference (a folder, an identity, a listing): false, and the run takes the ordinary path.
 */
async function proveUnchanged(
  account: AccountConfig,
  opts: RunOptions,
  stores: Record<Side, Store>,
  proof: Proof,
  report: AccountReport,
  printed: Map<string, Partial<Record<Side, Print>>>,
  /** Each store's prints of the proof's folders, started as it opened (Store.printFolders). */
  batch: Batch,
): Promise<"all" | Map<string, FolderProof>> {
  const proven = new Map<string, FolderProof>();
  try {
    const [lf, rf] = await Promise.all([stores.left.listFolders(), stores.right.listFolders()]);
    const known: Record<Side, Set<string>> = { left: new Set(), right: new Set() };
    for (const p of Object.values(proof.folders)) {
      known.left.add(p.names.left);
      known.right.add(p.names.right);
    }
    const every = folderEntries(account, opts, lf, rf, known);
    const entries = every.filter((e) => {
      const p = proof.folders[e.name];
      return p && e.present.left && e.present.right && p.names.right === e.sideName.right;
    });
    const whole = entries.length === every.length && entries.length === Object.keys(proof.folders).length;
    // The workers below compare as the batches' prints come, and print themselves what a batch
    // does not hold or could not tell.
    const printSide = async (side: Side, name: string): Promise<FolderPrint | undefined> => {
      const batched = await batch[side]?.get(name);
      if (batched) return batched;
      const h = await stores[side].openFolder(name, { lookOnly: true });
      try {
        return h.listFlags ? { identity: h.identity, ...(await printOf(h)) } : undefined;
      } finally {
        await h.close();
      }
    };
    // Several folders at once: the server answers one while the Maildir of another is read and a
    // third is fingerprinted. The first difference stops every worker.
    const listBoth = async (e: FolderEntry): Promise<boolean> => {
      const p = proof.folders[e.name]!;
      // Both settled before anything is thrown: no side is still open when the worker moves on.
      const [l, r] = await Promise.allSettled([
        printSide("left", e.sideName.left),
        printSide("right", e.sideName.right),
      ]);
      if (l.status === "rejected") throw l.reason;
      if (r.status === "rejected") throw r.reason;
      const [a, b] = [l.value, r.value];
      if (!a || !b || a.identity !== p.left.identity || b.identity !== p.right.identity) return false;
      const same = samePrint(a, p.left) && samePrint(b, p.right);
      if (!same) printed.set(e.name, { left: a, right: b });
      return same;
    };
    let next = 0;
    let differ = 0;
    let failure: unknown;
    // A folder whose listings match is proven on its own; when the first few all differ, the
    // change is everywhere and the rest is left to the ordinary path without listing it twice.
    const hopeless = () => differ >= 3 && proven.size === 0;
    // Workers never reject: every one has settled (and closed its folders) before the ordinary
    // path may use the stores.
    const worker = async () => {
      while (failure === undefined && !hopeless() && next < entries.length) {
        const e = entries[next++]!;
        try {
          if (await listBoth(e)) proven.set(e.name, proof.folders[e.name]!);
          else differ++;
        } catch (err) {
          failure ??= err;
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    // The batch may run on after the workers stopped: it holds the store's connections until done.
    // Its prints of the folders left unproven are kept for the quiet-side path, as the workers'.
    for (const side of ["left", "right"] as const) {
      if (!batch[side]) continue;
      await Promise.allSettled(batch[side].values());
      for (const e of entries) {
        if (proven.has(e.name) || printed.get(e.name)?.[side]) continue;
        const got = await batch[side].get(e.sideName[side])?.catch(() => undefined);
        if (got && got.identity === proof.folders[e.name]![side].identity) {
          printed.set(e.name, {
            ...printed.get(e.name),
            [side]: { count: got.count, fingerprint: got.fingerprint },
          });
        }
      }
    }
    if (failure !== undefined) {
      if (!(failure instanceof DriverError)) throw failure;
      return new Map();
    }
    if (!whole || proven.size < entries.length) return proven;
    for (const e of entries) {
      e.fr.verified = true;
      e.fr.proven = true;
      report.folders.push(e.fr);
    }
    return "all";
  } catch (err) {
    // Whatever failed here, the ordinary path meets it again and handles it in its own way.
    if (err instanceof DriverError) return new Map();
    throw err;
  }
}

/**
 * Opens both stores at once. Each is kept in `stores` the moment it opens, so that the caller's
 * cleanup closes it when the other fails; `opened` runs on each as it opens.
 */
async function openStores(
  opts: RunOptions,
  stores: Partial<Record<Side, Store>>,
  opened?: (side: Side, store: Store) => void,
): Promise<Record<Side, Store>> {
  const open = async (side: Side): Promise<Store> => {
    const store = await opts.openStore(side);
    stores[side] = store;
    opened?.(side, store);
    return store;
  };
  const [l, r] = await Promise.allSettled([open("left"), open("right")]);
  if (l.status === "rejected") throw l.reason;
  if (r.status === "rejected") throw r.reason;
  return { left: l.value, right: r.value };
}

/** Each store's prints of folders by their name on that side (Store.printFolders). */
type Batch = Partial<Record<Side, Map<string, Promise<FolderPrint | undefined>>>>;

/** Opens a side's state; with --resync, a damaged one is moved aside and rebuilt from both sides. */
async function openState(
  dir: string,
  side: Side,
  readOnly: boolean,
  opts: RunOptions,
  report: AccountReport,
): Promise<SideState> {
  try {
    return await SideState.open(dir, side, { readOnly });
  } catch (err) {
    if (!(err instanceof StateError) || !opts.resync || readOnly) throw err;
    const aside = SideState.moveAside(dir, side, opts.now);
    report.notes.push(`${err.message.split(":")[0]}: moved aside to ${aside}; rebuilding from both sides`);
    return await SideState.open(dir, side);
  }
}

/** What every folder of one run shares. */
interface RunCtx {
  account: AccountConfig;
  opts: RunOptions;
  stores: Record<Side, Store>;
  states: Record<Side, SideState>;
  /** Window start, ms (0: no maxage). */
  minDate: number;
  /** Per folder (left name): the fingerprints of its verification listings, once it settled clean. */
  proofs: Record<string, FolderProof>;
  /** Folders settled without a sync (gone from both sides): they need no proof. */
  proofless: Set<string>;
  /** The last clean run's proof, for the quiet-side path (quiet.ts); it vouches for untouched folders only. */
  lastProof?: Proof;
  /** Folders whose sync has begun this run: their rows may differ from the proof's. */
  touched: Set<string>;
  /** Prints of folders the proof path found changed (see runAccount). */
  printed: Map<string, Partial<Record<Side, Print>>>;
  /** Settles when the folder writing now has recorded and flushed its writes (writeTurn()). */
  writer: Promise<void>;
}

/** One folder of a run: its name on each side, its report, and where it exists and is known. */
interface FolderEntry {
  name: string;
  sideName: Record<Side, string>;
  fr: FolderReport;
  present: Record<Side, boolean>;
  known: Record<Side, boolean>;
}

/** Syncs and verifies every folder; returns the proofs when every folder ended clean. */
async function syncFolders(
  account: AccountConfig,
  opts: RunOptions,
  stores: Record<Side, Store>,
  states: Record<Side, SideState>,
  report: AccountReport,
  unchanged: Map<string, FolderProof>,
  lastProof?: Proof,
  printed = new Map<string, Partial<Record<Side, Print>>>(),
): Promise<Record<string, FolderProof> | undefined> {
  const [lf, rf] = await Promise.all([stores.left.listFolders(), stores.right.listFolders()]);
  const known: Record<Side, Set<string>> = {
    left: new Set(states.left.folders().map((f) => f.name)),
    right: new Set(states.right.folders().map((f) => f.name)),
  };
  const minDate =
    (opts.maxage ?? account.maxage) ? opts.now - (opts.maxage ?? account.maxage ?? 0) * 86_400_000 : 0;
  const listed = folderEntries(account, opts, lf, rf, known);
  for (const e of listed) report.folders.push(e.fr);
  // Folders a store can open cheaply now first (IMAP: still selected from the proof's print
  // batch), before the connection that holds one is taken for another folder.
  const warm = (e: FolderEntry) =>
    stores.left.warm?.(e.sideName.left) === true || stores.right.warm?.(e.sideName.right) === true;
  const entries = [...listed.filter(warm), ...listed.filter((e) => !warm(e))];
  const run: RunCtx = {
    account,
    opts,
    stores,
    states,
    minDate,
    proofs: {},
    proofless: new Set(),
    lastProof,
    touched: new Set(),
    printed,
    writer: Promise.resolve(),
  };
  type Prepared =
    | { skip: true; proven?: FolderProof }
    | { skip?: false; opened?: Opened; error?: unknown; settleError?: unknown };
  // Everything up to the listing of a folder; started for the next folder as soon as the current
  // one is listed, so that applying one folder overlaps with listing the next (SYNC-MODEL.md step 3).
  const prepare = async (e: FolderEntry): Promise<Prepared> => {
    // Listed in full this run and matching the last clean run's prints, with both states
    // untouched since then: verified as it stands, nothing to sync (proof.ts).
    const proven = unchanged.get(e.name);
    if (proven && e.present.left && e.present.right) return { skip: true, proven };
    try {
      if (await settleFolderPresence(run, e)) return { skip: true };
      if (opts.resync && !opts.dryRun)
        for (const s of ["left", "right"] as const) states[s].deleteFolder(e.sideName[s]);
    } catch (err) {
      return { settleError: err };
    }
    try {
      return { opened: await openAndList(run, e) };
    } catch (err) {
      return { error: err };
    }
  };
  let pending: Promise<Prepared> | undefined = entries[0] ? prepare(entries[0]) : undefined;
  // A quiet-side folder's verification (read-only: its stores' fresh prints, its own state rows)
  // runs on while the next folder is listed and written; one such at a time. Writes stay one
  // folder at a time (writeTurn): a journal flush must never make durable the record of another
  // folder's store write that its own flush has not made durable yet. Server-change runs at
  // 100,000 messages: 0.863 -> 0.826 s (medians of 10 alternating runs).
  let verifying: Promise<void> | undefined;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const prepared: Prepared = await pending!;
    pending = undefined;
    // Once: a retry of this folder may come after the loop has taken the next folder's listing.
    let nextStarted = false;
    let task: Promise<void> | undefined;
    const startNext = () => {
      const next = entries[i + 1];
      if (nextStarted || !next) return;
      nextStarted = true;
      pending = prepare(next);
    };
    try {
      if (prepared.skip) {
        if (prepared.proven) {
          e.fr.verified = true;
          e.fr.proven = true;
          run.proofs[e.name] = prepared.proven;
        }
        // Settled without a sync (both gone, or removed on both sides): nothing left to prove.
        else if (e.fr.stops.length === 0 && e.fr.drift.length === 0) run.proofless.add(e.name);
        continue;
      }
      if (prepared.settleError !== undefined) throw prepared.settleError;
      let written!: () => void;
      const writesDone = new Promise<void>((resolve) => (written = resolve));
      task = withRetry(opts, e.name, (attempt) => {
        if (attempt === 0 && prepared.error !== undefined) throw prepared.error;
        const ahead = attempt === 0 ? prepared.opened : undefined;
        return syncOne(run, e, ahead, startNext, written);
      }).catch((err) => folderFailed(e, err));
      await Promise.race([writesDone, task]);
      await verifying;
      verifying = task;
    } catch (err) {
      // A store failure goes up only once nothing of this run is still running (this folder, the
      // previous folder's verification): the caller closes stores and states after it.
      await Promise.allSettled([task, verifying]);
      folderFailed(e, err);
    } finally {
      startNext();
    }
  }
  await verifying;
  // A proof only when every folder settled, verified and printed its listings.
  const clean = report.folders.every(
    (fr) =>
      fr.conflicts.length === 0 &&
      fr.errors.length === 0 &&
      fr.stops.length === 0 &&
      fr.drift.length === 0 &&
      (run.proofs[fr.folder] !== undefined || run.proofless.has(fr.folder)),
  );
  return clean ? run.proofs : undefined;
}

/**
 * One bad folder (a name the other side cannot hold, a folder that cannot be opened) must not stop
 * the account: its error is reported. A failure of the whole store does: it is thrown.
 */
function folderFailed(e: FolderEntry, err: unknown): void {
  if (err instanceof DriverError && err.scope !== "store") e.fr.errors.push(err.message);
  else throw err;
}

/**
 * Waits for the run's turn to write, and returns its release (idempotent). Turns are given in the
 * order they are asked for.
 */
async function writeTurn(run: RunCtx): Promise<() => void> {
  const before = run.writer;
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  run.writer = before.then(() => mine);
  await before;
  return release;
}

/** The folders of a run, in order: those that exist or are known on either side, as selected. */
function folderEntries(
  account: AccountConfig,
  opts: RunOptions,
  lf: FolderInfo[],
  rf: FolderInfo[],
  known: Record<Side, Set<string>>,
): FolderEntry[] {
  const names = new FolderNames(account.rename);
  const selected = folderMatcher(account.include, account.exclude);
  const only = opts.folders ? new Set(opts.folders.map(canonicalFolder)) : undefined;
  const exists: Record<Side, Set<string>> = {
    left: new Set(lf.filter((f) => !f.noselect).map((f) => canonicalFolder(f.name))),
    right: new Set(rf.filter((f) => !f.noselect).map((f) => canonicalFolder(names.left(f.name)))),
  };
  const knownOn: Record<Side, Set<string>> = {
    left: known.left,
    right: new Set([...known.right].map((n) => names.left(n))),
  };
  const all = [...new Set([...exists.left, ...exists.right, ...knownOn.left, ...knownOn.right])]
    .filter((n) => selected(n) && (!only || only.has(n)))
    .sort();
  return all.map((name) => {
    const rightName = names.right(name);
    return {
      name,
      sideName: { left: name, right: rightName },
      fr: newFolderReport(name, rightName),
      present: { left: exists.left.has(name), right: exists.right.has(name) },
      known: { left: knownOn.left.has(name), right: knownOn.right.has(name) },
    };
  });
}

/**
 * A folder on one side only: created on the other if it is new, removed on the other if it was
 * removed here and is empty there, reported otherwise. Returns true when the folder needs no sync.
 */
async function settleFolderPresence(run: RunCtx, e: FolderEntry): Promise<boolean> {
  const { opts, stores, states, minDate } = run;
  const { sideName, present, known, fr } = e;
  const writes = !opts.dryRun && !opts.verifyOnly;
  if (!present.left && !present.right) {
    if (writes) for (const s of ["left", "right"] as const) states[s].deleteFolder(sideName[s]);
    return true;
  }
  const missing = (["left", "right"] as const).find((s) => !present[s]);
  if (!missing) return false;
  const other = missing === "left" ? "right" : "left";
  if (known[missing] && !opts.force) {
    // It existed on `missing` at the last run, so it was removed there.
    const left = await countMessages(stores[other], sideName[other], 0);
    if (left === 0) {
      if (writes) {
        await stores[other].removeFolder(sideName[other]);
        for (const s of ["left", "right"] as const) states[s].deleteFolder(sideName[s]);
      }
      fr.removedFolder = other;
      return true;
    }
    fr.stops.push({
      guard: "folder-vanished",
      message: `Cannot sync folder "${fr.folder}": it was removed on ${missing} but still holds ${left} message(s) on ${other}; remove them or the folder on ${other}, or run with --force to create it again on ${missing} and copy them back`,
    });
    return true;
  }
  if (opts.verifyOnly) {
    fr.drift.push({ folder: fr.folder, side: missing, what: "folder missing" });
    return true;
  }
  if (opts.dryRun) {
    fr.created.push(missing);
    // Nothing to open on the missing side: everything inside the window would be copied over.
    fr.copied[missing] = await countMessages(stores[other], sideName[other], minDate);
    return true;
  }
  await stores[missing].createFolder(sideName[missing]);
  fr.created.push(missing);
  // Recreated after a removal (--force): the old pairs are void on both sides, so the messages
  // still on the other side count as new and are copied back.
  if (known[missing]) for (const s of ["left", "right"] as const) states[s].deleteFolder(sideName[s]);
  return false;
}

async function countMessages(store: Store, name: string, minDate: number): Promise<number> {
  const h = await store.openFolder(name);
  try {
    let n = 0;
    for (const m of (await listAll(h, minDate)).values()) if (m.date >= minDate) n++;
    return n;
  } finally {
    await h.close();
  }
}

/** Backoff before each retry of a folder after a retryable failure (a dropped connection). */
export const RETRY_DELAYS_MS = [1_000, 3_000, 9_000];

/**
 * A folder whose store failed in a way a retry can help (connection lost, timeout) is synced again
 * from its listing: the journals hold every confirmed step, so the retry resumes, it does not repeat.
 */
async function withRetry(
  opts: RunOptions,
  folder: string,
  fn: (attempt: number) => Promise<void>,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const delay = RETRY_DELAYS_MS[attempt];
      if (!(err instanceof DriverError) || !err.retryable || delay === undefined) throw err;
      opts.log(`${folder}: ${err.message}; retrying in ${delay / 1000} s`);
      await new Promise((r) =>
        setTimeout(r, opts.retryDelayScale === undefined ? delay : delay * opts.retryDelayScale),
      );
    }
  }
}

/** A folder pair opened on both sides, and listed unless the run only verifies. */
interface Opened {
  handles: Record<Side, Folder>;
  /** Both stores can keep keywords in this folder (as of opening it). */
  keywords: boolean;
  listed?: Listed;
  /** Listed for the quiet-side path instead (quiet.ts). */
  quiet?: QuietListing;
}

/** Opens a folder on both sides at once; if either fails, the other is closed again. */
async function openBoth(
  stores: Record<Side, Store>,
  names: Record<Side, string>,
  writes: Record<Side, boolean> = { left: false, right: false },
): Promise<Record<Side, Folder>> {
  const [l, r] = await Promise.allSettled([
    stores.left.openFolder(names.left, writes.left ? { writes: true } : undefined),
    stores.right.openFolder(names.right, writes.right ? { writes: true } : undefined),
  ]);
  if (l.status === "rejected" || r.status === "rejected") {
    if (l.status === "fulfilled") await l.value.close();
    if (r.status === "fulfilled") await r.value.close();
    throw l.status === "rejected" ? l.reason : (r as PromiseRejectedResult).reason;
  }
  return { left: l.value, right: r.value };
}

/**
 * The sides this run is likely to write in a folder (a hint for Store.openFolder): those whose
 * other side the proof path printed unlike the last clean run, so that it has changes to carry.
 */
function writesExpected(run: RunCtx, e: FolderEntry): Record<Side, boolean> {
  const proof = run.lastProof?.folders[e.name];
  const printed = run.printed.get(e.name);
  const changed = (side: Side) => {
    const p = printed?.[side];
    return proof !== undefined && p !== undefined && !samePrint(p, proof[side]);
  };
  const writes = !run.opts.dryRun && !run.opts.verifyOnly;
  return { left: writes && changed("right"), right: writes && changed("left") };
}

async function openAndList(run: RunCtx, e: FolderEntry): Promise<Opened> {
  const { opts, stores } = run;
  const opened: Opened = {
    handles: await openBoth(stores, e.sideName, writesExpected(run, e)),
    keywords: stores.left.caps.keywords && stores.right.caps.keywords,
  };
  if (opts.verifyOnly) return opened;
  try {
    const proof = run.touched.has(e.name) ? undefined : run.lastProof?.folders[e.name];
    if (proof && e.known.left && e.known.right) {
      opened.quiet = await listQuiet(folderJob(run, e, opened), proof, run.printed.get(e.name));
      if (opened.quiet) return opened;
    }
    opened.listed = await listFolder(folderJob(run, e, opened));
    return opened;
  } catch (err) {
    await Promise.allSettled([opened.handles.left.close(), opened.handles.right.close()]);
    throw err;
  }
}

function folderJob(
  run: RunCtx,
  e: FolderEntry,
  opened: Opened,
  onListed?: () => void,
  onWritten?: () => void,
): FolderJob {
  const { account, opts, stores, states, minDate } = run;
  const { sideName, fr } = e;
  return {
    names: sideName,
    handles: opened.handles,
    states,
    minDate,
    now: opts.now,
    policy: opts.policy ?? account.conflict,
    ask: opts.ask,
    maxDelete: account.maxDelete,
    force: opts.force,
    dryRun: opts.dryRun,
    resync: opts.resync,
    report: fr,
    keywords: opened.keywords,
    incremental: {
      left: stores.left.caps.incremental && !opts.resync,
      right: stores.right.caps.incremental && !opts.resync,
    },
    onListed,
    onWritten,
    onProgress: opts.progress ? (done, total) => opts.progress?.(sideName.left, done, total) : undefined,
  };
}

async function syncOne(
  run: RunCtx,
  e: FolderEntry,
  ahead: Opened | undefined,
  onListed: () => void,
  written: () => void,
): Promise<void> {
  const { opts, states, minDate } = run;
  const { sideName, fr } = e;
  let opened: Opened | undefined = ahead;
  // The run's one writer, until this folder's writes are recorded and flushed (see syncFolders).
  const release = await writeTurn(run);
  const onWritten = () => {
    release();
    written();
  };
  try {
    opened ??= await openAndList(run, e);
    // From here on this folder's rows may change: a retry must not take the proof for them.
    run.touched.add(e.name);
    const h = opened.handles;
    if (opened.quiet) {
      const job = folderJob(run, e, opened, onListed, onWritten);
      onListed();
      const q = await syncQuiet(job, opened.quiet);
      if (q) {
        fr.drift.push(...q.drift);
        if (q.stopped) return;
        fr.verified = fr.drift.length === 0;
        if (fr.verified && q.proof && q.held.size === 0) run.proofs[e.name] = q.proof;
        if (q.byPrints && opened.quiet.unchanged) fr.proven = true;
        else if (q.byPrints) fr.quiet = opened.quiet.quiet;
        return;
      }
      // Not for this path after all (nothing was written): the ordinary one lists afresh.
      opened.listed = undefined;
    }
    let outcome: FolderOutcome | undefined;
    if (!opts.verifyOnly) {
      outcome = await syncFolder(folderJob(run, e, opened, onListed), opened.listed);
      if (opts.dryRun) {
        const p = outcome.plan;
        for (const c of p.copies) fr.copied[c.from === "left" ? "right" : "left"]++;
        for (const f of p.flags) fr.flagged[f.side]++;
        for (const x of p.removals) fr.removed[x.side]++;
        return;
      }
      if (outcome.stopped) return;
    }
    // The ordinary path verifies before the next folder goes on: its verification holds both
    // sides' listings and rows, and beside the next folder's copies that raised a first sync's
    // peak memory at 100,000 messages by ~6 MB (the quiet path's holds a few prints).
    if (outcome?.rows && process.env.TANDEM_CHECK_ROWS === "1") checkRows(states, sideName, outcome.rows);
    const prints: Partial<Record<Side, SideProof>> = {};
    let pairs: string | undefined;
    fr.drift.push(
      ...(await verifyFolder({
        folder: sideName,
        handles: h,
        rows: outcome?.rows ?? {
          left: states.left.rows(sideName.left),
          right: states.right.rows(sideName.right),
        },
        minDate,
        skipPairs: outcome?.held,
        deep: opts.deep,
        listing: outcome?.listing,
        // Prints are comparable with a later listFlags() only where no keyword mask applied.
        fingerprint: opened.keywords
          ? (side, fingerprint, count) => {
              prints[side] = { identity: h[side].identity, fingerprint, count };
            }
          : undefined,
        pairsPrint: (p) => {
          pairs = p;
        },
      })),
    );
    fr.verified = fr.drift.length === 0;
    if (fr.verified && prints.left && prints.right && pairs && (outcome?.held.size ?? 0) === 0)
      run.proofs[e.name] = { names: sideName, left: prints.left, right: prints.right, pairs };
  } catch (err) {
    if (err instanceof DriverError && err.scope !== "store") {
      fr.errors.push(err.message);
      return;
    }
    throw err;
  } finally {
    release();
    onListed();
    await Promise.allSettled([opened?.handles.left.close(), opened?.handles.right.close()]);
  }
}

/**
 * Tests only (TANDEM_CHECK_ROWS=1): the rows the engine carried through the run, which
 * verification uses instead of reading them again, must be exactly the state's.
 */
function checkRows(
  states: Record<Side, SideState>,
  names: Record<Side, string>,
  rows: Record<Side, readonly StateRow[]>,
): void {
  const text = (list: readonly StateRow[]) =>
    JSON.stringify([...list].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
  for (const side of ["left", "right"] as const)
    if (text(rows[side]) !== text(states[side].rows(names[side])))
      throw new Error(`${side} rows carried through the run differ from the state's (${names[side]})`);
}
