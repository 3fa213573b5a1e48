// The lean IMAP path (src/drivers/imap/lean) against a real Dovecot: its listing equals imapflow's,
// bodies come back byte-exact, a 50 MB APPEND is streamed, TLS and logins behave like the store's.
import { createHash } from "node:crypto";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { FetchMessageObject } from "imapflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriverError, type Folder, type Store } from "../../src/drivers/driver.js";
import { connectError } from "../../src/drivers/imap/errors.js";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import { LeanClient, type LeanOptions } from "../../src/drivers/imap/lean/client.js";
import {
  decodeMailboxName,
  encodeMailboxName,
  parseDateTime,
  parseFetch,
} from "../../src/drivers/imap/lean/parse.js";
import { toMeta } from "../../src/drivers/imap/message-utils.js";
import type { MessageMeta } from "../../src/model/types.js";
import {
  connectImap,
  type DovecotServer,
  dovecotAvailable,
  type ImapUser,
  startDovecot,
} from "../helpers/dovecot.js";

const skip = !dovecotAvailable() && !process.env.CI;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const MB = 1024 * 1024;

function leanOpts(u: ImapUser, extra: Partial<LeanOptions> = {}): LeanOptions {
  return { host: u.host, port: u.port, tls: "none", user: u.user, auth: { password: u.password }, ...extra };
}

