// Protocol garbage that Dovecot cannot be made to send, from a tiny scripted fake IMAP server on
// 127.0.0.1: garbage after the greeting, a huge literal announced in a FETCH response and then a
// closed connection, malformed answers to LOGIN. Each must end the run with exit 1 and a clear
// message: no crash, no hang (every case is bounded), nothing written to the Maildir side.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import type { AccountConfig } from "../../src/config/config.js";
import { DriverError } from "../../src/drivers/driver.js";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import { openStore } from "../../src/drivers/open-store.js";
import { runAccount } from "../../src/engine/sync-account.js";
import type { AccountReport } from "../../src/model/report.js";
import { NOW } from "../engine/harness.js";

const CONNECT_TIMEOUT_MS = 2_000;
const COMMAND_TIMEOUT_MS = 3_000;
/** No case may take longer than this (the timeouts above, a few retries, and slack). */
const BOUND_MS = 25_000;

/** Answers one client line (a scripted server replaces `normal` for the commands it cares about). */
type Script = (sock: Socket, tag: string, command: string, line: string) => void;

interface Fake {
  port: number;
  lines: string[];
  close(): Promise<void>;
}

const fakes: Fake[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const GREETING = "* OK [CAPABILITY IMAP4rev1 UIDPLUS] fake ready\r\n";

/** What a minimal server answers; scripts override single commands. */
/** A server whose every SELECT or EXAMINE answers [READ-ONLY], with these FLAGS and PERMANENTFLAGS. */
function readOnlyServer(exists: number, flags: string, permanent: string): Promise<Fake> {
  const caps = "IMAP4rev1 UIDPLUS NAMESPACE";
  return fakeServer({
    greeting: `* OK [CAPABILITY ${caps}] fake ready\r\n`,
    script: (sock, tag, command) => {
      if (command === "LOGIN") sock.write(`${tag} OK [CAPABILITY ${caps}] logged in\r\n`);
      else if (command === "SELECT" || command === "EXAMINE")
        sock.write(
          `* ${exists} EXISTS\r\n* FLAGS (${flags})\r\n* OK [PERMANENTFLAGS (${permanent})] ok\r\n` +
            `* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT ${exists + 1}] ok\r\n${tag} OK [READ-ONLY] selected\r\n`,
        );
      else normal(sock, tag, command);
    },
  });
}

function normal(sock: Socket, tag: string, command: string): void {
  switch (command) {
    case "CAPABILITY":
      sock.write(`* CAPABILITY IMAP4rev1 UIDPLUS\r\n${tag} OK done\r\n`);
      return;
    case "LOGIN":
      sock.write(`${tag} OK [CAPABILITY IMAP4rev1 UIDPLUS] logged in\r\n`);
      return;
    case "NAMESPACE":
      sock.write(`* NAMESPACE (("" "/")) NIL NIL\r\n${tag} OK done\r\n`);
      return;
    case "LIST":
      sock.write(`* LIST () "/" INBOX\r\n${tag} OK done\r\n`);
      return;
    case "SELECT":
    case "EXAMINE":
      sock.write(
        "* 1 EXISTS\r\n* FLAGS (\\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n" +
          `* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n${tag} OK [READ-WRITE] selected\r\n`,
      );
      return;
    case "LOGOUT":
      sock.end(`* BYE bye\r\n${tag} OK bye\r\n`);
      return;
    default:
      sock.write(`${tag} OK done\r\n`);
  }
}

async function fakeServer(opts: { greeting?: string | Buffer; script?: Script }): Promise<Fake> {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    sock.write(opts.greeting ?? GREETING);
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        lines.push(line);
        const [tag = "", cmd = ""] = line.split(" ");
        let command = cmd.toUpperCase();
        if (command === "UID") command = `UID ${(line.split(" ")[2] ?? "").toUpperCase()}`;
        if (sock.destroyed || !sock.writable) return;
        if (opts.script) opts.script(sock, tag, command, line);
        else normal(sock, tag, command);
      }
    });
  });
  server.maxConnections = 50;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const fake: Fake = {
    port: (server.address() as { port: number }).port,
    lines,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  fakes.push(fake);
  return fake;
}

/** The IMAP store alone, on a fake server, with the short timeouts of these cases. */
function openFakeStore(port: number, warnings: string[] = []) {
  return openImapStore({
    host: "127.0.0.1",
    port,
    tls: "none",
    user: "me",
    auth: { password: "fake-secret-pw" },
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    onWarning: (m) => warnings.push(m),
  });
}

