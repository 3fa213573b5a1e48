// Store.printFolders() of the Maildir driver: folders printed on a worker thread and on the main
// thread at once (print-pool.ts), each exactly as MaildirFolder.printFlags() prints it. From
// source there is no embedded worker code, so the test bundles print-worker.ts itself, the way
// scripts/build.mjs does.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { printWorkerBundle } from "../../scripts/build/print-worker.mjs";
import type { FolderPrint, Store } from "../../src/drivers/driver.js";
import { openMaildirStore } from "../../src/drivers/maildir/maildir-store.js";
import {
  keptStats,
  prestartPrintWorker,
  printInWorker,
  spareStats,
} from "../../src/drivers/maildir/print-pool.js";
import { setPrintWorkerCode } from "../../src/drivers/maildir/print-worker-code.js";

let workerCode = "";
let root = "";

beforeAll(async () => {
  workerCode = await printWorkerBundle();
  root = await mkdtemp(join(tmpdir(), "tandem-print-worker-"));
  fill(root);
});
afterAll(async () => {
  setPrintWorkerCode(undefined);
  await rm(root, { recursive: true, force: true });
});
afterEach(() => setPrintWorkerCode(undefined));

/** Names of the folders fill() makes (INBOX is the root). */
const NAMES = ["INBOX", ...Array.from({ length: 24 }, (_, i) => `F${i}`), "Keywords", "Odd", "Twice"];

function file(dir: string, sub: "cur" | "new", name: string): void {
  writeFileSync(join(dir, sub, name), "Subject: x\r\n\r\nbody\r\n");
}

/** A Maildir++ tree: many plain folders, one with keywords, one with a directory among the messages, one key twice. */
function fill(base: string): void {
  const make = (name: string) => {
    const dir = name === "INBOX" ? base : join(base, `.${name}`);
    for (const sub of ["cur", "new", "tmp"]) mkdirSync(join(dir, sub), { recursive: true });
    return dir;
  };
  for (const [n, name] of NAMES.entries()) {
    const dir = make(name);
    for (let m = 0; m < 3 + (n % 5) * 7; m++) {
      const letters = ["", "S", "FS", "RS", "DT"][m % 5];
      file(dir, "cur", `17000${n}.M${m}P1.host,S=20:2,${letters}`);
    }
    file(dir, "new", `17001${n}.M1P1.host`);
    writeFileSync(join(dir, "cur", ".hidden"), "");
  }
  const kw = join(base, ".Keywords");
  writeFileSync(join(kw, "dovecot-keywords"), "0 $Forwarded\n1 Work\n");
  file(kw, "cur", "1800.M1P1.host:2,Sab");
  file(kw, "cur", "1800.M2P1.host:2,b");
  mkdirSync(join(base, ".Odd", "cur", "1900.M1P1.host:2,S"));
  file(join(base, ".Twice"), "new", "1700025.M0P1.host");
}

async function store(): Promise<Store> {
  return await openMaildirStore({ path: root, layout: "maildir++", onWarning: () => {} });
}

/** `run` with a store of the test's Maildir, closed after it whatever happens. */
async function withStore(run: (s: Store) => Promise<void>): Promise<void> {
  const s = await store();
  try {
    await run(s);
  } finally {
    await s.close();
  }
}

/** What printFlags() gives, folder by folder: the batch must give the same. */
async function onebyone(s: Store, names: string[]): Promise<Map<string, FolderPrint | undefined>> {
  const out = new Map<string, FolderPrint | undefined>();
  for (const name of names) {
    const f = await s.openFolder(name, { lookOnly: true });
    const p = await f.printFlags!();
    out.set(name, p && { identity: f.identity, ...p });
    await f.close();
  }
  return out;
}

async function batch(s: Store, names: string[]): Promise<Map<string, FolderPrint | undefined>> {
  const prints = s.printFolders!(names);
  const out = new Map<string, FolderPrint | undefined>();
  for (const name of names) out.set(name, await prints.get(name));
  return out;
}