function openStore(u: ImapUser, extra: Partial<LeanOptions> = {}): Promise<Store> {
  return openImapStore(leanOpts(u, extra));
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function* once(b: Buffer): AsyncIterable<Uint8Array> {
  yield b;
}

/** The listing as imapflow reports it (the old path), ascending UID. */
async function flowListing(u: ImapUser, path: string): Promise<MessageMeta[]> {
  const c = await connectImap(u);
  try {
    const box = await c.mailboxOpen(path, { readOnly: true });
    const out: MessageMeta[] = [];
    for await (const m of c.fetch(
      "1:*",
      { uid: true, flags: true, size: true, internalDate: true },
      { uid: true },
    ) as AsyncIterable<FetchMessageObject>) {
      out.push(toMeta(m, String(box.uidValidity)));
    }
    return out.sort((a, b) => Number(a.key.split("/")[1]) - Number(b.key.split("/")[1]));
  } finally {
    await c.logout();
  }
}

/** The message bytes as imapflow reads them. */
async function flowBody(u: ImapUser, path: string, uid: number): Promise<Buffer> {
  const c = await connectImap(u);
  try {
    await c.mailboxOpen(path, { readOnly: true });
    const m = await c.fetchOne(String(uid), { source: true }, { uid: true });
    const source = m === false ? undefined : m.source;
    return source ?? Buffer.alloc(0);
  } finally {
    await c.logout();
  }
}

const TRICKY = [
  "From: a@example.org",
  "Subject: literal in odd places",
  "Message-ID: <tricky@example.org>",
  "",
  "A line that looks like the end of a FETCH response:",
  ")",
  "* 5 FETCH (UID 99 FLAGS (\\Seen) RFC822.SIZE 1 INTERNALDATE {26}",
  "01-Jan-2026 00:00:00 +0000)",
  "L9 OK Fetch completed.",
  "{12}",
  "",
].join("\r\n");

describe("lean parser (pure)", () => {
  it("parses INTERNALDATE with offsets and a space-padded day", () => {
    expect(parseDateTime("01-Jan-2026 10:00:00 +0000")).toBe(Date.UTC(2026, 0, 1, 10));
    expect(parseDateTime(" 1-Jan-2026 10:00:00 +0130")).toBe(Date.UTC(2026, 0, 1, 8, 30));
    expect(parseDateTime("31-dec-2025 23:59:59 -0800")).toBe(Date.UTC(2026, 0, 1, 7, 59, 59));
    expect(parseDateTime("garbage")).toBeNaN();
  });

  it("reads FETCH items in any order, quoted or literal, skipping what it does not know", () => {
    const row = parseFetch({
      text: '* 12 FETCH (MODSEQ (77) FLAGS (\\Seen $Label1 \\Recent a&b) BODYSTRUCTURE ("text" "plain" ("charset" "x\\"y") NIL NIL "7bit" 3 1) INTERNALDATE {26} RFC822.SIZE 345 UID 7 BODY[HEADER.FIELDS (SUBJECT)] {5} BODY[] "q\\"x")',
      literals: [Buffer.from("01-Jan-2026 10:00:00 +0000"), Buffer.from("hello")],
    });
    expect(row).toEqual({
      seq: 12,
      uid: 7,
      flags: ["\\Seen", "$Label1", "\\Recent", "a&b"],
      size: 345,
      date: Date.UTC(2026, 0, 1, 10),
      body: Buffer.from('q"x'),
    });
    expect(parseFetch({ text: "* 3 EXISTS", literals: [] })).toBeNull();
  });

  it("encodes mailbox names in modified UTF-7", () => {
    expect(encodeMailboxName("INBOX")).toBe("INBOX");
    expect(encodeMailboxName("a&b")).toBe("a&-b");
    expect(encodeMailboxName("Entwürfe")).toBe("Entw&APw-rfe");
    expect(encodeMailboxName("日本語")).toBe("&ZeVnLIqe-");
  });

  it("decodes listed mailbox names, the exact inverse; refuses what is no valid modified UTF-7", () => {
    for (const name of [
      "INBOX",
      "a&b",
      "&",
      "&&-",
      "Entwürfe",
      "日本語",
      "mixed 日本 & Entwürfe/x",
      "😀 emoji",
      "tab\there",
    ])
      expect(decodeMailboxName(encodeMailboxName(name))).toBe(name);
    expect(decodeMailboxName("Entw&APw-rfe")).toBe("Entwürfe");
    expect(decodeMailboxName("a&-b")).toBe("a&b");
    // A stray "&", a run that is no base64, half a UTF-16 unit, printable ASCII in a run, 8 bits.
    for (const wire of ["a&b", "&APw", "&AP!-", "&AP-", "&AGE-", "Entw\u00fcrfe"])
      expect(decodeMailboxName(wire)).toBeNull();
  });
});

describe.skipIf(skip)("lean IMAP path against Dovecot", () => {
  let server: DovecotServer;
  let secure: DovecotServer;
  beforeAll(async () => {
    [server, secure] = await Promise.all([startDovecot(), startDovecot({ tls: true })]);
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), secure?.stop()]);
  });

  async function withFolder<T>(u: ImapUser, name: string, fn: (f: Folder, s: Store) => Promise<T>) {
    const store = await openStore(u);
    try {
      if (name !== "INBOX") await store.createFolder(name);
      return await fn(await store.openFolder(name), store);
    } finally {
      await store.close();
    }
  }

  it("lists exactly what imapflow lists: keywords, odd flags, non-ASCII folder, CRLF/LF, tricky bodies", async () => {
    const u = await server.addUser();
    const name = "Boîte €uro & 日本";
    const bodies = [
      Buffer.from("Subject: crlf\r\nMessage-ID: <a@x>\r\n\r\nHello\r\n"),
      Buffer.from("Subject: lf\nMessage-ID: <b@x>\n\nHello\nbare LF\n"),
      Buffer.from(TRICKY),
      Buffer.from("Subject: 8bit\r\n\r\nünïcödé ✓\r\n"),
      Buffer.from("\r\n"),
    ];
    const flagSets = [
      ["\\Seen", "$Label1", "Foo.Bar"],
      ["\\Answered", "\\Flagged", "\\Draft", "x+y", "#tag"],
      ["a&b", "UPPER", "lower", "$Forwarded"],
      [],
      ["\\Seen"],
    ];
    await withFolder(u, name, async (folder) => {
      const keys: string[] = [];
      for (let i = 0; i < bodies.length; i++) {
        keys.push(
          await folder.append({
            body: once(bodies[i]!),
            size: bodies[i]!.length,
            flags: flagSets[i]!,
            date: Date.UTC(2026, 0, 1 + i, 10, 0, 0),
          }),
        );
      }
      // One more from another client, so that \Recent shows up in someone's view.
      const other = await connectImap(u);
      await other.append(name, Buffer.from("Subject: other\r\n\r\nx\r\n"), ["$Other"]);
      await other.logout();

      const lean = await collect(folder.list());
      const flow = await flowListing(u, name);
      expect(lean).toEqual(flow);
      expect(lean.map((m) => m.key).slice(0, keys.length)).toEqual(keys);
      expect(lean[0]!.flags).toEqual(["$Label1", "Foo.Bar", "\\Seen"]);
      expect(lean[1]!.size).toBe(bodies[1]!.length + 5); // each of the 5 bare LFs counts as CRLF
      expect(lean.every((m) => !m.flags.some((f) => /recent/i.test(f)))).toBe(true);

      // Byte-exact reads, one by one and in bulk, equal to imapflow's.
      const many = new Map(
        (await collect(folder.readMany!(lean.map((m) => m.key)))).map((x) => [x.key, x.body]),
      );
      expect(many.size).toBe(lean.length);
      for (const m of lean) {
        const uid = Number(m.key.split("/")[1]);
        const expected = await flowBody(u, name, uid);
        expect(Buffer.from(many.get(m.key)!).equals(expected), m.key).toBe(true);
        expect((await readAll(folder.read(m.key))).equals(expected), m.key).toBe(true);
        expect(expected.length).toBe(m.size);
      }
      expect(Buffer.from(many.get(keys[2]!)!).toString("latin1")).toBe(TRICKY);
      // Still unread: BODY.PEEK.
      expect((await collect(folder.list()))[3]!.flags).toEqual([]);
    });
  });

  it("a 0-byte message: appended and read back, or refused cleanly", async () => {
    const u = await server.addUser();
    await withFolder(u, "INBOX", async (folder) => {
      const res = await folder
        .append({ body: once(Buffer.alloc(0)), size: 0, flags: [], date: Date.now() })
        .catch((e: unknown) => e);
      if (res instanceof Error) {
        expect(res).toBeInstanceOf(DriverError);
        expect((res as DriverError).scope).not.toBe("store");
      } else {
        const [meta] = await collect(folder.list());
        expect(meta?.key).toBe(res);
        expect((await readAll(folder.read(res as string))).length).toBe(meta!.size);
      }
      // The connection is still good either way.
      const key = await folder.append({
        body: once(Buffer.from("S: x\r\n\r\ny\r\n")),
        size: 11,
        flags: [],
        date: 0,
      });
      expect((await readAll(folder.read(key))).toString()).toBe("S: x\r\n\r\ny\r\n");
    });
  });

  it("APPENDUID: the key is the UID the server assigned; a wrong size is refused, nothing stored", async () => {
    const u = await server.addUser();
    await withFolder(u, "INBOX", async (folder) => {
      const a = await folder.append({
        body: once(Buffer.from("S: a\r\n\r\na\r\n")),
        size: 11,
        flags: [],
        date: 0,
      });
      const b = await folder.append({
        body: once(Buffer.from("S: b\r\n\r\nb\r\n")),
        size: 11,
        flags: [],
        date: 0,
      });
      expect(a).toBe(`${folder.identity}/1`);
      expect(b).toBe(`${folder.identity}/2`);
      const err = await folder
        .append({ body: once(Buffer.from("S: c\r\n\r\nc\r\n")), size: 20, flags: [], date: 0 })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ESIZE", scope: "message" });
      const err2 = await folder
        .append({ body: once(Buffer.from("S: d\r\n\r\nd-longer\r\n")), size: 11, flags: [], date: 0 })
        .catch((e: unknown) => e);
      expect(err2).toMatchObject({ code: "ESIZE", scope: "message" });
      expect((await collect(folder.list())).map((m) => m.key)).toEqual([a, b]);
    });
  });

  it("streams a 50 MB APPEND from a generator reusing one buffer: RSS grows < 20 MB, read back exact", async () => {
    const u = await server.addUser();
    await withFolder(u, "INBOX", async (folder) => {
      const CHUNK = 64 * 1024;
      const total = 50 * MB;
      const buf = Buffer.alloc(CHUNK);
      const head = Buffer.from("From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@x>\r\n\r\n");
      const sent = createHash("sha256");
      let peak = 0;
      gc();
      const base = process.memoryUsage().rss;
      async function* body(): AsyncIterable<Uint8Array> {
        for (let off = 0, i = 0; off < total; off += CHUNK, i++) {
          // 63 printable bytes + LF per line would be bare LFs; use CRLF lines of 64 bytes.
          const line = Buffer.from(`${String(i).padStart(10, "0")} ${"x".repeat(51)}\r\n`);
          for (let p = 0; p < CHUNK; p += 64) line.copy(buf, p);
          if (i === 0) head.copy(buf, 0);
          const n = Math.min(CHUNK, total - off);
          sent.update(buf.subarray(0, n));
          if (i % 64 === 0) peak = Math.max(peak, process.memoryUsage().rss - base);
          yield buf.subarray(0, n);
        }
      }
      const key = await folder.append({ body: body(), size: total, flags: [], date: Date.now() });
      peak = Math.max(peak, process.memoryUsage().rss - base);
      console.log(`lean APPEND of 50 MB: RSS growth ${(peak / MB).toFixed(1)} MB`);
      expect(peak).toBeLessThan(20 * MB);
      const got = createHash("sha256");
      let n = 0;
      for await (const c of folder.read(key)) {
        got.update(c);
        n += c.length;
      }
      expect(n).toBe(total);
      expect(got.digest("hex")).toBe(sent.digest("hex"));
    });
  }, 120_000);

  it("implicit TLS with the test CA; without it → ETLS", async () => {
    const u = await secure.addUser();
    const store = await openStore(u, { tls: "implicit", tlsCaFile: secure.caFile! });
    try {
      const folder = await store.openFolder("INBOX");
      const key = await folder.append({
        body: once(Buffer.from("S: t\r\n\r\nt\r\n")),
        size: 11,
        flags: [],
        date: 0,
      });
      expect((await collect(folder.list())).map((m) => m.key)).toEqual([key]);
    } finally {
      await store.close();
    }
    const err = await LeanClient.open(leanOpts(u, { tls: "implicit" })).catch((e: unknown) =>
      connectError(e, { user: u.user, host: u.host, port: u.port, tls: "implicit" }),
    );
    expect(err).toMatchObject({ scope: "store", code: "ETLS" });
    expect((err as Error).message).toContain("tlsCaFile");
  });

  it("STARTTLS: upgrades (bridged to Dovecot's TLS port), and refuses a server that does not offer it", async () => {
    const u = await secure.addUser();
    const bridge = await starttlsBridge(secure.port);
    try {
      const c = await LeanClient.open(
        leanOpts(u, { port: bridge.port, tls: "starttls", tlsCaFile: secure.caFile! }),
      );
      try {
        expect(c.caps.has("IMAP4REV1")).toBe(true);
        expect(bridge.plaintext.join("\n")).not.toContain(u.password);
        expect(bridge.plaintext.join("\n")).not.toMatch(/LOGIN|AUTHENTICATE/i);
        await c.command("NOOP");
      } finally {
        await c.logout();
      }
    } finally {
      await bridge.close();
    }
    const plain = await server.addUser();
    const err = await LeanClient.open(leanOpts(plain, { tls: "starttls" })).catch((e: unknown) =>
      connectError(e, { user: plain.user, host: plain.host, port: plain.port, tls: "starttls" }),
    );
    expect(err).toMatchObject({ scope: "store", code: "ETLS" });
    expect((err as Error).message).toMatch(/does not offer STARTTLS/);
  });

  it("wrong password → EAUTH (AUTHENTICATE PLAIN and LOGIN with a literal), no secret in the message", async () => {
    const u = await server.addUser();
    const map = (e: unknown) => connectError(e, { user: u.user, host: u.host, port: u.port, tls: "none" });
    for (const extra of [
      { auth: { password: "wrong-secret-xyz" } },
      { auth: { password: 'wrong "quoted\\" ünï' }, preferLogin: true },
    ]) {
      const err = await LeanClient.open(leanOpts(u, extra)).catch(map);
      expect(err).toBeInstanceOf(DriverError);
      expect(err).toMatchObject({ scope: "store", code: "EAUTH", retryable: false });
      expect((err as Error).message).not.toContain("wrong");
    }
    // LOGIN with the right password (a quoted string) works.
    const c = await LeanClient.open(leanOpts(u, { preferLogin: true }));
    expect(c.caps.has("UIDPLUS")).toBe(true);
    await c.logout();
  });

  it("a folder whose UIDVALIDITY changed is refused on the lean path (EUIDVALIDITY)", async () => {
    const u = await server.addUser();
    const store = await openStore(u);
    try {
      await store.createFolder("Box");
      const folder = await store.openFolder("Box");
      await store.removeFolder("Box");
      await store.createFolder("Box");
      const err = await collect(folder.list()).catch((e: unknown) => e);
      expect(err).toMatchObject({ scope: "folder", code: "EUIDVALIDITY" });
      const err2 = await folder
        .append({ body: once(Buffer.from("S: t\r\n\r\nt\r\n")), size: 11, flags: [], date: 0 })
        .catch((e: unknown) => e);
      expect(err2).toMatchObject({ scope: "folder", code: "EUIDVALIDITY" });
    } finally {
      await store.close();
    }
  });
});

/**
 * A plaintext front that offers STARTTLS, answers it, and then pipes the raw bytes to Dovecot's
 * implicit-TLS port: the TLS handshake and everything after it is Dovecot's.
 */
async function starttlsBridge(
  tlsPort: number,
): Promise<{ port: number; plaintext: string[]; close(): Promise<void> }> {
  const plaintext: string[] = [];
  const sockets = new Set<Socket>();
  const srv: Server = createServer((client) => {
    sockets.add(client);
    client.on("error", () => {});
    client.write("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] bridge ready\r\n");
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString("latin1");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const line = buf.slice(0, nl).trim();
      plaintext.push(line);
      const [tag, cmd] = line.split(" ");
      if (cmd?.toUpperCase() !== "STARTTLS") {
        client.end(`${tag} BAD only STARTTLS here\r\n`);
        return;
      }
      client.off("data", onData);
      client.write(`${tag} OK Begin TLS negotiation now\r\n`);
      const up = netConnect({ host: "127.0.0.1", port: tlsPort });
      sockets.add(up);
      up.on("error", () => client.destroy());
      client.on("error", () => up.destroy());
      client.pipe(up);
      up.pipe(client);
    };
    client.on("data", onData);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as { port: number }).port,
    plaintext,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}