function account(port: number): { account: AccountConfig; md: string } {
  const dir = mkdtempSync(join(tmpdir(), "tandem-fake-imap-"));
  dirs.push(dir);
  const md = join(dir, "mail");
  for (const s of ["cur", "new", "tmp"]) mkdirSync(join(md, s), { recursive: true });
  return {
    md,
    account: {
      name: "fake",
      stateDir: join(dir, "state"),
      conflict: "keep",
      maxDelete: 50,
      include: ["*"],
      exclude: [],
      rename: {},
      left: {
        type: "imap",
        host: "127.0.0.1",
        port,
        tls: "none",
        user: "me",
        password: "fake-secret-pw",
        passwordShell: false,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
      },
      right: { type: "maildir", path: md, layout: "maildir++" },
    },
  };
}

async function run(fake: Fake): Promise<{ r: AccountReport; md: string; took: number }> {
  const { account: acc, md } = account(fake.port);
  const started = Date.now();
  const r = await runAccount(acc, {
    dryRun: false,
    force: false,
    resync: false,
    now: NOW,
    log: () => {},
    retryDelayScale: 0.01,
    openStore: (side) => openStore(acc[side], { onWarning: () => {} }),
  });
  return { r, md, took: Date.now() - started };
}

/** Every file under the Maildir (INBOX and any folder). */
function maildirFiles(md: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  walk(md);
  return out;
}

function expectCleanFailure(res: { r: AccountReport; md: string; took: number }, message: RegExp): void {
  const { r, md, took } = res;
  const text = [r.failure ?? "", ...r.folders.flatMap((f) => f.errors)].join("\n");
  expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.failure);
  expect(text).toMatch(message);
  expect(text).not.toContain("fake-secret-pw");
  expect(took).toBeLessThan(BOUND_MS);
  expect(maildirFiles(md)).toEqual([]);
}

