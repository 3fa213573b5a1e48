/**
 * Reliability: crash anywhere, and interrupted copies at every point (SYNC-MODEL.md invariants 1, 2,
 * 4 and 5), on the shipped binary dist/tandem run as a child process.
 *
 * 1. Crash anywhere. Round after round, "another client" changes both sides (new mail, flags,
 *    removals, now and then a new or a removed folder), then `tandem sync` runs, and in about half of
 *    the rounds it is killed with SIGKILL at a random moment within the typical duration of a sync
 *    (measured on the first run). A ledger (ledger.ts) knows every message the test created and every
 *    removal and flag change it made. After every run that finished by itself, and after a final
 *    clean run: each message the test did not remove is on both sides exactly once with the test's
 *    flags, nothing the test removed survives, the folders are as expected, `tandem verify` exits 0.
 *    A folder removed on one side while the other still holds messages must stop the run with the
 *    documented guard (exit 4, folder-vanished); the test then removes the other side's folder as a
 *    user would, and the next run must exit 0.
 *    Pairs: Maildir↔Maildir and IMAP (Dovecot user, changed through imapflow)↔Maildir.
 * 2. Interrupted copy at every point. A run copying 1,500 messages (Maildir → IMAP, IMAP → Maildir)
 *    is killed after 100–700 ms, again and again, until one run exits 0; then the target holds every
 *    message exactly once (counted by Message-ID) and `tandem verify` exits 0.
 *
 * CI runs a fixed seed at a small size; any size on demand:
 *   TANDEM_CHAOS_ROUNDS=200 TANDEM_CHAOS_SEED=42 npx vitest run test/reliability/chaos.test.ts
 * Every failure message starts with the seed and the round.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Side } from "../../src/model/types.js";
import {
  chownToMailUser,
  connectImap,
  type DovecotServer,
  dovecotAvailable,
  type ImapUser,
  startDovecot,
} from "../helpers/dovecot.js";
import { Ledger } from "./ledger.js";
import { Rng } from "./prng.js";
import { holdingProxy } from "./proxy.js";
import {
  type ClientSide,
  type Found,
  ImapClient,
  LETTERS,
  MaildirClient,
  messageText,
  sortLetters,
  uniqueBase,
} from "./stores.js";
import {
  ensureBuilt,
  imapToml,
  maildirToml,
  type RunResult,
  removePrivateBin,
  runTandem,
  type SideToml,
  writeConfig,
} from "./tandem-cli.js";

const ROUNDS = Number(process.env.TANDEM_CHAOS_ROUNDS ?? 16);
const SEED = Number(process.env.TANDEM_CHAOS_SEED ?? 20_261_101);
const COPY_COUNT = Number(process.env.TANDEM_CHAOS_COPY ?? 800);
const SIDES: readonly Side[] = ["left", "right"];
const other = (s: Side): Side => (s === "left" ? "right" : "left");

let server: DovecotServer | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  await ensureBuilt();
  if (dovecotAvailable()) server = await startDovecot();
}, 600_000);

afterAll(async () => {
  await server?.stop();
  removePrivateBin();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `tandem-chaos-${name}-`));
  dirs.push(d);
  return d;
}

interface Account {
  dir: string;
  config: string;
  clients: Record<Side, ClientSide>;
  run(args: string[], killAfterMs?: number): Promise<RunResult>;
}

function account(dir: string, left: [ClientSide, SideToml], right: [ClientSide, SideToml]): Account {
  // maxDelete 100: the random removals are the user's will; the percentage guard has tests of its own.
  const config = writeConfig(dir, left[1], right[1], ["maxDelete = 100"]);
  return {
    dir,
    config,
    clients: { left: left[0], right: right[0] },
    run: (args, killAfterMs) =>
      runTandem(args, { config, home: dir, ...(killAfterMs !== undefined ? { killAfterMs } : {}) }),
  };
}

interface JsonFolder {
  folder: string;
  copied: Record<Side, number>;
  flagged: Record<Side, number>;
  removed: Record<Side, number>;
  created: Side[];
  stops: { guard: string; message: string }[];
  errors: string[];
  drift: unknown[];
}

function jsonFolders(r: RunResult): JsonFolder[] {
  try {
    const doc = JSON.parse(r.out) as { accounts: { folders: JsonFolder[] }[] };
    return doc.accounts.flatMap((a) => a.folders);
  } catch {
    return [];
  }
}

function describeRun(r: RunResult): string {
  return `exit ${r.code ?? r.signal} after ${Math.round(r.ms)} ms\nstdout: ${r.out.slice(0, 4000)}\nstderr: ${r.err.slice(0, 4000)}`;
}

// ------------------------------------------------------------------ 1. crash anywhere

class Chaos {
  readonly rng: Rng;
  readonly ledger: Ledger;
  readonly log: string[] = [];
  round = 0;
  typicalMs = 0;
  private cleanMs: number[] = [];
  kills = 0;
  /** Runs meant to be killed that finished before the delay ran out. */
  missed = 0;
  cleanRuns = 0;
  guardStops = 0;
  /** Messages brought back by the known bug (see knownBugResurrections). */
  readonly resurrected: string[] = [];

  constructor(
    readonly name: string,
    readonly seed: number,
    readonly acct: Account,
  ) {
    this.rng = new Rng(seed);
    this.ledger = new Ledger(name.replace(/\W+/g, ""));
  }

  ctx(what: string): string {
    return `[chaos ${this.name}] seed=${this.seed} (TANDEM_CHAOS_SEED=${SEED}) round=${this.round}: ${what}\nlast steps:\n${this.log.slice(-60).join("\n")}`;
  }

  private note(s: string): void {
    this.log.push(`r${this.round} ${s}`);
  }

  private async findOne(side: Side, folder: string, tag: string): Promise<Found> {
    const hits = (await this.acct.clients[side].list(folder)).filter((m) => m.tag === tag);
    if (hits.length !== 1)
      throw new Error(
        this.ctx(`${side} holds ${hits.length} copies of ${tag} in ${folder || "INBOX"}, expected 1`),
      );
    return hits[0]!;
  }

  async deliver(side: Side, folder: string, letters = this.rng.subset(LETTERS)): Promise<void> {
    const tag = this.ledger.newTag();
    await this.acct.clients[side].deliver(folder, tag, letters);
    this.ledger.created(tag, folder, letters);
    this.note(`${side} new ${tag}:${letters || "-"} in ${folder || "INBOX"}`);
  }

  /** One change by another client on one side. */
  async step(): Promise<void> {
    const { rng, ledger } = this;
    const side = rng.pick(SIDES);
    const c = this.acct.clients;
    const kind = rng.weighted([
      ["new", 4],
      ["both", 0.6],
      ["flags", 4],
      ["remove", 2],
      ["new-folder", 0.35],
      ["remove-folder", 0.3],
    ] as const);
    if (kind === "new") {
      const folder = rng.pick(ledger.liveFolders()).name;
      return this.deliver(side, folder);
    }
    if (kind === "both") {
      // The same message delivered to both sides before a run: paired by content, flags merged.
      const folder = rng.pick(ledger.liveFolders()).name;
      const tag = ledger.newTag();
      const l = rng.subset(LETTERS);
      const r = rng.subset(LETTERS);
      await c.left.deliver(folder, tag, l);
      await c.right.deliver(folder, tag, r);
      ledger.created(tag, folder, [...new Set(l + r)].sort().join(""));
      this.note(`both new ${tag} left:${l || "-"} right:${r || "-"} in ${folder || "INBOX"}`);
      return;
    }
    if (kind === "new-folder") {
      const folder = ledger.newFolderName();
      const n = rng.between(1, 3);
      for (let i = 0; i < n; i++) await this.deliver(side, folder);
      return;
    }
    if (kind === "remove-folder") {
      const candidates = ledger.removableFolders();
      if (candidates.length === 0) return;
      const f = rng.pick(candidates);
      await c[side].removeFolder(f.name);
      const otherSide = other(side);
      if (rng.chance(0.6)) {
        // The user removes the folder on one side and its messages on the other: a clean removal.
        const msgs = await c[otherSide].list(f.name);
        for (const m of msgs) await c[otherSide].remove(f.name, m);
        ledger.folderRemoved(f.name);
        this.note(`${side} remove folder ${f.name}, ${otherSide} removes its ${msgs.length} message(s)`);
      } else {
        // Removed on one side only: the run must stop with folder-vanished until the user decides.
        ledger.folderRemoved(f.name, otherSide);
        this.note(`${side} remove folder ${f.name} (still full on ${otherSide})`);
      }
      return;
    }
    const candidates = ledger.changeable(side);
    if (candidates.length === 0) return;
    const e = rng.pick(candidates);
    if (kind === "remove") {
      // Never empty a folder on one side: that is the empty-side guard, which has tests of its own.
      if (ledger.settled(e.folder).length <= 1) return;
      await c[side].remove(e.folder, await this.findOne(side, e.folder, e.tag));
      e.removed = true;
      ledger.touch(e, side);
      this.note(`${side} remove ${e.tag} in ${e.folder || "INBOX"}`);
      return;
    }
    const m = await this.findOne(side, e.folder, e.tag);
    if (m.letters !== e.letters)
      throw new Error(
        this.ctx(`${side} shows ${e.tag} with flags ${m.letters || "-"}, the test set ${e.letters || "-"}`),
      );
    const letter = rng.pick([...LETTERS]);
    const next = m.letters.includes(letter)
      ? m.letters.replace(letter, "")
      : [...m.letters, letter].sort().join("");
    await c[side].setLetters(e.folder, m, next);
    e.letters = next;
    ledger.touch(e, side);
    this.note(`${side} flags ${e.tag} ${m.letters || "-"} -> ${next || "-"} in ${e.folder || "INBOX"}`);
  }

  async changes(n: number): Promise<void> {
    const c = this.acct.clients;
    await Promise.all([c.left.begin(), c.right.begin()]);
    try {
      for (let i = 0; i < n; i++) await this.step();
    } finally {
      await Promise.all([c.left.end(), c.right.end()]);
    }
  }

  /** A run, killed after `killAfterMs` if given. Returns whether it finished by itself. */
  async sync(killAfterMs?: number): Promise<boolean> {
    const r = await this.acct.run(["sync", "--json"], killAfterMs);
    if (r.hung) throw new Error(this.ctx(`tandem sync hung\n${describeRun(r)}`));
    if (r.killed) {
      this.kills++;
      this.note(`sync killed after ${Math.round(killAfterMs ?? 0)} ms`);
      return false;
    }
    this.cleanRuns++;
    this.cleanMs.push(r.ms);
    this.note(`sync finished: exit ${r.code} in ${Math.round(r.ms)} ms`);
    const vanishing = this.ledger.vanishing();
    if (vanishing.length > 0) {
      // The documented guard: exit 4, naming folder-vanished and the folder.
      const stops = jsonFolders(r).flatMap((f) => f.stops.map((s) => ({ folder: f.folder, ...s })));
      expect(r.code, this.ctx(`expected exit 4 (folder-vanished)\n${describeRun(r)}`)).toBe(4);
      for (const f of vanishing)
        expect(
          stops.some((s) => s.guard === "folder-vanished" && s.folder === f.name),
          this.ctx(`expected a folder-vanished stop for ${f.name}\n${describeRun(r)}`),
        ).toBe(true);
      this.guardStops++;
      const c = this.acct.clients;
      await Promise.all([c.left.begin(), c.right.begin()]);
      try {
        for (const f of vanishing) {
          await c[f.vanishingOn!].removeFolder(f.name);
          this.note(`${f.vanishingOn} removes folder ${f.name} as the guard asked`);
          delete f.vanishingOn;
        }
      } finally {
        await Promise.all([c.left.end(), c.right.end()]);
      }
      return this.sync();
    }
    const bad = jsonFolders(r).filter((f) => f.stops.length || f.errors.length || f.drift.length);
    expect(r.code, this.ctx(`a finished run must exit 0\n${describeRun(r)}`)).toBe(0);
    expect(bad, this.ctx("stops, errors or drift in a run that exited 0")).toEqual([]);
    await this.check();
    return true;
  }

  /** The ledger against both sides, and `tandem verify`; then the next epoch begins. */
  async check(): Promise<void> {
    const found: Record<Side, Map<string, Found[]>> = { left: new Map(), right: new Map() };
    for (const side of SIDES) {
      const c = this.acct.clients[side];
      await c.begin();
      try {
        for (const f of await c.folders()) found[side].set(f, await c.list(f));
      } finally {
        await c.end();
      }
    }
    this.knownBugResurrections(found);
    const problems = SIDES.flatMap((side) => this.ledger.problems(side, found[side]));
    if (problems.length > 0) {
      const tags = new Set(problems.map((p) => /^\w+: (\S+)/.exec(p)?.[1] ?? ""));
      const history = this.log.filter((line) => [...tags].some((t) => new RegExp(`\\b${t}\\b`).test(line)));
      expect(
        problems,
        this.ctx(
          `the sides against the ledger after a finished run\nhistory of those messages:\n${history.join("\n")}`,
        ),
      ).toEqual([]);
    }
    const v = await this.acct.run(["verify"]);
    expect(v.code, this.ctx(`tandem verify after a finished run\n${describeRun(v)}`)).toBe(0);
    this.ledger.epoch++;
  }

  /**
   * Was a bug, fixed (reconcile.ts: only \\Deleted added is no conflict), and now strict by default;
   * TANDEM_CHAOS_LENIENT=1 tolerates the old pattern again, for bisecting:
   * tandem removes a message from an IMAP folder with STORE +\\Deleted, then UID EXPUNGE; a run killed
   * between the two leaves the message marked \\Deleted, the next run takes that for a flag change
   * against the removal on the other side, and policy `keep` copies the removed message back with \\Deleted
   * (Maildir T) on both sides. Seen first with TANDEM_CHAOS_SEED=20261101 (imap-maildir, seed 20261102,
   * round 15: "right remove imapmaildir-7" in round 13, runs killed in rounds 13–14). So that the suite
   * stays green, such a message is counted and taken back into the ledger with its T; set
   * TANDEM_CHAOS_STRICT=1 to fail on it instead.
   */
  private knownBugResurrections(found: Record<Side, Map<string, Found[]>>): void {
    if (process.env.TANDEM_CHAOS_LENIENT !== "1") return;
    for (const e of this.ledger.entries.values()) {
      const removedOn = e.owner?.side;
      if (!e.removed || !removedOn || !(this.acct.clients[other(removedOn)] instanceof ImapClient)) continue;
      if (this.ledger.folders.get(e.folder)?.dead !== false) continue;
      const want = sortLetters(`${e.letters}T`);
      const copies = SIDES.map((side) => [...found[side].values()].flat().filter((m) => m.tag === e.tag));
      const inPlace = SIDES.every((side) => (found[side].get(e.folder) ?? []).some((m) => m.tag === e.tag));
      if (!inPlace || copies.some((c) => c.length !== 1 || c[0]!.letters !== want)) continue;
      e.removed = false;
      e.letters = want;
      this.resurrected.push(e.tag);
      this.note(`KNOWN BUG: ${e.tag} (removed on ${removedOn}) came back with \\Deleted on both sides`);
    }
  }

  /** Seeds both sides, runs once to measure the typical duration, then the rounds, then a clean run. */
  async play(rounds: number): Promise<void> {
    this.note("seed");
    await this.acct.clients.left.begin();
    await this.acct.clients.right.begin();
    for (let i = 0; i < 8; i++) await this.deliver("left", "");
    for (let i = 0; i < 8; i++) await this.deliver("right", "");
    for (let i = 0; i < 4; i++) await this.deliver("left", "Archive");
    await this.acct.clients.left.end();
    await this.acct.clients.right.end();
    await this.sync();
    // The typical duration of a round's run, measured first on a run with a few changes, then the
    // mean of all finished runs but the first (which copies the whole seed).
    await this.changes(3);
    await this.sync();
    for (this.round = 1; this.round <= rounds; this.round++) {
      await this.changes(this.rng.between(1, 7));
      const ms = this.cleanMs.slice(1);
      this.typicalMs = ms.reduce((a, b) => a + b, 0) / ms.length;
      if (this.rng.chance(0.5)) {
        const delay = this.rng.next() * this.typicalMs;
        if (await this.sync(delay)) this.missed++;
      } else await this.sync();
    }
    this.note("final clean run");
    if (!(await this.sync())) throw new Error(this.ctx("the final run was killed"));
    // A second run plans nothing.
    const again = await this.acct.run(["sync", "--json"]);
    expect(again.code, this.ctx(`second clean run\n${describeRun(again)}`)).toBe(0);
    const work = jsonFolders(again).filter(
      (f) =>
        f.copied.left + f.copied.right + f.flagged.left + f.flagged.right + f.removed.left + f.removed.right >
          0 || f.created.length > 0,
    );
    expect(work, this.ctx("a second clean run did work")).toEqual([]);
  }

  summary(): string {
    return `${this.name}: seed ${this.seed}, ${this.round - 1} rounds, ${this.kills} killed runs (${this.missed} more finished before their kill), ${this.cleanRuns} finished runs, ${this.guardStops} folder-vanished stops, ${this.ledger.entries.size} messages, typical run ${Math.round(this.typicalMs)} ms, known-bug resurrections: ${this.resurrected.join(" ") || "none"}`;
  }
}

