// The engine (runAccount) with its IMAP side behind a fault-injecting proxy (test/helpers/
// fault-proxy.ts), Maildir on the other side: connections cut while listing, while a body is
// fetched and in the middle of an APPEND's literal; a stalled link; a slow link; a proxy that
// resets everything. Each run either retries and completes or fails cleanly (exit 1, a message
// that names the lost connection); the next run completes with nothing lost and nothing doubled
// (counted by Message-ID on both sides), verify finds no drift, and one more run does nothing.
// Then the CLI: closed port, STARTTLS not offered, an untrusted certificate.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import type { AccountConfig, ImapStoreConfig } from "../../src/config/config.js";
import { openStore } from "../../src/drivers/open-store.js";
import { runAccount } from "../../src/engine/sync-account.js";
import type { AccountReport } from "../../src/model/report.js";
import { DAY, drift, NOW, work } from "../engine/harness.js";
import { type DovecotServer, dovecotAvailable, type ImapUser, startDovecot } from "../helpers/dovecot.js";
import { type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.js";
import { type CommandResult, runCommand } from "../helpers/run-command.js";
import { makeSidesWorld, type SidesWorld, withImap } from "./sides.js";

const skip = !dovecotAvailable() && !process.env.CI;
const root = resolve(import.meta.dirname, "../..");
const CJS = join(root, "dist", "tandem.cjs");

/** Timeouts of the IMAP side: short, so that a stalled link is noticed in seconds. */
const CONNECT_TIMEOUT_MS = 2_000;
const COMMAND_TIMEOUT_MS = 3_000;

let server: DovecotServer;
const proxies: FaultProxy[] = [];
const cleanups: (() => void)[] = [];
beforeAll(async () => {
  if (!skip) server = await startDovecot();
});
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await server?.stop();
  for (const c of cleanups) c();
});

interface FaultWorld extends SidesWorld {
  u: ImapUser;
  md: string;
  proxy: FaultProxy;
  logs: string[];
}

/** Left IMAP (a fresh Dovecot user, reached through a fresh proxy), right Maildir. */
async function world(commandTimeoutMs = COMMAND_TIMEOUT_MS): Promise<FaultWorld> {
  const w = await makeSidesWorld({ left: "imap", right: "maildir" }, { server });
  cleanups.push(w.cleanup);
  const proxy = await startFaultProxy(server.port, server.host);
  proxies.push(proxy);
  const left: ImapStoreConfig = {
    ...(w.sides.left.config as ImapStoreConfig),
    host: proxy.host,
    port: proxy.port,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    commandTimeoutMs,
  };
  const account: AccountConfig = { ...w.account, left };
  return Object.assign(w, { account, u: w.sides.left.user!, md: w.sides.right.root!, proxy, logs: [] });
}

/** One run as the CLI makes it (openStore from the config), with the retry backoff shortened. */
async function run(w: FaultWorld, opts: { verifyOnly?: boolean } = {}): Promise<AccountReport> {
  return runAccount(w.account, {
    dryRun: false,
    force: false,
    resync: false,
    now: NOW,
    log: (m) => w.logs.push(m),
    retryDelayScale: 0.01,
    openStore: (side) => openStore(w.account[side], { onWarning: () => {} }),
    ...opts,
  });
}

/** A message of about `size` bytes whose Message-ID and Subject carry `tag`. */
function message(tag: string, size = 0): Buffer {
  const head = `Message-ID: <${tag}@tandem.test>\r\nSubject: ${tag}\r\nFrom: a@example.com\r\nDate: Sat, 31 Oct 2026 00:00:00 +0000\r\n\r\n`;
  const lines: string[] = [`Body of ${tag}`];
  let n = head.length + lines[0]!.length + 2;
  for (let i = 0; n < size; i++) {
    const l = `${tag} line ${i} ${"x".repeat(60)}`;
    lines.push(l);
    n += l.length + 2;
  }
  return Buffer.from(`${head}${lines.join("\r\n")}\r\n`, "latin1");
}

async function seedImap(u: ImapUser, msgs: [tag: string, size?: number][]): Promise<void> {
  await withImap(u, async (c) => {
    for (const [tag, size] of msgs) await c.append("INBOX", message(tag, size), [], new Date(NOW - DAY));
  });
}