describe("Maildir Store.printFolders()", () => {
  it("prints every folder as printFlags() does, however the worker and the main thread share them", async () => {
    setPrintWorkerCode(workerCode);
    await withStore(async (s) => {
      const expected = await onebyone(s, NAMES);
      // The folders are there and print (Odd: a directory among the messages; Twice: a key in
      // cur/ and new/, printed twice so that it matches no proof).
      expect(expected.get("Odd")).toBeUndefined();
      expect(expected.get("Keywords")).toBeDefined();
      expect(expected.get("Twice")).toBeDefined();
      for (let round = 0; round < 3; round++) expect(await batch(s, NAMES)).toEqual(expected);
      // A folder that is not there: the batch cannot tell; the caller's own open says why.
      expect(await batch(s, ["Missing", "F1"])).toEqual(
        new Map([
          ["Missing", undefined],
          ["F1", expected.get("F1")],
        ]),
      );
    });
  });

  it("the worker's own prints are exact: every folder it claims while the main thread is held up", async () => {
    await withStore(async (s) => {
      const expected = await onebyone(s, NAMES);
      setPrintWorkerCode(workerCode);
      const dirs = NAMES.map((n) => (n === "INBOX" ? root : join(root, `.${n}`)));
      const job = printInWorker(dirs)!;
      // The main thread takes its share between turns of the event loop: held here, it leaves
      // the worker to claim folders (the claims are shared memory, visible while we wait).
      const until = Date.now() + 10_000;
      while (job.workerShare() < NAMES.length && Date.now() < until)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      expect(job.workerShare()).toBeGreaterThan(0);
      const got = await Promise.all(job.prints);
      expect(new Map(NAMES.map((n, i) => [n, got[i] && { identity: "maildir", ...got[i] }]))).toEqual(
        expected,
      );
    });
  });

  it("a worker started ahead (prestartPrintWorker) is taken by the next batch, once, and prints the same", async () => {
    setPrintWorkerCode(workerCode);
    await withStore(async (s) => {
      const expected = await onebyone(s, NAMES);
      const taken = spareStats.taken;
      prestartPrintWorker();
      expect(await batch(s, NAMES)).toEqual(expected);
      expect(spareStats.taken).toBe(taken + 1);
      // The next batch starts its own.
      expect(await batch(s, NAMES)).toEqual(expected);
      expect(spareStats.taken).toBe(taken + 1);
    });
  });

  it("a worker started ahead that no batch takes within 300 ms ends (a run without a batch does not carry it)", async () => {
    setPrintWorkerCode(workerCode);
    await withStore(async (s) => {
      const { taken, dropped } = spareStats;
      // It never keeps the process alive (tandem exits at once anyway, main.ts, but a run from
      // another entry point would wait for it): no new handle that holds the event loop.
      const ports = () => process.getActiveResourcesInfo().filter((r) => r === "MessagePort").length;
      const before = ports();
      prestartPrintWorker();
      // At most as many as before: earlier tests' workers may let theirs go meanwhile.
      expect(ports()).toBeLessThanOrEqual(before);
      await new Promise((r) => setTimeout(r, 100));
      expect(ports()).toBeLessThanOrEqual(before);
      await new Promise((r) => setTimeout(r, 500));
      expect(spareStats.dropped).toBe(dropped + 1);
      // The next batch starts its own.
      expect(await batch(s, NAMES)).toEqual(await onebyone(s, NAMES));
      expect(spareStats.taken).toBe(taken);
    });
  });

  it("a worker started ahead that died, or runs other code, is not taken: the batch does without it", async () => {
    await withStore(async (s) => {
      const expected = await onebyone(s, NAMES);
      const taken = spareStats.taken;
      setPrintWorkerCode("process.exit(3);");
      prestartPrintWorker();
      await new Promise((r) => setTimeout(r, 500));
      expect(await batch(s, NAMES)).toEqual(expected);
      setPrintWorkerCode("setInterval(() => {}, 1000);");
      prestartPrintWorker();
      setPrintWorkerCode(workerCode);
      expect(await batch(s, NAMES)).toEqual(expected);
      expect(spareStats.taken).toBe(taken);
    });
  });

  it("a worker that never starts, or fails: the main thread prints every folder, the same", async () => {
    for (const code of ["setInterval(() => {}, 1000);", "throw new Error('no');", "process.exit(3);"]) {
      setPrintWorkerCode(undefined);
      await withStore(async (s) => {
        const expected = await onebyone(s, NAMES);
        setPrintWorkerCode(code);
        expect(await batch(s, NAMES), code).toEqual(expected);
      });
    }
  });

  it("a small batch (the hint says few messages): no worker, undefined for every folder", async () => {
    setPrintWorkerCode(workerCode);
    await withStore(async (s) => {
      const prints = s.printFolders!(NAMES, { messages: 1000 });
      const got = await Promise.all(NAMES.map((n) => prints.get(n)));
      expect(got.every((p) => p === undefined)).toBe(true);
      expect(await batch(s, NAMES)).toEqual(await onebyone(s, NAMES));
    });
  });

  it("a small batch ends a worker started ahead at once, untaken (the run does not carry its memory)", async () => {
    setPrintWorkerCode(workerCode);
    await withStore(async (s) => {
      const { taken, dropped } = spareStats;
      prestartPrintWorker();
      const prints = s.printFolders!(NAMES, { messages: 1000 });
      // At the batch, not SPARE_MS later.
      expect(spareStats.dropped).toBe(dropped + 1);
      expect(spareStats.taken).toBe(taken);
      expect((await Promise.all(NAMES.map((n) => prints.get(n)))).every((p) => p === undefined)).toBe(true);
    });
  });

  it("without worker code (from source): undefined for every folder, the caller prints as before", async () => {
    await withStore(async (s) => {
      expect([...(await batch(s, NAMES)).values()].every((p) => p === undefined)).toBe(true);
    });
  });

  it("after a batch the store keeps its worker: printFlags() prints there, the same, until printsDone()", async () => {
    await withStore(async (s) => {
      const expected = await onebyone(s, NAMES);
      setPrintWorkerCode(workerCode);
      const ended = keptStats.ended;
      const ports = () => process.getActiveResourcesInfo().filter((r) => r === "MessagePort").length;
      const portsBefore = ports();
      expect(await batch(s, NAMES)).toEqual(expected);
      // Handed over once the worker is through with the batch, a turn or two after its prints:
      // from then on a print is the worker's answer.
      const inbox = await s.openFolder("INBOX", { lookOnly: true });
      const until = Date.now() + 5_000;
      for (let a = keptStats.answered; Date.now() < until; a = keptStats.answered) {
        expect(await inbox.printFlags!()).toEqual({
          count: expected.get("INBOX")!.count,
          fingerprint: expected.get("INBOX")!.fingerprint,
        });
        if (keptStats.answered > a) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const answered = keptStats.answered;
      // Idle, it holds no handle that keeps the process alive (at most as many as before: earlier
      // tests' workers may let theirs go meanwhile).
      expect(ports()).toBeLessThanOrEqual(portsBefore);
      // Every folder but Odd (a directory among its messages: the main thread's way says so).
      expect(await onebyone(s, NAMES)).toEqual(expected);
      expect(keptStats.answered).toBe(answered + NAMES.length - 1);
      // Asked several at once, each gets its own folder's print.
      const folders = await Promise.all(NAMES.map((n) => s.openFolder(n, { lookOnly: true })));
      const prints = await Promise.all(folders.map((f) => f.printFlags!()));
      expect(new Map(NAMES.map((n, i) => [n, prints[i] && { identity: "maildir", ...prints[i] }]))).toEqual(
        expected,
      );
      // A folder changed since prints as it is now.
      const dir = join(root, ".F3");
      file(dir, "cur", "1999.M1P1.host:2,S");
      const f3 = await s.openFolder("F3", { lookOnly: true });
      const now = await f3.printFlags!();
      expect(now?.count).toBe(expected.get("F3")!.count + 1);
      rmSync(join(dir, "cur", "1999.M1P1.host:2,S"));
      expect(await f3.printFlags!()).toEqual({
        count: expected.get("F3")!.count,
        fingerprint: expected.get("F3")!.fingerprint,
      });
      const before = keptStats.answered;
      s.printsDone!();
      expect(keptStats.ended).toBeGreaterThan(ended);
      expect(await onebyone(s, NAMES)).toEqual(expected);
      expect(keptStats.answered).toBe(before);
      for (const f of [...folders, inbox, f3]) await f.close();
    });
  });

  it("a batch hands its worker over only when every answer is in: a print asked at once gets its own answer", async () => {
    await withStore(async (s) => {
      const expected = await onebyone(s, NAMES);
      setPrintWorkerCode(workerCode);
      const dirs = NAMES.map((n) => (n === "INBOX" ? root : join(root, `.${n}`)));
      for (let round = 0; round < 5; round++) {
        let settled = 0;
        let asked: Promise<unknown[]> | undefined;
        let stop: (() => void) | undefined;
        const job = printInWorker(dirs, (printer) => {
          // Every batch print has settled by now.
          expect(settled).toBe(NAMES.length);
          stop = printer.stop;
          asked = Promise.all([...dirs].reverse().map((d) => printer.print(d)));
        })!;
        for (const p of job.prints) void p.then(() => settled++);
        await Promise.all(job.prints);
        const until = Date.now() + 5_000;
        while (asked === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
        const got = ((await asked) ?? []).reverse();
        expect(
          new Map(NAMES.map((n, i) => [n, got[i] && { identity: "maildir", ...(got[i] as object) }])),
        ).toEqual(expected);
        stop?.();
      }
    });
  });

  it("a kept worker that is ended while asked: the print settles undefined, and the folder prints the ordinary way", async () => {
    await withStore(async (s) => {
      const expected = await onebyone(s, NAMES);
      setPrintWorkerCode(workerCode);
      let printer: { print(d: string): Promise<unknown>; stop(): void } | undefined;
      const job = printInWorker([root], (p) => {
        printer = p;
      })!;
      await Promise.all(job.prints);
      const until = Date.now() + 5_000;
      while (printer === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      const pending = printer!.print(join(root, ".F1"));
      printer!.stop();
      expect(await pending).toBeUndefined();
      expect(await printer!.print(join(root, ".F1"))).toBeUndefined();
      expect(await onebyone(s, ["F1"])).toEqual(new Map([["F1", expected.get("F1")]]));
    });
  });

  it("a store closed while the batch runs: every print settles", async () => {
    setPrintWorkerCode(workerCode);
    const s = await store();
    const prints = s.printFolders!(NAMES);
    await s.close();
    const got = await Promise.all([...prints.values()]);
    expect(got).toHaveLength(NAMES.length);
  });
});