describe("crash anywhere", () => {
  it("Maildir↔Maildir: random changes on both sides, runs killed at random moments", {
    timeout: 900_000,
  }, async () => {
    const dir = tempDir("mm");
    const l = new MaildirClient(join(dir, "left"));
    const r = new MaildirClient(join(dir, "right"));
    const chaos = new Chaos(
      "maildir-maildir",
      SEED,
      account(dir, [l, maildirToml(l.root)], [r, maildirToml(r.root)]),
    );
    await chaos.play(ROUNDS);
    console.log(chaos.summary());
  });

  it.skipIf(!dovecotAvailable())(
    "IMAP↔Maildir: random changes on both sides, runs killed at random moments",
    { timeout: 900_000 },
    async () => {
      const dir = tempDir("im");
      const u = await server!.addUser("chaos");
      const l = new ImapClient(u);
      const r = new MaildirClient(join(dir, "right"));
      const chaos = new Chaos(
        "imap-maildir",
        SEED + 1,
        account(dir, [l, imapToml(u)], [r, maildirToml(r.root)]),
      );
      await chaos.play(ROUNDS);
      console.log(chaos.summary());
    },
  );
});

describe.skipIf(!dovecotAvailable())("crash at a chosen point", () => {
  // BUG: a removal on the IMAP side killed between STORE +\Deleted and UID EXPUNGE resurrects the
  // message the user removed: the next run takes the \Deleted flag tandem itself set for a flag change
  // on the IMAP side, against the removal on the Maildir side, and policy `keep` copies the message back
  // to the Maildir (with T) and leaves it on the server (with \Deleted); exit 0, verified. An
  // uninterrupted run removes it (invariant 5). Found by the chaos test with TANDEM_CHAOS_SEED=20261101
  // (imap-maildir, seed 20261102, round 15); here made deterministic with a proxy that holds back the
  // UID EXPUNGE and kills the run there.
  it("removal on IMAP killed between \\Deleted and UID EXPUNGE: the removed message stays removed", async () => {
    const dir = tempDir("expunge");
    const u = await server!.addUser("expunge");
    const imap = new ImapClient(u);
    const local = new MaildirClient(join(dir, "local"));
    await imap.begin();
    for (const t of ["A", "B", "C"]) await imap.deliver("", t, "S");
    await imap.end();
    const proxy = await holdingProxy(u.host, u.port, /UID EXPUNGE/i);
    try {
      const viaProxy = account(
        dir,
        [imap, imapToml({ ...u, port: proxy.port })],
        [local, maildirToml(local.root)],
      );
      expect((await viaProxy.run(["sync"])).code).toBe(0);
      await local.remove("", (await local.list("")).find((m) => m.tag === "B")!);
      const cut = await runTandem(["sync"], { config: viaProxy.config, home: dir, killWhen: proxy.held });
      expect(cut.killed, describeRun(cut)).toBe(true);
    } finally {
      await proxy.close();
    }
    const direct = account(dir, [imap, imapToml(u)], [local, maildirToml(local.root)]);
    const r = await direct.run(["sync"]);
    expect(r.code, describeRun(r)).toBe(0);
    await imap.begin();
    const onServer = (await imap.list("")).map((m) => `${m.tag}:${m.letters}`).sort();
    await imap.end();
    const onDisk = (await local.list("")).map((m) => `${m.tag}:${m.letters}`).sort();
    // What happens today: B:ST on both sides.
    expect({ onServer, onDisk }).toEqual({ onServer: ["A:S", "C:S"], onDisk: ["A:S", "C:S"] });
  });
});