let delivered = 0;
function seedMaildir(md: string, msgs: [tag: string, size?: number][]): void {
  for (const [tag, size] of msgs) {
    const file = join(md, "new", `${Math.floor((NOW - DAY) / 1000)}.F${process.pid}_${++delivered}.test`);
    writeFileSync(file, message(tag, size));
  }
}

/** Message-IDs on the server (INBOX), sorted, duplicates kept. */
async function serverIds(u: ImapUser): Promise<string[]> {
  return withImap(u, async (c) => {
    const box = await c.mailboxOpen("INBOX");
    if (!box.exists) return [];
    const ids: string[] = [];
    for await (const m of c.fetch("1:*", { envelope: true })) ids.push(m.envelope?.messageId ?? "?");
    return ids.sort();
  });
}

/** Message-IDs in the Maildir (INBOX = the root), sorted, duplicates kept; tmp/ must be empty. */
function maildirIds(md: string): string[] {
  const ids: string[] = [];
  for (const sub of ["new", "cur"]) {
    for (const name of readdirSync(join(md, sub))) {
      const head = readFileSync(join(md, sub, name), "latin1").slice(0, 4096);
      ids.push(/^Message-ID: *(<[^>]*>)/im.exec(head)?.[1] ?? "?");
    }
  }
  return ids.sort();
}

function ids(tags: string[]): string[] {
  return tags.map((t) => `<${t}@tandem.test>`).sort();
}

function summary(r: AccountReport): string {
  return JSON.stringify({ failure: r.failure, exit: r.exitCode, folders: r.folders, notes: r.notes });
}

/**
 * After a faulty run: the next run completes, both sides hold exactly `tags` once each, verify
 * finds no drift and one more run has nothing to do.
 */
async function expectRecovered(w: FaultWorld, tags: string[]): Promise<void> {
  w.proxy.pass();
  const next = await run(w);
  expect(next.exitCode, summary(next)).toBe(EXIT.ok);
  expect(drift(next)).toEqual([]);
  expect(await serverIds(w.u)).toEqual(ids(tags));
  expect(maildirIds(w.md)).toEqual(ids(tags));
  expect(readdirSync(join(w.md, "tmp"))).toEqual([]);
  const verify = await run(w, { verifyOnly: true });
  expect(verify.exitCode, summary(verify)).toBe(EXIT.ok);
  expect(drift(verify)).toEqual([]);
  const idle = await run(w);
  expect(idle.exitCode, summary(idle)).toBe(EXIT.ok);
  expect(work(idle), summary(idle)).toBe(0);
}

/** A run that hit a fault: exit 0 (retried) or exit 1 with a message about the connection. */
function expectRetriedOrFailedCleanly(r: AccountReport): void {
  if (r.exitCode === EXIT.ok) return;
  expect(r.exitCode, summary(r)).toBe(EXIT.failure);
  const text = [r.failure ?? "", ...r.folders.flatMap((f) => f.errors)].join("\n");
  expect(text).toMatch(/connection|timed? ?out|timeout/i);
}

