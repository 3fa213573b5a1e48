import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import type { AccountConfig } from "../../src/config/config.js";
import { DriverError, type Folder, type Store } from "../../src/drivers/driver.js";
import { openMaildirStore } from "../../src/drivers/maildir/maildir-store.js";
import { type RunOptions, runAccount } from "../../src/engine/sync-account.js";
import type { AccountReport } from "../../src/model/report.js";
import type { Side } from "../../src/model/types.js";

/**
 * Scenario notation (isync-style, see test/engine/scenarios.test.ts):
 * - a mailbox is a space-separated list of `Tag:Letters`, e.g. `A:S B:FS C` — message A with \Seen,
 *   B flagged and seen, C without flags. Letters are Maildir's: D F P R S T.
 * - a change list is space-separated ops done by a mail client between runs:
 *   `+A:F` add \Flagged to A, `-A:S` remove \Seen, `xA` remove A, `nD:S` deliver new D with \Seen.
 * Messages are real files in real Maildirs; their tag is their Subject and Message-ID.
 */
export const DAY = 86_400_000;
export const NOW = Date.UTC(2026, 10, 1);

export interface World {
  dir: string;
  roots: Record<Side, string>;
  account: AccountConfig;
  cleanup(): void;
}

export function makeWorld(opts: Partial<AccountConfig> = {}): World {
  const dir = mkdtempSync(join(tmpdir(), "tandem-scn-"));
  const roots = { left: join(dir, "left"), right: join(dir, "right") };
  for (const r of Object.values(roots))
    for (const s of ["cur", "new", "tmp"]) mkdirSync(join(r, s), { recursive: true });
  const account: AccountConfig = {
    name: "test",
    stateDir: join(dir, "state"),
    conflict: "keep",
    maxDelete: 50,
    include: ["*"],
    exclude: [],
    rename: {},
    left: { type: "maildir", path: roots.left, layout: "maildir++" },
    right: { type: "maildir", path: roots.right, layout: "maildir++" },
    ...opts,
  };
  return { dir, roots, account, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let counter = 0;

/** Delivers a message the way an MDA does: a file in new/ (or cur/ with flags). */
export function deliver(root: string, tag: string, letters = "", date = NOW - DAY, folder = ""): string {
  const base = `${Math.floor(date / 1000)}.T${process.pid}_${++counter}.test`;
  const body = `Message-ID: <${tag}@tandem.test>\r\nSubject: ${tag}\r\nFrom: a@example.com\r\n\r\nBody of ${tag}\r\n`;
  const dir = folder ? join(root, `.${folder.replace(/\//g, ".")}`) : root;
  for (const s of ["cur", "new", "tmp"]) mkdirSync(join(dir, s), { recursive: true });
  const file = letters ? join(dir, "cur", `${base}:2,${sortLetters(letters)}`) : join(dir, "new", base);
  writeFileSync(file, body);
  utimesSync(file, date / 1000, date / 1000);
  return file;
}

function sortLetters(s: string): string {
  return [...new Set(s)].sort().join("");
}

interface Found {
  tag: string;
  file: string;
  letters: string;
}

export function scan(root: string, folder = ""): Found[] {
  const dir = folder ? join(root, `.${folder.replace(/\//g, ".")}`) : root;
  const out: Found[] = [];
  for (const sub of ["new", "cur"]) {
    let names: string[] = [];
    try {
      names = readdirSync(join(dir, sub));
    } catch {
      continue;
    }
    for (const name of names) {
      const file = join(dir, sub, name);
      const text = readFileSync(file, "latin1");
      const tag = /^Subject: (.*)$/m.exec(text)?.[1]?.trim() ?? "?";
      const i = name.indexOf(":2,");
      out.push({ tag, file, letters: i >= 0 ? name.slice(i + 3).replace(/[a-z]/g, "") : "" });
    }
  }
  return out;
}

/** The mailbox in scenario notation, sorted: `A:FS B C:S`. */
export function show(root: string, folder = ""): string {
  return scan(root, folder)
    .map((m) => (m.letters ? `${m.tag}:${sortLetters(m.letters)}` : m.tag))
    .sort()
    .join(" ");
}

export function seed(root: string, spec: string, folder = ""): void {
  for (const item of words(spec)) {
    const [tag, letters = ""] = item.split(":");
    deliver(root, tag!, letters, NOW - DAY, folder);
  }
}

/** Applies a change list as a mail client would: renames for flags, unlink for removal, new files. */
export function change(root: string, spec: string, folder = ""): void {
  for (const op of words(spec)) {
    const kind = op[0];
    const parsed = /^([^:@]+)(?::([A-Z]*))?(?:@(\d+))?$/.exec(op.slice(1));
    if (!parsed) throw new Error(`scenario: cannot parse ${op}`);
    const tag = parsed[1]!;
    const letters = parsed[2] ?? "";
    if (kind === "n") {
      const date = parsed[3] ? NOW - Number(parsed[3]) * DAY : NOW - DAY;
      deliver(root, tag, letters, date, folder);
      continue;
    }
    const msg = scan(root, folder).find((x) => x.tag === tag);
    if (!msg) throw new Error(`scenario: no message ${tag} in ${root}`);
    if (kind === "x") {
      unlinkSync(msg.file);
      continue;
    }
    const cur = new Set(msg.letters);
    for (const l of letters) kind === "+" ? cur.add(l) : cur.delete(l);
    const base = msg.file.split("/").pop()!.split(":2,")[0]!;
    const dir = msg.file.split("/").slice(0, -2).join("/");
    renameSync(msg.file, join(dir, "cur", `${base}:2,${sortLetters([...cur].join(""))}`));
  }
}

function words(spec: string): string[] {
  return spec.split(/\s+/).filter((w) => w !== "");
}

export interface FaultPlan {
  /** Fail the write with this 0-based index. */
  at: number;
  /** Fail before the store is written, or after it was written (the reply lost). */
  when: "before" | "after";
}

/** Counts store writes and injects a store-scoped failure at one of them (isync's proxy driver idea). */
export class FaultCounter {
  writes = 0;
  constructor(readonly fault?: FaultPlan) {}

  async write<T>(fn: () => Promise<T>): Promise<T> {
    const n = this.writes++;
    const f = this.fault;
    if (f && f.at === n && f.when === "before")
      throw new DriverError("injected fault before write", { scope: "store" });
    const out = await fn();
    if (f && f.at === n && f.when === "after")
      throw new DriverError("injected fault after write", { scope: "store" });
    return out;
  }
}

/** A folder that passes each call on to `f`: the base of a test's wrapper, which replaces some. */
export function passFolder(f: Folder): Folder {
  return {
    name: f.name,
    identity: f.identity,
    marker: f.marker,
    list: (o) => f.list(o),
    // Passed through so that runs with wrapped stores take the quiet-side path too (engine/quiet.ts).
    listFlags: f.listFlags && (() => f.listFlags!()),
    printFlags: f.printFlags && (() => f.printFlags!()),
    read: (k) => f.read(k),
    readHeader: (k) => f.readHeader(k),
    append: (i) => f.append(i),
    setFlags: (k, a, r) => f.setFlags(k, a, r),
    remove: (k) => f.remove(k),
    close: () => f.close(),
  };
}

/** A store whose folders are wrapped by `wrap`, its folder writes run through `write`. */
export function wrapFolders(
  store: Store,
  wrap: (f: Folder) => Folder,
  write: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
): Store {
  return {
    caps: store.caps,
    label: store.label,
    listFolders: () => store.listFolders(),
    createFolder: (n) => write(() => store.createFolder(n)),
    removeFolder: (n) => write(() => store.removeFolder(n)),
    openFolder: async (n, o) => wrap(await store.openFolder(n, o)),
    close: () => store.close(),
  };
}

export function faulty(store: Store, counter: FaultCounter): Store {
  return wrapFolders(
    store,
    (f) => ({
      ...passFolder(f),
      append: (i) => counter.write(() => f.append(i)),
      setFlags: (k, a, r) => counter.write(() => f.setFlags(k, a, r)),
      remove: (k) => counter.write(() => f.remove(k)),
    }),
    (fn) => counter.write(fn),
  );
}

export async function sync(
  world: World,
  opts: Partial<RunOptions> & {
    counter?: FaultCounter;
    /** Wraps each side's store (after the fault counter, if any). */
    wrap?: (store: Store, side: Side) => Store;
  } = {},
): Promise<AccountReport> {
  const { counter, wrap } = opts;
  return runAccount(world.account, {
    dryRun: false,
    force: false,
    resync: false,
    now: NOW,
    log: () => {},
    openStore: async (side) => {
      const cfg = world.account[side];
      if (cfg.type !== "maildir") throw new Error("maildir only");
      const store = await openMaildirStore({
        path: cfg.path,
        layout: cfg.layout,
        create: true,
        onWarning: () => {},
      });
      const counted = counter ? faulty(store, counter) : store;
      return wrap ? wrap(counted, side) : counted;
    },
    ...opts,
  });
}

/** Two Maildirs with messages in INBOX and "work", synced once, clean: a proof is left. */
export async function cleanPair(): Promise<World> {
  const w = makeWorld();
  seed(w.roots.left, "A B:S C:FS");
  seed(w.roots.right, "D:R");
  seed(w.roots.left, "E F:S", "work");
  const first = await sync(w);
  expect(first.exitCode).toBe(0);
  expect(first.proven).toBeUndefined();
  return w;
}

/** Totals of what a run did, to assert "a second run plans nothing". */
export function work(r: AccountReport): number {
  let n = 0;
  for (const f of r.folders) {
    n += f.copied.left + f.copied.right + f.flagged.left + f.flagged.right + f.removed.left + f.removed.right;
    n += f.created.length;
  }
  return n;
}

export function drift(r: AccountReport): string[] {
  return r.folders.flatMap((f) => f.drift.map((d) => `${d.folder} ${d.side} ${d.key ?? ""} ${d.what}`));
}