// ------------------------------------------------------------------ 2. interrupted copy

/** Writes `n` small messages straight into a Maildir's cur/ (some with flags); returns their Message-IDs. */
function writeCorpus(root: string, n: number, prefix: string): string[] {
  for (const s of ["cur", "new", "tmp"]) mkdirSync(join(root, s), { recursive: true });
  const flags = ["", "S", "FS", "RS", ""];
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const tag = `${prefix}-${i}`;
    writeFileSync(join(root, "cur", `${uniqueBase()}:2,${flags[i % flags.length]}`), messageText(tag, i % 7));
    ids.push(`<${tag}@chaos.test>`);
  }
  return ids;
}

function maildirMessageIds(root: string): string[] {
  const out: string[] = [];
  for (const sub of ["new", "cur"])
    for (const name of readdirSync(join(root, sub))) {
      const text = readFileSync(join(root, sub, name), "latin1");
      out.push(/^Message-ID: *(.*)$/im.exec(text)?.[1]?.trim() ?? "?");
    }
  return out;
}

async function imapMessageIds(u: ImapUser): Promise<string[]> {
  const c = await connectImap(u);
  try {
    const box = await c.mailboxOpen("INBOX");
    if (box.exists === 0) return [];
    const out: string[] = [];
    for await (const m of c.fetch("1:*", { envelope: true })) out.push(m.envelope?.messageId ?? "?");
    return out;
  } finally {
    await c.logout().catch(() => {});
    c.close();
  }
}