const LISTING = /^\S+ UID FETCH \S+ \(.*RFC822\.SIZE/i;
const BODY = /^\S+ UID FETCH \S+ \(.*BODY\.PEEK\[\]/i;

const MB = 1024 * 1024;

describe.skipIf(skip).concurrent("a connection cut", () => {
  it("mid-listing (in the UID FETCH response), once: the folder is retried and completes", async () => {
    const w = await world();
    const tags = Array.from({ length: 40 }, (_, i) => `L${i}`);
    await seedImap(
      w.u,
      tags.map((t) => [t]),
    );
    w.proxy.cutOnClientCommand(LISTING, { afterServerBytes: 1500 });
    const r = await run(w);
    expect(w.proxy.stats.cuts).toBe(1);
    expectRetriedOrFailedCleanly(r);
    expect(r.exitCode, summary(r)).toBe(EXIT.ok);
    expect(w.logs.join("\n")).toMatch(/INBOX: .*connection.*lost.*retrying/i);
    await expectRecovered(w, tags);
  });

  it("mid-listing on every attempt: exit 1 naming the lost connection; then a clean run, no loss", async () => {
    const w = await world();
    const tags = Array.from({ length: 40 }, (_, i) => `L${i}`);
    await seedImap(
      w.u,
      tags.map((t) => [t]),
    );
    seedMaildir(w.md, [["M0"]]);
    w.proxy.cutOnClientCommand(LISTING, { afterServerBytes: 1500, times: Infinity });
    const started = Date.now();
    const r = await run(w);
    expect(r.exitCode, summary(r)).toBe(EXIT.failure);
    expect(r.failure ?? "").toMatch(/connection to the server was lost/);
    // 1 + 3 retries, then it gives up (backoff scaled by 0.01).
    expect(w.proxy.stats.cuts).toBe(4);
    expect(Date.now() - started).toBeLessThan(20_000);
    await expectRecovered(w, [...tags, "M0"]);
  });

  it("mid-fetch of small bodies (IMAP → Maildir): retried, nothing doubled", async () => {
    const w = await world();
    const tags = Array.from({ length: 30 }, (_, i) => `B${i}`);
    await seedImap(
      w.u,
      tags.map((t) => [t, 2000]),
    );
    w.proxy.cutOnClientCommand(BODY, { afterServerBytes: 20_000 });
    const r = await run(w);
    expect(w.proxy.stats.cuts).toBe(1);
    expectRetriedOrFailedCleanly(r);
    await expectRecovered(w, tags);
  });

  it("at the NOOP that stands in for a new EXAMINE (a folder kept selected): retried, nothing doubled", async () => {
    const w = await world();
    const tags = Array.from({ length: 30 }, (_, i) => `K${i}`);
    await seedImap(
      w.u,
      tags.map((t) => [t, 2000]),
    );
    // The listing EXAMINEs the folder; the body fetch behind it finds it still selected and sends NOOP.
    w.proxy.cutOnClientCommand(/^L\d+ NOOP/);
    const r = await run(w);
    expect(w.proxy.stats.cuts).toBe(1);
    expectRetriedOrFailedCleanly(r);
    expect(r.exitCode, summary(r)).toBe(EXIT.ok);
    await expectRecovered(w, tags);
  });

  it("mid-fetch of a 5 MB body: retried or failed cleanly, no partial file, nothing doubled", async () => {
    const w = await world();
    await seedImap(w.u, [["S0"], ["BIG", 5 * MB], ["S1"]]);
    w.proxy.cutOnClientCommand(BODY, { afterServerBytes: Math.floor(2.5 * MB) });
    const r = await run(w);
    expect(w.proxy.stats.cuts).toBe(1);
    expectRetriedOrFailedCleanly(r);
    await expectRecovered(w, ["S0", "BIG", "S1"]);
    const big = readdirSync(join(w.md, "cur"))
      .concat(readdirSync(join(w.md, "new")))
      .map((n) => [join(w.md, "cur", n), join(w.md, "new", n)].find(existsSync)!)
      .find((f) => readFileSync(f, "latin1").includes("<BIG@tandem.test>"))!;
    expect(readFileSync(big).equals(message("BIG", 5 * MB))).toBe(true);
  });

  it("mid-fetch of a 5 MB body on every attempt: exit 1; the next run completes", async () => {
    const w = await world();
    await seedImap(w.u, [["S0"], ["BIG", 5 * MB]]);
    w.proxy.cutOnClientCommand(BODY, { afterServerBytes: MB, times: Infinity });
    const r = await run(w);
    expectRetriedOrFailedCleanly(r);
    expect(r.exitCode, summary(r)).toBe(EXIT.failure);
    await expectRecovered(w, ["S0", "BIG"]);
  });

  it("mid-APPEND (Maildir → IMAP), small and 5 MB: retried, nothing doubled", async () => {
    const w = await world();
    seedMaildir(w.md, [["A0"], ["BIG", 5 * MB], ["A1"]]);
    w.proxy.closeDuringAppend({ fraction: 0.5 });
    let r = await run(w);
    expect(w.proxy.stats.cuts).toBe(1);
    expectRetriedOrFailedCleanly(r);
    await expectRecovered(w, ["A0", "A1", "BIG"]);

    // Now the 5 MB one is cut half way.
    seedMaildir(w.md, [["BIG2", 5 * MB]]);
    w.proxy.closeDuringAppend({ fraction: 0.5 });
    r = await run(w);
    expect(w.proxy.stats.cuts).toBe(2);
    expectRetriedOrFailedCleanly(r);
    await expectRecovered(w, ["A0", "A1", "BIG", "BIG2"]);
  });

  it("mid-APPEND on every attempt: exit 1; then a clean run, and a third run does nothing", async () => {
    const w = await world();
    seedMaildir(w.md, [["A0"], ["A1", 300_000]]);
    await seedImap(w.u, [["I0"]]);
    w.proxy.closeDuringAppend({ fraction: 0.3, times: Infinity });
    const r = await run(w);
    expect(r.exitCode, summary(r)).toBe(EXIT.failure);
    expect(r.failure ?? "").toMatch(/connection to the server was lost/);
    await expectRecovered(w, ["A0", "A1", "I0"]);
  });

  it("APPEND stored but its answer lost: the intent finds it again, no duplicate", async () => {
    const w = await world();
    seedMaildir(w.md, [["A0"], ["A1"], ["A2", 50_000]]);
    // Cut right after the literal was sent, before any byte of the server's answer.
    w.proxy.cutOnClientCommand(/^\S+ APPEND /i, { afterServerBytes: 0, times: 2 });
    const r = await run(w);
    expectRetriedOrFailedCleanly(r);
    await expectRecovered(w, ["A0", "A1", "A2"]);
  });
});

describe.skipIf(skip).concurrent("a stalled or slow link", () => {
  it("stalled in the listing longer than commandTimeoutMs: times out, retried, completes", async () => {
    const w = await world();
    const tags = ["T0", "T1", "T2"];
    await seedImap(
      w.u,
      tags.map((t) => [t]),
    );
    w.proxy.stall({ onClientCommand: LISTING });
    const started = Date.now();
    const r = await run(w);
    const took = Date.now() - started;
    expect(w.proxy.stats.stalls).toBe(1);
    expectRetriedOrFailedCleanly(r);
    expect(took).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 500);
    expect(took).toBeLessThan(4 * COMMAND_TIMEOUT_MS + 5_000);
    await expectRecovered(w, tags);
  }, 40_000);

  it("stalled during an APPEND's literal, the held bytes then lost: times out, retried, no duplicate", async () => {
    const w = await world();
    seedMaildir(w.md, [["A0"], ["A1", 200_000]]);
    w.proxy.stall({ onClientCommand: /^\S+ APPEND .*\{\d{5,}\+?\}$/i, afterClientBytes: 50_000 });
    const r = await run(w);
    expect(w.proxy.stats.stalls).toBe(1);
    expectRetriedOrFailedCleanly(r);
    // The network drops the stalled connection: the rest of the literal never reaches the server.
    w.proxy.reset();
    await expectRecovered(w, ["A0", "A1"]);
  }, 40_000);

  // Was a bug (fixed): an APPEND that timed out can still complete on the server after the retry appended the
  // message again: a duplicate on the server, paired with nothing, that the next run copies to
  // the Maildir as a new message. Repro: the client sends `A APPEND INBOX … {200007}`, 50 KB of
  // the literal pass, the link stalls; after commandTimeoutMs imapflow fails the command
  // (NoConnection), withRetry reconnects and the intent lookup does not find the message (it is
  // not on the server yet), so the retry appends it (UID 2). The stalled bytes are still in flight
  // (in a real network: in the client's kernel send buffer, which close() still delivers before
  // its FIN); when the link recovers they arrive, Dovecot completes the first APPEND (UID 3), and
  // the server holds A1 twice. The same happens on a slow link whose drain time of one APPEND
  // exceeds commandTimeoutMs (1 MB at 200 KB/s with a 3 s timeout: exit 3, "in the store but not
  // paired" in the same run). A mitigation in the driver would be to abort a connection whose
  // APPEND failed with a TCP reset (socket.resetAndDestroy(), which drops unsent data) rather than
  // an orderly close, and for the engine to look for the intent again at the next run.
  it("stalled during an APPEND's literal, the held bytes delivered late: no duplicate", async () => {
    const w = await world();
    seedMaildir(w.md, [["A0"], ["A1", 200_000]]);
    w.proxy.stall({ onClientCommand: /^\S+ APPEND .*\{\d{5,}\+?\}$/i, afterClientBytes: 50_000 });
    const r = await run(w);
    expectRetriedOrFailedCleanly(r);
    // pass() lets the stalled connection go on: the rest of the first APPEND reaches Dovecot.
    await expectRecovered(w, ["A0", "A1"]);
  }, 40_000);

  it("stalled before the greeting of every connection: connect timeout, exit 1, no hang", async () => {
    const w = await world();
    await seedImap(w.u, [["G0"]]);
    w.proxy.stall({ afterServerBytes: 0, times: Infinity });
    const started = Date.now();
    const r = await run(w);
    expect(Date.now() - started).toBeLessThan(3 * CONNECT_TIMEOUT_MS + 5_000);
    expect(r.exitCode, summary(r)).toBe(EXIT.failure);
    expect(r.failure ?? "").toMatch(/Cannot connect to 127\.0\.0\.1:\d+: .*(timeout|timed out)/i);
    expect(maildirIds(w.md)).toEqual([]);
    await expectRecovered(w, ["G0"]);
  }, 40_000);

  it("a slow link (200 KB/s) with a 1 MB message each way still completes correctly", async () => {
    // A timeout longer than one message takes to drain (see the BUG above for a shorter one).
    const w = await world(15_000);
    await seedImap(w.u, [["I0"], ["IBIG", MB]]);
    seedMaildir(w.md, [["M0"], ["MBIG", MB]]);
    w.proxy.slow(200 * 1024);
    const started = Date.now();
    const r = await run(w);
    expect(r.exitCode, summary(r)).toBe(EXIT.ok);
    // Really slowed: 2 MB at 200 KB/s.
    expect(Date.now() - started).toBeGreaterThan(8_000);
    expect(w.logs.join("\n")).not.toMatch(/retrying/);
    await expectRecovered(w, ["I0", "IBIG", "M0", "MBIG"]);
  }, 60_000);
});

describe.skipIf(skip).concurrent("a server that lets in only two connections at a time", () => {
  it("the store goes on with the lean connections it has: runs complete, proven, nothing lost", async () => {
    const w = await world();
    const tags = Array.from({ length: 30 }, (_, i) => `two-${i}`);
    await seedImap(
      w.u,
      tags.map((t) => [t]),
    );
    w.proxy.limitOpen(2);
    // The limit counts a run's connections until the server sees them closed, which may be a
    // moment after the run returns: each run starts once the last one's are gone, as a user's
    // next run would. (A run that starts sooner is refused at login: exit 1, nothing written.)
    const drained = async () => {
      for (let i = 0; i < 200 && w.proxy.stats.open > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(w.proxy.stats.open).toBe(0);
    };
    const first = await run(w);
    expect(first.exitCode, summary(first)).toBe(EXIT.ok);
    expect(maildirIds(w.md)).toEqual(ids(tags));
    // Three lean connections were tried; the third was refused and done without.
    expect(w.proxy.stats.connections).toBeGreaterThanOrEqual(3);
    await drained();
    expect((await run(w)).proven).toBe(true);
    seedMaildir(w.md, [["two-new"]]);
    await drained();
    const next = await run(w);
    expect(next.exitCode, summary(next)).toBe(EXIT.ok);
    // The final check runs three times in a row: without the limit, which the runs above met.
    w.proxy.limitOpen(null);
    await expectRecovered(w, [...tags, "two-new"]);
  });
});

describe.skipIf(skip).concurrent("a proxy that resets every connection", () => {
  it("at once: exit 1 saying the connection was lost or refused, quickly", async () => {
    const w = await world();
    await seedImap(w.u, [["R0"]]);
    w.proxy.refuse();
    const started = Date.now();
    const r = await run(w);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.exitCode, summary(r)).toBe(EXIT.failure);
    expect(r.failure ?? "").toMatch(/Cannot connect to 127\.0\.0\.1:\d+: .*(reset|closed|lost|refused)/i);
    expect(maildirIds(w.md)).toEqual([]);
    await expectRecovered(w, ["R0"]);
  });

  it("after login, on every command that selects: exit 1 within the retry budget", async () => {
    const w = await world();
    await seedImap(w.u, [["R0"]]);
    w.proxy.cutOnClientCommand(/^\S+ SELECT /i, { times: Infinity });
    const started = Date.now();
    const r = await run(w);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(r.exitCode, summary(r)).toBe(EXIT.failure);
    expect(r.failure ?? "").toMatch(/connection to the server was lost|Cannot connect/);
    await expectRecovered(w, ["R0"]);
  });
});

// ------------------------------------------------------------------ the CLI

type Result = CommandResult;

function runCli(args: string[], cwd: string): Promise<Result> {
  return runCommand(process.execPath, [CJS, ...args], { cwd, home: cwd, timeoutMs: 30_000 });
}

function cliSetup(imap: string[]): { dir: string; maildir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "tandem-netfault-cli-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const maildir = join(dir, "mail");
  for (const s of ["cur", "new", "tmp"]) mkdirSync(join(maildir, s), { recursive: true });
  const config = join(dir, "tandem.toml");
  writeFileSync(
    config,
    [
      "[defaults]",
      `stateDir = ${JSON.stringify(join(dir, "state"))}`,
      "[accounts.mail]",
      "[accounts.mail.left]",
      'type = "imap"',
      `connectTimeoutMs = ${CONNECT_TIMEOUT_MS}`,
      `commandTimeoutMs = ${COMMAND_TIMEOUT_MS}`,
      ...imap,
      "[accounts.mail.right]",
      'type = "maildir"',
      `path = ${JSON.stringify(maildir)}`,
      "",
    ].join("\n"),
  );
  return { dir, maildir, config };
}

function closedPort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

describe.skipIf(skip).concurrent("the CLI: unreachable, no TLS, untrusted TLS", () => {
  let tlsServer: DovecotServer | undefined;
  beforeAll(async () => {
    if (!existsSync(CJS)) {
      const r = spawnSync("npm", ["run", "build"], { cwd: root, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
    }
    tlsServer = await startDovecot({ tls: true });
  }, 180_000);
  afterAll(async () => {
    await tlsServer?.stop();
  });

  it("a closed port: exit 1, names host and port, nothing written to the Maildir", async () => {
    const port = await closedPort();
    const s = cliSetup([
      'host = "127.0.0.1"',
      `port = ${port}`,
      'tls = "none"',
      'user = "u"',
      'password = "p"',
    ]);
    const r = await runCli(["sync", "--config", s.config], s.dir);
    expect(r.code, r.out + r.err).toBe(EXIT.failure);
    expect(r.err).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*(refused|ECONNREFUSED)`));
    expect(maildirIds(s.maildir)).toEqual([]);
  });

  it('tls = "starttls" against a server without STARTTLS: exit 1, says so, never sends the password', async () => {
    const u = await server.addUser();
    const proxy = await startFaultProxy(server.port, server.host);
    proxies.push(proxy);
    // Dovecot with ssl = no does not offer STARTTLS.
    const caps = await withImap(u, async (c) => [...c.capabilities.keys()]);
    expect(caps).not.toContain("STARTTLS");
    const s = cliSetup([
      `host = "${proxy.host}"`,
      `port = ${proxy.port}`,
      'tls = "starttls"',
      `user = "${u.user}"`,
      `password = "${u.password}"`,
    ]);
    const r = await runCli(["sync", "--config", s.config], s.dir);
    expect(r.code, r.out + r.err).toBe(EXIT.failure);
    expect(r.err).toMatch(/does not offer STARTTLS/);
    expect(r.out + r.err).not.toContain(u.password);
    // What the client sent through the proxy: no LOGIN, no AUTHENTICATE, no secret.
    const sent = proxy.stats.commands.join("\n");
    expect(proxy.stats.connections).toBeGreaterThan(0);
    expect(sent).not.toMatch(/\b(LOGIN|AUTHENTICATE)\b/i);
    expect(sent).not.toContain(u.password);
    expect(sent).not.toContain(Buffer.from(`\0${u.user}\0${u.password}`).toString("base64"));
  });

  it("an untrusted certificate: exit 1 naming tlsCaFile; with tlsCaFile the same sync works", async () => {
    const srv = tlsServer!;
    const u = await srv.addUser();
    await withImapTls(u, srv.caFile!);
    const base = [
      `host = "${u.host}"`,
      `port = ${u.port}`,
      'tls = "implicit"',
      `user = "${u.user}"`,
      `password = "${u.password}"`,
    ];
    const bad = cliSetup(base);
    let r = await runCli(["sync", "--config", bad.config], bad.dir);
    expect(r.code, r.out + r.err).toBe(EXIT.failure);
    expect(r.err).toMatch(/certificate .*not trusted.*tlsCaFile/);
    expect(maildirIds(bad.maildir)).toEqual([]);
    const good = cliSetup([...base, `tlsCaFile = ${JSON.stringify(srv.caFile)}`]);
    r = await runCli(["sync", "--config", good.config], good.dir);
    expect(r.code, r.out + r.err).toBe(EXIT.ok);
    expect(maildirIds(good.maildir)).toEqual(ids(["T0"]));
  });
});

/** Seeds one message over implicit TLS. */
async function withImapTls(u: ImapUser, ca: string): Promise<void> {
  const { connectImap } = await import("../helpers/dovecot.js");
  const c = await connectImap(u, { ca });
  try {
    await c.append("INBOX", message("T0"), [], new Date(NOW - DAY));
  } finally {
    await c.logout().catch(() => {});
    c.close();
  }
}
