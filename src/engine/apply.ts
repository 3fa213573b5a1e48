import { DriverError, type Folder } from "../drivers/driver.js";
import type { CopyOp, FlagOp, PairInfo, Plan, RecordOp, RemoveOp } from "../model/plan.js";
import type { FolderReport } from "../model/report.js";
import { type Flag, type MessageMeta, otherSide, type Side } from "../model/types.js";
import type { SideState, StateRow } from "../state/side-state.js";
import { Digest, digesting } from "./digest.js";

/**
 * Apply (SYNC-MODEL.md step 7). Invariant: the store is written first and the state recorded only
 * after the store confirmed (invariant 3); before a copy, its intent is recorded and flushed in the
 * target's state, so a run cut off between append and record finds the copy again (invariant 2).
 * Journals are flushed only where an intent must be durable before a store write (flag intents,
 * each copy batch's intents) and once at the end of the folder (by the caller), always after the
 * stores' own flush, the target's journal before the source's: an interruption leaves records
 * that lag the stores, never lead them, and each lag is found again (pre-check by pairId or
 * digest, FLAGS intents, copy intents with content matching, a removal seen on both sides).
 */
export interface ApplyContext {
  folder: Record<Side, string>;
  handles: Record<Side, Folder>;
  states: Record<Side, SideState>;
  pairs: ReadonlyMap<string, PairInfo>;
  /** State rows by key, kept current as the plan is applied. */
  rows: Record<Side, Map<string, StateRow>>;
  report: FolderReport;
  /** The run's clock, ms: stamps a doubt intent. */
  now: number;
  onProgress?: (done: number) => void;
  /** Messages per journal flush. */
  batchSize?: number;
}

export async function applyPlan(plan: Plan, ctx: ApplyContext): Promise<void> {
  expectWrites(plan, ctx);
  await applyRemovals(plan.removals, ctx);
  // Records of agreed flags on a side that needed no write come after the other side's flag
  // writes: recorded before them, a cut would leave that side claiming flags the pair never got.
  applyRecords(
    plan.records.filter((r) => r.kind !== "flags"),
    ctx,
  );
  const flagged = await applyFlags(plan.flags, ctx);
  applyRecords(
    plan.records.filter((r) => r.kind === "flags"),
    ctx,
  );
  if (flagged.length > 0) {
    // A FLAGS intent ends only once both sides' rows of its pair are durable. Ended together with
    // the written side's row, a cut before the other journal's flush left that side's old flags
    // recorded and the intent gone: the user taking the change back then looked like no change,
    // and the flags tandem had written were carried back over it (seen in the chaos test).
    await flushBoth(ctx, "right");
    for (const op of flagged) ctx.states[op.side].deleteIntent(ctx.folder[op.side], `${FLAGS}${op.pairId}`);
  }
  await applyCopies(plan.copies, ctx);
}

/**
 * Tells each store what its state knows of the messages about to be removed or reflagged (their
 * flags), so that a store which finds a message by the name its flags make need not read a whole
 * folder it did not list (the quiet-side path: Folder.expect()).
 */
function expectWrites(plan: Plan, ctx: ApplyContext): void {
  for (const side of ["left", "right"] as const) {
    const expect = ctx.handles[side].expect;
    if (!expect) continue;
    const known = new Map<string, readonly Flag[]>();
    for (const op of [...plan.removals, ...plan.flags]) {
      const row = op.side === side ? ctx.rows[side].get(op.key) : undefined;
      if (row) known.set(op.key, row.flags);
    }
    if (known.size > 0) expect.call(ctx.handles[side], known);
  }
}

async function applyRemovals(ops: RemoveOp[], ctx: ApplyContext): Promise<void> {
  for (const side of ["left", "right"] as const) {
    const mine = ops.filter((o) => o.side === side);
    for (let i = 0; i < mine.length; i += 500) {
      const batch = mine.slice(i, i + 500);
      if (
        !(await attempt(ctx, `remove ${batch.length} message(s) on ${side}`, () =>
          ctx.handles[side].remove(batch.map((o) => o.key)),
        ))
      )
        continue;
      // Recorded, not yet flushed: remove() was durable when it returned, so the records may wait
      // for the next flush (a cut before it leaves both sides without the message and the pair
      // recorded, which the next run forgets).
      for (const op of batch) {
        forgetPair(ctx, op.pairId);
        ctx.report.removed[side]++;
      }
    }
  }
}