/** Every id exactly once and nothing else: the differences, for the failure message. */
function onceEach(
  found: string[],
  want: string[],
): { missing: string[]; doubled: string[]; strays: string[] } {
  const count = new Map<string, number>();
  for (const id of found) count.set(id, (count.get(id) ?? 0) + 1);
  const wanted = new Set(want);
  return {
    missing: want.filter((id) => !count.has(id)),
    doubled: [...count].filter(([id, n]) => wanted.has(id) && n > 1).map(([id, n]) => `${id} x${n}`),
    strays: [...count.keys()].filter((id) => !wanted.has(id)),
  };
}

/**
 * Kills `sync` again and again until a run finishes by itself; returns the number of kills. A run
 * needs a while (start, login, listing, plan) before it copies anything, about as long as a dry run
 * over the same stores, measured now and then: most kills land 100–700 ms after that point, one in
 * five 100–700 ms after the start.
 */
async function killUntilDone(acct: Account, rng: Rng, label: string): Promise<{ kills: number; ms: number }> {
  const started = performance.now();
  let base = 0;
  for (let kills = 0, attempt = 0; ; attempt++) {
    if (attempt % 8 === 0) {
      const dry = await acct.run(["sync", "--dry-run", "--quiet"]);
      expect(dry.code, `${label}: dry run (seed ${SEED})\n${describeRun(dry)}`).toBe(0);
      base = dry.ms;
    }
    const delay = (rng.chance(0.2) ? 0 : base) + rng.between(100, 700);
    const r = await acct.run(["sync", "--quiet"], delay);
    if (r.hung) throw new Error(`${label}: sync hung (seed ${SEED})\n${describeRun(r)}`);
    if (r.killed) {
      kills++;
      continue;
    }
    expect(
      r.code,
      `${label}: the first run that finished (after ${kills} kills, seed ${SEED})\n${describeRun(r)}`,
    ).toBe(0);
    return { kills, ms: performance.now() - started };
  }
}