describe.concurrent("a fake IMAP server sending garbage", () => {
  it("garbage bytes right after the greeting: exit 1, no hang", async () => {
    const fake = await fakeServer({
      greeting: Buffer.concat([
        Buffer.from(GREETING),
        Buffer.from([0x00, 0xff, 0xfe, 0x1b, 0x5b, 0x32, 0x4a, 0x0d, 0x0a]),
        Buffer.from(")))((( {{{ ]]] \r\n* 12 garbage ( \r\n\x00\x00\r\n"),
      ]),
      script: () => {},
    });
    const res = await run(fake);
    expectCleanFailure(res, /Cannot connect to 127\.0\.0\.1:\d+|connection|timeout/i);
  });

  it("a greeting that is garbage from the first byte: exit 1, no hang", async () => {
    const fake = await fakeServer({ greeting: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n" });
    const res = await run(fake);
    expectCleanFailure(res, /Cannot connect to 127\.0\.0\.1:\d+/);
  });

  it("a huge literal announced in the listing FETCH, then the connection closed: exit 1, nothing written", async () => {
    const fake = await fakeServer({
      script: (sock, tag, command) => {
        if (command === "UID FETCH") {
          sock.end(
            '* 1 FETCH (UID 1 FLAGS () INTERNALDATE "30-Oct-2026 00:00:00 +0000" RFC822.SIZE {999999999}\r\nabc',
          );
          return;
        }
        normal(sock, tag, command);
      },
    });
    const res = await run(fake);
    expectCleanFailure(res, /lost|closed|connection|Listing messages/i);
  });

  it("a huge literal announced in the listing FETCH, then silence: times out, exit 1", async () => {
    const fake = await fakeServer({
      script: (sock, tag, command) => {
        if (command === "UID FETCH") {
          sock.write("* 1 FETCH (UID 1 FLAGS () BODY[] {999999999}\r\nabc");
          return;
        }
        normal(sock, tag, command);
      },
    });
    const res = await run(fake);
    expectCleanFailure(res, /lost|timeout|timed out|connection/i);
  }, 30_000);

  it.each([
    ["an unknown status", (t: string) => `${t} MAYBE who knows\r\n`],
    ["a BAD with no text", (t: string) => `${t} BAD\r\n`],
    ["a wrong tag", () => "ZZZ9 OK [CAPABILITY IMAP4rev1] logged in\r\n"],
    ["an unbalanced bracket and parenthesis", (t: string) => `${t} OK [CAPABILITY (IMAP4rev1 logged in\r\n`],
    ["binary garbage", () => "\x00\xff\xfe garbage (((\r\n"],
    ["a BYE then close", () => "* BYE go away\r\n"],
  ])("a malformed answer to LOGIN (%s): exit 1, no hang", async (_name, answer) => {
    const fake = await fakeServer({
      greeting: "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED-NOT] fake ready\r\n",
      script: (sock, tag, command) => {
        if (command === "LOGIN") {
          sock.write(answer(tag));
          if (/BYE/.test(answer(tag))) sock.end();
          return;
        }
        normal(sock, tag, command);
      },
    });
    const res = await run(fake);
    expect(fake.lines.some((l) => / LOGIN /i.test(l))).toBe(true);
    expectCleanFailure(res, /Cannot (log in|connect)|connection|timeout/i);
  });

  it("a server that keeps no keywords, read-only: the lean SELECT's PERMANENTFLAGS and READ-ONLY say so", async () => {
    const fake = await readOnlyServer(0, "\\Seen \\Flagged", "\\Seen \\Flagged");
    const warnings: string[] = [];
    const store = await openFakeStore(fake.port, warnings);
    try {
      expect(store.caps.keywords).toBe(true);
      const folder = await store.openFolder("INBOX");
      expect(fake.lines.some((l) => / SELECT "INBOX"/.test(l))).toBe(true);
      expect(store.caps.keywords).toBe(false);
      expect(warnings.filter((w) => w.includes("read-only"))).toHaveLength(1);
      await folder.close();
    } finally {
      await store.close();
    }
  });

  it("a folder whose SELECT says READ-ONLY: setFlags and remove are the folder's ESTORE, nothing stored", async () => {
    const fake = await readOnlyServer(1, "\\Seen", "");
    const warnings: string[] = [];
    const store = await openFakeStore(fake.port, warnings);
    try {
      const folder = await store.openFolder("INBOX");
      const flags = await folder.setFlags(["7/1"], [], ["\\Seen"]).catch((e: unknown) => e);
      expect(flags).toBeInstanceOf(DriverError);
      expect(flags).toMatchObject({ scope: "folder", code: "ESTORE" });
      expect(String((flags as Error).message)).toMatch(/read-only/);
      const removed = await folder.remove(["7/1"]).catch((e: unknown) => e);
      expect(removed).toMatchObject({ scope: "folder", code: "ESTORE" });
      expect(fake.lines.filter((l) => / SELECT "INBOX"/.test(l)).length).toBeGreaterThan(1);
      expect(fake.lines.some((l) => /UID (STORE|EXPUNGE)/i.test(l))).toBe(false);
      expect(warnings.filter((w) => w.includes("read-only"))).toHaveLength(1);
      await folder.close();
    } finally {
      await store.close();
    }
  });

  it("a UID STORE refused: the folder's ESTORE, and no UID EXPUNGE after it; lost during a STORE: ECONNLOST, retryable", async () => {
    const fake = await fakeServer({
      script: (sock, tag, command, line) => {
        if (command === "UID STORE" && /\\Deleted|Refused/.test(line))
          sock.write(`${tag} NO [CANNOT] not now\r\n`);
        else if (command === "UID STORE" && line.includes("Lost")) sock.destroy();
        // CONDSTORE servers report MODSEQ even for .SILENT stores.
        else if (command === "UID STORE") sock.write(`* 1 FETCH (UID 1 MODSEQ (9))\r\n${tag} OK done\r\n`);
        else normal(sock, tag, command);
      },
    });
    const store = await openFakeStore(fake.port);
    try {
      const folder = await store.openFolder("INBOX");
      await folder.setFlags(["7/1"], ["\\Seen"], []);
      const refused = await folder.setFlags(["7/1"], ["Refused"], []).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(DriverError);
      expect(refused).toMatchObject({ scope: "folder", code: "ESTORE", retryable: false });
      expect((refused as Error).message).toMatch(
        /^Adding Refused in "INBOX": the server refused the command/,
      );
      const removed = await folder.remove(["7/1"]).catch((e: unknown) => e);
      expect(removed).toMatchObject({ scope: "folder", code: "ESTORE" });
      expect(fake.lines.some((l) => /UID EXPUNGE/i.test(l))).toBe(false);
      const lost = await folder.setFlags(["7/1"], ["Lost"], []).catch((e: unknown) => e);
      expect(lost).toMatchObject({ scope: "store", code: "ECONNLOST", retryable: true });
      // The next write opens a new connection and selects the folder there.
      await folder.setFlags(["7/1"], [], ["\\Seen"]);
      expect(fake.lines.filter((l) => / SELECT "INBOX"/.test(l)).length).toBeGreaterThan(1);
    } finally {
      await store.close();
    }
  });

  it("the driver alone: the huge literal is a store-scoped DriverError, never an unhandled crash", async () => {
    const fake = await fakeServer({
      script: (sock, tag, command) => {
        if (command === "UID FETCH") {
          sock.end("* 1 FETCH (UID 1 BODY[] {999999999}\r\n");
          return;
        }
        normal(sock, tag, command);
      },
    });
    const store = await openFakeStore(fake.port);
    try {
      const folder = await store.openFolder("INBOX");
      const err = await (async () => {
        for await (const _ of folder.list()) {
          // nothing
        }
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DriverError);
      expect(err).toMatchObject({ scope: "store", retryable: true });
    } finally {
      await store.close();
    }
  });
});