function applyRecords(records: readonly RecordOp[], ctx: ApplyContext): void {
  for (const rec of records) {
    if (rec.kind === "forget") forgetPair(ctx, rec.pairId);
    else if (rec.kind === "flags") {
      const key = keyOf(ctx, rec.side, rec.pairId);
      const row = key === undefined ? undefined : ctx.rows[rec.side].get(key);
      if (row) putRow(ctx, rec.side, { ...row, flags: rec.flags });
    } else {
      for (const side of ["left", "right"] as const) {
        const m = rec[side];
        putRow(
          ctx,
          side,
          rowFor(ctx, side, m, rec.pairId, m.flags, Math.min(rec.left.date, rec.right.date), rec.digest),
        );
      }
    }
  }
}

/** Writes the flag changes; returns those the stores confirmed (their rows recorded, unflushed). */
async function applyFlags(ops: FlagOp[], ctx: ApplyContext): Promise<FlagOp[]> {
  // One store call per distinct change (side, flags added, flags removed).
  const groups = new Map<string, FlagOp[]>();
  for (const op of ops) {
    const sig = `${op.side}\u0000${op.add.join(" ")}\u0000${op.remove.join(" ")}`;
    const g = groups.get(sig);
    if (g) g.push(op);
    else groups.set(sig, [op]);
  }
  // Every intent first, on both sides, made durable before any flag is written: a run cut off
  // after a store took flags but before its state recorded them must not take them for the
  // user's change next time, and which side needed no write at all must be known (sync-folder.ts).
  if (ops.length === 0) return [];
  const writtenOn: Record<Side, Set<string>> = { left: new Set(), right: new Set() };
  for (const op of ops) writtenOn[op.side].add(op.pairId);
  for (const op of ops) {
    ctx.states[op.side].putIntent({
      folder: ctx.folder[op.side],
      pairId: `${FLAGS}${op.pairId}`,
      sourceKey: op.flags.join(" "),
      // 1: the other side is written too. Its intent may be gone after a cut (the two journals
      // are not one), so recovery must know whether to wait for it (sync-folder.ts).
      date: writtenOn[otherSide(op.side)].has(op.pairId) ? 1 : 0,
    });
  }
  await flushBoth(ctx, "right");
  const batches: FlagOp[][] = [];
  for (const group of groups.values())
    for (let i = 0; i < group.length; i += 500) batches.push(group.slice(i, i + 500));
  const confirmed: FlagOp[] = [];
  const done = (batch: FlagOp[]) => {
    for (const op of batch) {
      const row = ctx.rows[op.side].get(op.key);
      if (row) putRow(ctx, op.side, { ...row, flags: op.flags });
      confirmed.push(op);
      ctx.report.flagged[op.side]++;
    }
  };
  const change = (b: FlagOp[]) => ({ keys: b.map((o) => o.key), add: b[0]!.add, remove: b[0]!.remove });
  for (const side of ["left", "right"] as const) {
    const mine = batches.filter((b) => b[0]!.side === side);
    if (mine.length === 0) continue;
    const h = ctx.handles[side];
    // Sent together where the store can (one round trip for a folder's few distinct changes); a
    // message-scoped failure then leaves all of them to their intents, as one that fails alone.
    if (h.setFlagsMany) {
      const n = mine.reduce((k, b) => k + b.length, 0);
      if (
        await attempt(ctx, `set flags on ${n} message(s) on ${side}`, () => h.setFlagsMany!(mine.map(change)))
      )
        for (const b of mine) done(b);
      continue;
    }
    for (const b of mine) {
      const { keys, add, remove } = change(b);
      if (
        await attempt(ctx, `set flags on ${b.length} message(s) on ${side}`, () =>
          h.setFlags(keys, add, remove),
        )
      )
        done(b);
    }
  }
  return confirmed;
}