describe.skipIf(!dovecotAvailable())("interrupted copy at every point", () => {
  it(`Maildir → IMAP: ${COPY_COUNT} messages, killed again and again`, { timeout: 900_000 }, async () => {
    const dir = tempDir("copy-up");
    const local = join(dir, "local");
    const ids = writeCorpus(local, COPY_COUNT, "up");
    const u = await server!.addUser("copyup");
    const acct = account(
      dir,
      [new MaildirClient(local), maildirToml(local)],
      [new ImapClient(u), imapToml(u)],
    );
    const { kills, ms } = await killUntilDone(acct, new Rng(SEED + 2), "Maildir → IMAP");
    const label = `Maildir → IMAP after ${kills} kills (seed ${SEED})`;
    expect(onceEach(await imapMessageIds(u), ids), `${label}: the server`).toEqual({
      missing: [],
      doubled: [],
      strays: [],
    });
    expect(onceEach(maildirMessageIds(local), ids), `${label}: the Maildir`).toEqual({
      missing: [],
      doubled: [],
      strays: [],
    });
    const v = await acct.run(["verify"]);
    expect(v.code, `${label}: verify\n${describeRun(v)}`).toBe(0);
    console.log(`copy Maildir → IMAP: ${COPY_COUNT} messages, ${kills} kills, ${Math.round(ms)} ms`);
  });

  it(`IMAP → Maildir: ${COPY_COUNT} messages, killed again and again`, { timeout: 900_000 }, async () => {
    const dir = tempDir("copy-down");
    const u = await server!.addUser("copydown");
    const ids = writeCorpus(u.maildir, COPY_COUNT, "down");
    await chownToMailUser(u.maildir);
    const local = join(dir, "local");
    const acct = account(
      dir,
      [new ImapClient(u), imapToml(u)],
      [new MaildirClient(local), maildirToml(local)],
    );
    const { kills, ms } = await killUntilDone(acct, new Rng(SEED + 3), "IMAP → Maildir");
    const label = `IMAP → Maildir after ${kills} kills (seed ${SEED})`;
    expect(onceEach(maildirMessageIds(local), ids), `${label}: the Maildir`).toEqual({
      missing: [],
      doubled: [],
      strays: [],
    });
    expect(onceEach(await imapMessageIds(u), ids), `${label}: the server`).toEqual({
      missing: [],
      doubled: [],
      strays: [],
    });
    const v = await acct.run(["verify"]);
    expect(v.code, `${label}: verify\n${describeRun(v)}`).toBe(0);
    console.log(`copy IMAP → Maildir: ${COPY_COUNT} messages, ${kills} kills, ${Math.round(ms)} ms`);
  });
});
