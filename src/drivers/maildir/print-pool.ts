// Maildir folders printed on a worker thread and on the main thread at once: reading 100,000
// directory entries and hashing their names is most of a no-change run's work on the Maildir side,
// and a worker puts the machine's second core to it while the main thread reads the IMAP side's
// answers. The worker takes folders from the first on, the main thread from the last one down,
// each claiming a folder in a shared array before printing it, so that none is printed twice.
// Both run the very loop MaildirFolder.printFlags() runs (dir-print.ts).
import { Worker } from "node:worker_threads";
import { printDirSync } from "./dir-print.js";
import { printWorkerCode } from "./print-worker-code.js";

type Print = { count: number; fingerprint: string };

/** A worker started ahead of its batch (prestartPrintWorker), not yet taken by one. */
interface Spare {
  worker: Worker;
  code: string;
  ready: boolean;
  dead: boolean;
  off(): void;
}
let spare: Spare | undefined;
/**
 * How long a worker started ahead waits for its batch, which comes ~50 ms after the start: a run
 * without one (a first sync, a maxage window set in the config) then carries its memory no longer
 * (a 30-day maxage first sync at 100,000 messages peaked at 96 MB before the worker was started
 * ahead, 107 MB with 1 s here, 103 MB with 300 ms; 4 runs each). A batch that comes later starts
 * a worker of its own, as before.
 */
const SPARE_MS = 300;
/** Batches that took a worker started ahead, and such workers ended untaken, for tests. */
export const spareStats = { taken: 0, dropped: 0 };

/**
 * Starts the print worker now, for a batch yet to come (printInWorker() takes it): a worker needs
 * ~20 ms to boot on an idle core, ~50 ms once the run is busy, and started as the process starts it
 * is up before the Maildir is open (no-change runs at 100,000 messages: 0.240 -> 0.227 s and
 * 0.225 -> 0.210 s, medians of two sets of 12 alternating runs). It never keeps the process alive;
 * one that no batch has taken after SPARE_MS is ended.
 */
export function prestartPrintWorker(): void {
  const code = printWorkerCode();
  if (code === undefined || spare !== undefined) return;
  const worker = startWorker(code);
  if (worker === undefined) return;
  const s: Spare = { worker, code, ready: false, dead: false, off: () => {} };
  const onMessage = (m: { ready?: true } | undefined) => {
    if (m?.ready) s.ready = true;
  };
  const onEnd = () => {
    s.dead = true;
  };
  worker.on("message", onMessage);
  worker.on("error", onEnd);
  worker.on("exit", onEnd);
  s.off = () => {
    worker.off("message", onMessage);
    worker.off("error", onEnd);
    worker.off("exit", onEnd);
  };
  // After the listeners: adding a "message" listener refs a worker again.
  worker.unref();
  spare = s;
  // A run without a print batch (a first sync, no Maildir side) would carry an idle worker's
  // memory to its end: not taken by then, it goes.
  setTimeout(() => {
    if (spare === s) dropSpare();
  }, SPARE_MS).unref();
}

/** A print worker running `code`; undefined where the runtime has no eval workers. */
function startWorker(code: string): Worker | undefined {
  try {
    return new Worker(code, { eval: true });
  } catch {
    return undefined;
  }
}

/**
 * Ends the worker started ahead, if there is one not yet taken; also at once when a batch will
 * print without it (a small one), so that the run does not carry its memory.
 */
export function dropSpare(): void {
  const s = spare;
  spare = undefined;
  if (s === undefined) return;
  spareStats.dropped++;
  s.off();
  void s.worker.terminate().catch(() => {});
}

/** The worker started ahead, if it runs `code` and is still alive; each is taken once. */
function takeSpare(code: string): Spare | undefined {
  const s = spare;
  if (s === undefined) return undefined;
  if (s.dead || s.code !== code) {
    dropSpare();
    return undefined;
  }
  spare = undefined;
  s.off();
  s.worker.ref();
  spareStats.taken++;
  return s;
}

/** How long a worker may take to start before the main thread prints every folder itself. */
const READY_MS = 2_000;

/**
 * Prints `dirs`, a promise per directory, undefined wherever a print cannot tell (the caller then
 * prints that folder the ordinary way). Undefined when no worker can be had (no worker code, as
 * when running from source; a runtime without eval workers): the caller prints as before. The
 * worker ends after its last folder, on any failure, and on `stop`.
 */