/** Prefix of the intent kept for a copy whose append failed and may still arrive. */
export const DOUBT = "doubt:";
/** Prefix of the intent recorded before flags are written: the flags the message is to have. */
export const FLAGS = "flags:";

/** Copies in flight at once: overlapping one message's fsync with the next one's transfer. */
export const COPY_CONCURRENCY = 8;
/** Messages up to this size are fetched several per request where the source can (readMany). */
export const SMALL_MESSAGE = 1 << 20;

async function applyCopies(ops: CopyOp[], ctx: ApplyContext): Promise<void> {
  const size = ctx.batchSize ?? 200;
  let done = 0;
  const pool = new Pool(COPY_CONCURRENCY);
  const run = (op: CopyOp, body?: Uint8Array) =>
    pool.run(async () => {
      await copyOne(op, ctx, body);
      ctx.onProgress?.(++done);
    });
  try {
    for (let i = 0; i < ops.length; i += size) await copyBatch(ops.slice(i, i + size), ctx, run, pool);
  } catch (err) {
    // Let copies already under way finish (and record) before the failure goes up: the states
    // are closed after that, and a late write must not land in a closed state.
    await pool.settle();
    throw err;
  }
}

async function copyBatch(
  batch: CopyOp[],
  ctx: ApplyContext,
  run: (op: CopyOp, body?: Uint8Array) => Promise<void>,
  pool: Pool,
): Promise<void> {
  for (const op of batch) {
    const to = otherSide(op.from);
    ctx.states[to].putIntent({
      folder: ctx.folder[to],
      pairId: op.pairId,
      sourceKey: op.msg.key,
      date: op.msg.date,
    });
  }
  // The stores first: the previous batch's appends must be durable before its records are.
  await flushBoth(ctx, "right");
  for (const side of ["left", "right"] as const) {
    const src = ctx.handles[side];
    const mine = batch.filter((o) => o.from === side);
    const small = src.readMany ? mine.filter((o) => o.msg.size <= SMALL_MESSAGE) : [];
    if (small.length > 0 && src.readMany) {
      const byKey = new Map(small.map((o) => [o.msg.key, o]));
      for await (const { key, body } of src.readMany([...byKey.keys()])) {
        const op = byKey.get(key);
        if (!op) continue;
        byKey.delete(key);
        await run(op, body);
      }
      // Not returned: removed from the source since it was listed. It stays unrecorded there,
      // so the next run sees it as it is then; nothing was copied, nothing is lost.
      for (const op of byKey.values())
        ctx.report.mended.push(`skipped ${op.msg.key} on ${side}: removed while the run went on`);
      // Drain before the next group: its reads may need a store this group's writes hold.
      await pool.drain();
    }
    const smallSet = new Set(small);
    for (const op of mine) if (!smallSet.has(op)) await run(op);
    await pool.drain();
  }
  // The batch's records are flushed with the next batch's intents, or by the caller at the end
  // of the folder (stores first there too); a cut before that leaves intents that find the copies.
}

async function copyOne(op: CopyOp, ctx: ApplyContext, whole?: Uint8Array): Promise<void> {
  const to = otherSide(op.from);
  const digest = new Digest();
  let newKey: string | undefined;
  const ok = await attempt(ctx, `copy message ${op.msg.key} from ${op.from} to ${to}`, async () => {
    const source = whole ? once(whole) : ctx.handles[op.from].read(op.msg.key);
    try {
      newKey = await ctx.handles[to].append({
        body: digesting(source, digest),
        size: whole ? whole.length : op.msg.size,
        flags: op.msg.flags,
        date: op.msg.date,
      });
    } catch (err) {
      // A failed APPEND may still land later (its bytes stuck in the network). Remember it, so
      // a later run recognises such a late arrival as our own duplicate (sync-folder.ts).
      ctx.states[to].putIntent({
        folder: ctx.folder[to],
        pairId: `${DOUBT}${ctx.now}:${op.pairId}`,
        sourceKey: op.msg.key,
        date: op.msg.date,
      });
      ctx.states[to].flush();
      throw err;
    }
  });
  if (!ok || newKey === undefined) return;
  const hex = digest.hex();
  const target: MessageMeta = { key: newKey, flags: op.msg.flags, size: digest.size, date: op.msg.date };
  putRow(ctx, to, rowFor(ctx, to, target, op.pairId, op.msg.flags, op.msg.date, hex));
  ctx.states[to].deleteIntent(ctx.folder[to], op.pairId);
  putRow(ctx, op.from, rowFor(ctx, op.from, op.msg, op.pairId, op.msg.flags, op.msg.date, hex));
  ctx.report.copied[to]++;
}

async function* once(body: Uint8Array): AsyncGenerator<Uint8Array> {
  yield body;
}

/**
 * At most `limit` tasks at once. `run` resolves when the task has started; the first failure is
 * kept, stops further starts, and is thrown by `drain`, which waits for every started task.
 */
class Pool {
  private readonly active = new Set<Promise<void>>();
  private failure: unknown;
  private failed = false;
  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    while (this.active.size >= this.limit) await Promise.race(this.active);
    if (this.failed) throw this.failure;
    const p: Promise<void> = task().then(
      () => {
        this.active.delete(p);
      },
      (err: unknown) => {
        this.active.delete(p);
        if (!this.failed) {
          this.failed = true;
          this.failure = err;
        }
      },
    );
    this.active.add(p);
  }

  /** Waits for every started task, keeping no failure. */
  async settle(): Promise<void> {
    while (this.active.size > 0) await Promise.race(this.active);
    this.failed = false;
  }

  async drain(): Promise<void> {
    while (this.active.size > 0) await Promise.race(this.active);
    if (this.failed) {
      this.failed = false;
      throw this.failure;
    }
  }
}

function rowFor(
  ctx: ApplyContext,
  side: Side,
  m: MessageMeta,
  pairId: string,
  flags: string[],
  date: number,
  digest: string,
): StateRow {
  return { folder: ctx.folder[side], key: m.key, pairId, flags, size: m.size, date, digest };
}

function putRow(ctx: ApplyContext, side: Side, row: StateRow): void {
  ctx.states[side].putMessage(row);
  ctx.rows[side].set(row.key, row);
}

function keyOf(ctx: ApplyContext, side: Side, pairId: string): string | undefined {
  const pair = ctx.pairs.get(pairId);
  if (pair) return side === "left" ? pair.leftKey : pair.rightKey;
  for (const row of ctx.rows[side].values()) if (row.pairId === pairId) return row.key;
  return undefined;
}

function forgetPair(ctx: ApplyContext, pairId: string): void {
  for (const side of ["left", "right"] as const) {
    const key = keyOf(ctx, side, pairId);
    if (key === undefined) continue;
    const row = ctx.rows[side].get(key);
    // The key may already carry a newer pair (a kept conflict re-copied under a new pairId).
    if (row && row.pairId !== pairId) continue;
    ctx.states[side].deleteMessage(ctx.folder[side], key);
    ctx.rows[side].delete(key);
  }
}

/**
 * Makes the stores' writes durable, then the journals: `first` and then the other, an order that
 * keeps interruptions re-linkable.
 */
export async function flushBoth(ctx: Pick<ApplyContext, "handles" | "states">, first: Side): Promise<void> {
  await Promise.all([ctx.handles.left.flush?.(), ctx.handles.right.flush?.()]);
  ctx.states[first].flush();
  ctx.states[otherSide(first)].flush();
}

/** Runs one store write; a message-scoped failure is reported and skipped, wider ones propagate. */
async function attempt(ctx: ApplyContext, what: string, fn: () => Promise<void>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (err instanceof DriverError && err.scope === "message") {
      ctx.report.errors.push(`Cannot ${what}: ${err.message}`);
      return false;
    }
    throw err;
  }
}