export function printInWorker(
  dirs: readonly string[],
  /** Takes the worker once the batch is done, instead of its end: for the run's later prints. */
  keep?: (printer: KeptPrinter) => void,
): { prints: Promise<Print | undefined>[]; stop(): void; workerShare(): number } | undefined {
  const code = printWorkerCode();
  const n = dirs.length;
  if (code === undefined || n === 0) return undefined;
  // Per folder: 0 free, 1 the worker's, 2 the main thread's, 3 given up (stop()).
  const claims = new Int32Array(new SharedArrayBuffer(4 * n));
  const taken = takeSpare(code);
  const worker = taken?.worker ?? startWorker(code);
  if (worker === undefined) return undefined;
  const resolvers: Array<(p: Print | undefined) => void> = [];
  const prints = dirs.map((_, i) => new Promise<Print | undefined>((resolve) => (resolvers[i] = resolve)));
  const settled = new Uint8Array(n);
  let left = n;
  /** The worker is through with the batch: it has answered every folder it claimed. */
  let through = false;
  /**
   * Each folder's print, once. With the last one the worker ends (it may not even be up yet), or,
   * to be kept, is handed over once it is through with the batch too: a worker kept while the
   * batch's last answer is still on its way would give it as the answer to a later request.
   */
  const settle = (i: number, p: Print | undefined) => {
    if (settled[i]) return;
    settled[i] = 1;
    resolvers[i]!(p);
    if (--left === 0 && (keep === undefined || through)) end(through);
  };
  let ended = false;
  const end = (whole = false) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    // Only these: removeAllListeners() would also take Node's own, which start the port.
    worker.off("message", onMessage);
    worker.off("error", onEnd);
    worker.off("exit", onEnd);
    if (whole && keep) keep(keptPrinter(worker));
    else void worker.terminate().catch(() => {});
    // What the worker claimed and did not answer gets undefined (a promise settles once). It
    // claims in order and stops at the main thread's first claim, so nothing is left free that
    // the main thread will not take on its way down.
    for (let i = 0; i < n; i++) if (Atomics.load(claims, i) === 1) settle(i, undefined);
  };
  // A worker that never says it is ready (a runtime that runs it otherwise) is given up on.
  const timer = setTimeout(() => end(), READY_MS);
  if (taken?.ready) clearTimeout(timer);
  const onMessage = (m: { ready?: true; done?: true; i?: number; print?: Print }) => {
    if (m.ready) return clearTimeout(timer);
    if (m.done) {
      through = true;
      // Kept only once every folder is answered, the main thread's share too (it may print on).
      if (keep === undefined || left === 0) end(left === 0);
      return;
    }
    const i = m.i;
    if (typeof i !== "number" || Atomics.load(claims, i) !== 1) return end();
    settle(i, asPrint(m.print));
  };
  const onEnd = () => end();
  worker.on("message", onMessage);
  worker.on("error", onEnd);
  worker.on("exit", onEnd);
  worker.postMessage({ dirs, claims });
  // The main thread's share, from the last folder down, one per turn of the event loop so that
  // the IMAP side's answers are read in between.
  void (async () => {
    for (let i = n - 1; i >= 0; i--) {
      await new Promise((r) => setImmediate(r));
      if (Atomics.compareExchange(claims, i, 0, 2) !== 0) break;
      settle(i, printDirSync(dirs[i]!));
    }
  })();
  return {
    prints,
    /** How many folders the worker has claimed so far (for tests). */
    workerShare: () => claims.filter((c) => c === 1).length,
    stop: () => {
      for (let i = 0; i < n; i++) if (Atomics.compareExchange(claims, i, 0, 3) === 0) settle(i, undefined);
      end();
    },
  };
}

/**
 * A print worker kept after its batch (printInWorker's `keep`): prints one folder at a time for
 * the rest of the run, such as verification's fresh prints of the folders a run wrote, off the
 * main thread, which a run with changes keeps busy. Ended by stop() (the store's close).
 */
export interface KeptPrinter {
  /** The folder's print, or undefined where the worker cannot tell (the caller prints it itself). */
  print(dir: string): Promise<Print | undefined>;
  stop(): void;
}

/** A worker's answer when it has a print's shape, else undefined (the folder is printed the ordinary way). */
function asPrint(p: Print | undefined): Print | undefined {
  return p && typeof p.count === "number" && typeof p.fingerprint === "string" ? p : undefined;
}

/** How long a kept worker may take to answer one folder before it is given up on. */
const KEPT_ANSWER_MS = 30_000;

/** Workers kept after their batch, answers they gave, and kept workers ended, for tests. */
export const keptStats = { kept: 0, answered: 0, ended: 0 };

function keptPrinter(worker: Worker): KeptPrinter {
  keptStats.kept++;
  /** Each request's answer, in the order sent: the worker answers its messages in turn. */
  const waiting: Array<(p: Print | undefined) => void> = [];
  let answer: Print | undefined;
  let stopped = false;
  /** Runs while an answer is awaited: a worker that stops answering is ended, its askers print themselves. */
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    keptStats.ended++;
    clearTimeout(timer);
    worker.off("message", onMessage);
    worker.off("error", stop);
    worker.off("exit", stop);
    for (const resolve of waiting.splice(0)) resolve(undefined);
    void worker.terminate().catch(() => {});
  };
  const onMessage = (m: { done?: true; i?: number; print?: Print }) => {
    if (m.i === 0) {
      answer = asPrint(m.print);
      return;
    }
    if (!m.done) return;
    clearTimeout(timer);
    if (answer) keptStats.answered++;
    waiting.shift()?.(answer);
    answer = undefined;
    if (waiting.length > 0) timer = setTimeout(stop, KEPT_ANSWER_MS);
    // Idle, it must not keep the process alive; it is ended with the store.
    if (waiting.length === 0) worker.unref();
  };
  worker.on("message", onMessage);
  worker.on("error", stop);
  worker.on("exit", stop);
  worker.unref();
  return {
    print: (dir) => {
      if (stopped) return Promise.resolve(undefined);
      // Referenced while asked: an unreferenced worker would let the process end under the caller.
      worker.ref();
      worker.postMessage({ dirs: [dir], claims: new Int32Array(new SharedArrayBuffer(4)) });
      if (waiting.length === 0) timer = setTimeout(stop, KEPT_ANSWER_MS);
      return new Promise((resolve) => waiting.push(resolve));
    },
    stop,
  };
}
