// The IMAP driver against a real Dovecot: folders, listing, reading, writing, changes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/drivers/driver.js";
import { DriverError } from "../../src/drivers/driver.js";
import type { ImapFolder } from "../../src/drivers/imap/imap-folder.js";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import type { MessageMeta } from "../../src/model/types.js";
import {
  connectImap,
  type DovecotServer,
  dovecotAvailable,
  type ImapUser,
  startDovecot,
} from "../helpers/dovecot.js";

const skip = !dovecotAvailable() && !process.env.CI;

function openStore(u: ImapUser, extra: { warnings?: string[]; debug?: string[] } = {}): Promise<Store> {
  return openImapStore({
    host: u.host,
    port: u.port,
    tls: "none",
    user: u.user,
    auth: { password: u.password },
    onWarning: (m) => extra.warnings?.push(m),
    ...(extra.debug ? { debug: (m: string) => extra.debug?.push(m) } : {}),
  });
}

function message(id: string | null, body = "Hello.", eol = "\r\n"): Buffer {
  const lines = [
    "From: Alice <alice@example.org>",
    "To: Bob <bob@example.org>",
    `Subject: test ${id ?? "no id"}`,
    "Date: Thu, 01 Jan 2026 10:00:00 +0000",
    ...(id ? [`Message-ID: <${id}@example.org>`] : []),
    "",
    body,
    "",
  ];
  return Buffer.from(lines.join(eol), "utf8");
}

async function* chunks(buf: Buffer, size = 1000): AsyncIterable<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
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

function byKey(metas: MessageMeta[]): Map<string, MessageMeta> {
  return new Map(metas.map((m) => [m.key, m]));
}

/** imapflow logs every line it sends or reads: none means it never connected. */
function imapflowLines(debug: string[]): string[] {
  return debug.filter((l) => /^imap (debug|info|warn|error) /.test(l));
}

/** The commands sent on lean connections, tags dropped. */
function leanWire(debug: string[]): string[] {
  return debug.filter((l) => l.startsWith("imap lean C: ")).map((l) => l.replace(/^imap lean C: L\d+ /, ""));
}

/** As leanWire(), logins left out: open() logs its spare connections in while the test goes on. */
function leanSent(debug: string[]): string[] {
  return leanWire(debug).filter((l) => !/^(AUTHENTICATE|LOGIN|CAPABILITY) /.test(l) && l !== "CAPABILITY");
}

let seeded = 0;

/** Appends messages to `path` from another client; their UIDs, in order. */
async function seed(u: ImapUser, path: string, flags: string[][]): Promise<number[]> {
  const other = await connectImap(u);
  try {
    const uids: number[] = [];
    for (const f of flags) {
      const res = await other.append(path, message(`seed-${++seeded}`), f);
      const uid = res ? res.uid : undefined;
      if (uid === undefined) throw new Error("no APPENDUID");
      uids.push(uid);
    }
    return uids;
  } finally {
    await other.logout();
  }
}

/** Creates folders at `paths` from another client. */
async function createMailboxes(u: ImapUser, paths: string[]): Promise<void> {
  const other = await connectImap(u);
  try {
    for (const path of paths) await other.mailboxCreate(path);
  } finally {
    await other.logout();
  }
}

/** UID → sorted flags of every message in `path`, as another client sees them. */
async function seenByOther(u: ImapUser, path: string): Promise<Map<number, string[]>> {
  const other = await connectImap(u);
  try {
    const box = await other.mailboxOpen(path);
    const out = new Map<number, string[]>();
    if (box.exists === 0) return out;
    for await (const m of other.fetch("1:*", { uid: true, flags: true }, { uid: true })) {
      out.set(m.uid, [...(m.flags ?? [])].filter((f) => f !== "\\Recent").sort());
    }
    return out;
  } finally {
    await other.logout();
  }
}

describe.skipIf(skip)("IMAP driver against Dovecot", () => {
  let server: DovecotServer;
  beforeAll(async () => {
    server = await startDovecot();
  });
  afterAll(() => server?.stop());

  /** The store of `u`, closed afterwards; `debug` collects its debug lines (the wire, redacted). */
  async function withStore<T>(
    u: ImapUser,
    fn: (s: Awaited<ReturnType<typeof openStore>>, debug: string[]) => Promise<T>,
  ) {
    const debug: string[] = [];
    const store = await openStore(u, { debug });
    try {
      return await fn(store, debug);
    } finally {
      await store.close();
    }
  }

  it("open() logs in its spare lean connections at once: the print batch then waits for no login", async () => {
    const u = await server.addUser();
    await createMailboxes(
      u,
      Array.from({ length: 20 }, (_, i) => `P${i}`),
    );
    await withStore(u, async (store, debug) => {
      const logins = () => debug.filter((l) => l.endsWith("opening a lean connection")).length;
      for (
        let t = 0;
        t < 100 && leanWire(debug).filter((l) => /^(LOGIN|AUTHENTICATE)/.test(l)).length < 3;
        t++
      )
        await new Promise((r) => setTimeout(r, 20));
      expect(logins()).toBe(3);
      const names = Array.from({ length: 20 }, (_, i) => `P${i}`);
      const batch = store.printFolders!(names);
      for (const name of names) expect(await batch.get(name)).toMatchObject({ count: 0 });
      // Twenty folders fill three connections' windows: all three are used, none logs in anew.
      expect(logins()).toBe(3);
    });
  });

  it("lists folders: nested, non-ASCII, spaces, INBOX, \\Noselect; creates and removes", async () => {
    const u = await server.addUser();
    const other = await connectImap(u);
    try {
      // A parent that exists only as a hierarchy level (Maildir++ does not create it).
      await other.mailboxCreate("Level.Leaf");
      await other.mailboxDelete("Level").catch(() => {});
    } finally {
      await other.logout();
    }
    await withStore(u, async (store) => {
      expect(store.label).toBe(`imap://${u.user}@${u.host}:${u.port}`);
      await store.createFolder("Archive/2024/Q1");
      await store.createFolder("Entwürfe");
      await store.createFolder("With Space");
      await store.createFolder("Entwürfe"); // existing: no error
      const folders = await store.listFolders();
      const names = folders.map((f) => f.name);
      for (const n of [
        "INBOX",
        "Archive",
        "Archive/2024",
        "Archive/2024/Q1",
        "Entwürfe",
        "With Space",
        "Level/Leaf",
      ]) {
        expect(names).toContain(n);
      }
      expect(folders.find((f) => f.name === "Level")).toEqual({ name: "Level", noselect: true });
      expect(folders.find((f) => f.name === "INBOX")?.noselect).toBeUndefined();

      // On the server the names are the server's: "." delimiter, modified UTF-7 on the wire.
      const listed = await server.doveadm(["mailbox", "list", "-u", u.user]);
      expect(listed).toContain("Archive.2024.Q1");
      expect(listed).toContain("Entwürfe");

      const f = await store.openFolder("Entwürfe");
      expect(f.name).toBe("Entwürfe");
      await f.close();

      await store.removeFolder("With Space");
      expect((await store.listFolders()).map((x) => x.name)).not.toContain("With Space");

      const bad = await store.openFolder("dotted.name").catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(DriverError);
      expect(bad).toMatchObject({ scope: "folder", code: "EBADNAME" });
      const missing = await store.openFolder("Nope").catch((e: unknown) => e);
      expect(missing).toMatchObject({ scope: "folder", code: "ENOFOLDER" });
    });
  });

  it("appends with flags and date; list shows the same INTERNALDATE, size and flags", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      expect(store.caps).toEqual({ keywords: true, incremental: true, stableKeys: true });
      const folder = await store.openFolder("INBOX");
      expect(folder.identity).toMatch(/^\d+$/);
      expect(folder.marker).toMatchObject({ uidNext: 1, count: 0 });
      expect(folder.marker.highestModseq).toMatch(/^\d+$/);
      const body = message("append-1");
      const date = Date.UTC(2023, 4, 6, 7, 8, 9);
      const key = await folder.append({
        body: chunks(body),
        size: body.length,
        flags: ["\\Seen", "$Forwarded", "\\Recent"],
        date,
      });
      expect(key).toBe(`${folder.identity}/1`);
      const metas = await collect(folder.list());
      expect(metas).toEqual([{ key, flags: ["$Forwarded", "\\Seen"], size: body.length, date }]);
      // minDate: inside and outside the window (the store may return more, never fewer)
      expect((await collect(folder.list({ minDate: date - 1000 }))).map((m) => m.key)).toEqual([key]);
      expect(await collect(folder.list({ minDate: Date.UTC(2030, 0, 1) }))).toEqual([]);
    });
  });

  it("lists in ascending UID order and with minDate returns the messages in the window", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      const folder = await store.openFolder("INBOX");
      const old = Date.UTC(2020, 0, 1);
      const recent = Date.now() - 3 * 24 * 3600 * 1000;
      const keys: string[] = [];
      for (let i = 0; i < 12; i++) {
        const body = message(`order-${i}`);
        keys.push(await folder.append({ body: chunks(body), flags: [], date: i % 2 ? old : recent }));
      }
      const all = await collect(folder.list());
      expect(all.map((m) => m.key)).toEqual(keys);
      const windowed = (await collect(folder.list({ minDate: recent - 3600_000 }))).map((m) => m.key);
      expect(windowed).toEqual(keys.filter((_, i) => i % 2 === 0));
    });
  });

  it("reads byte-exact (CRLF) and normalizes bare LF to CRLF; reading does not set \\Seen", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      const folder = await store.openFolder("INBOX");
      const crlf = message("read-crlf", "Line one\r\nünïcödé  \r\n.\r\nend");
      const lf = message("read-lf", "Line one\nline two", "\n");
      const k1 = await folder.append({ body: chunks(crlf, 7), flags: [], date: Date.now() });
      const k2 = await folder.append({ body: chunks(lf), flags: [], date: Date.now() });
      expect((await readAll(folder.read(k1))).equals(crlf)).toBe(true);
      const back = await readAll(folder.read(k2));
      expect(back.toString("utf8")).toBe(lf.toString("utf8").replace(/\n/g, "\r\n"));
      const metas = byKey(await collect(folder.list()));
      expect(metas.get(k2)?.size).toBe(back.length); // RFC822.SIZE counts the CRLF form
      const header = Buffer.from(await folder.readHeader(k1));
      expect(header.toString()).toMatch(/^From: Alice.*\r\n\r\n$/s);
      expect(header.toString()).toContain("Message-ID: <read-crlf@example.org>");
      for (const m of metas.values()) expect(m.flags).not.toContain("\\Seen");
      // an early return releases the mailbox lock: the next call works
      for await (const _ of folder.read(k1)) break;
      expect(await collect(folder.list())).toHaveLength(2);
      const gone = await readAll(folder.read(`${folder.identity}/999`)).catch((e: unknown) => e);
      expect(gone).toMatchObject({ scope: "message", code: "ENOTFOUND" });
    });
  });

  it("sets and removes flags, keywords included, with one STORE per change", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      const folder = await store.openFolder("INBOX");
      const keys: string[] = [];
      for (let i = 0; i < 3; i++) {
        keys.push(
          await folder.append({ body: chunks(message(`flags-${i}`)), flags: ["\\Seen"], date: Date.now() }),
        );
      }
      await folder.setFlags([keys[0]!, keys[2]!], ["\\Flagged", "$Forwarded", "\\Recent"], ["\\Seen"]);
      let metas = byKey(await collect(folder.list()));
      expect(metas.get(keys[0]!)?.flags).toEqual(["$Forwarded", "\\Flagged"]);
      expect(metas.get(keys[1]!)?.flags).toEqual(["\\Seen"]);
      expect(metas.get(keys[2]!)?.flags).toEqual(["$Forwarded", "\\Flagged"]);
      await folder.setFlags([keys[0]!], [], ["$Forwarded"]);
      metas = byKey(await collect(folder.list()));
      expect(metas.get(keys[0]!)?.flags).toEqual(["\\Flagged"]);
      // another client sees the same
      const other = await connectImap(u);
      try {
        await other.mailboxOpen("INBOX");
        const row = await other.fetchOne(keys[2]!.split("/")[1]!, { flags: true }, { uid: true });
        expect(row && [...(row.flags ?? [])].sort()).toEqual(["$Forwarded", "\\Flagged"]);
      } finally {
        await other.logout();
      }
      const stale = await folder.setFlags(["1/1"], ["\\Seen"], []).catch((e: unknown) => e);
      expect(stale).toMatchObject({ scope: "folder", code: "EUIDVALIDITY" });
    });
  });

  it("a run that writes nothing to the server never connects imapflow: login, NAMESPACE, LIST, SELECT go lean", async () => {
    const u = await server.addUser();
    const names = [
      "Entwürfe",
      "A&B",
      "日本語/Sub",
      "With Space",
      "Level/Leaf",
      'Say "hi"',
      "Back\\slash",
      "Per%cent*",
    ];
    const other = await connectImap(u);
    try {
      for (const n of names) await other.mailboxCreate(n.replace("/", "."));
      await other.mailboxDelete("Level").catch(() => {});
    } finally {
      await other.logout();
    }
    await withStore(u, async (store, debug) => {
      const folders = await store.listFolders();
      expect(folders.map((f) => f.name)).toEqual(
        [
          "A&B",
          "Back\\slash",
          "Entwürfe",
          "INBOX",
          "Level",
          "Level/Leaf",
          "Per%cent*",
          'Say "hi"',
          "With Space",
          "日本語",
          "日本語/Sub",
        ].sort(),
      );
      expect(folders.find((f) => f.name === "Level")).toEqual({ name: "Level", noselect: true });
      const sub = await store.openFolder("日本語/Sub", { lookOnly: true });
      expect(await sub.listFlags!()).toEqual([]);
      await sub.close();
      const lean = debug
        .filter((l) => l.startsWith("imap lean C: "))
        .map((l) => l.replace(/^imap lean C: L\d+ /, ""));
      expect(lean).toContain("NAMESPACE");
      expect(lean).toContain('LIST "" "*"');
      expect(lean.some((l) => l.startsWith('EXAMINE "&ZeVnLIqe-.Sub"'))).toBe(true);
      // A folder opened to be synced: the first one is SELECTed (PERMANENTFLAGS tell whether the
      // server keeps keywords), on the lean connection too; an APPEND streams there as well.
      const inbox = await store.openFolder("INBOX");
      const key = await inbox.append({
        body: chunks(message("lean-only")),
        flags: ["Later"],
        date: Date.now(),
      });
      expect(debug.some((l) => /^imap lean C: L\d+ SELECT "INBOX"/.test(l))).toBe(true);
      // imapflow logs every line it sends or reads: it has not even connected.
      expect(imapflowLines(debug)).toEqual([]);
      // A flag change goes lean as well; keywords were found kept, names stay the same.
      await inbox.setFlags([key], ["\\Flagged", "Other"], []);
      expect(imapflowLines(debug)).toEqual([]);
      expect((await collect(inbox.list()))[0]?.flags).toEqual(["Later", "Other", "\\Flagged"]);
      await inbox.close();
      expect((await store.listFolders()).map((f) => f.name)).toEqual(folders.map((f) => f.name));
    });
  });

  it("after the first SELECT, a folder opens by one EXAMINE; it is SELECTed only when written to", async () => {
    const u = await server.addUser();
    await withStore(u, async (store, debug) => {
      await store.createFolder("Two");
      const inbox = await store.openFolder("INBOX");
      await inbox.close();
      const before = debug.length;
      const two = await store.openFolder("Two");
      const key = await two.append({ body: chunks(message("two-1")), flags: [], date: Date.now() });
      expect(await collect(two.list())).toHaveLength(1);
      const opened = debug.slice(before);
      expect(opened.some((l) => /^imap lean C: L\d+ EXAMINE "Two"/.test(l))).toBe(true);
      // Opening, appending and listing went over the lean connection only.
      expect(opened.some((l) => /SELECT "?Two"?/.test(l) && !l.includes("EXAMINE"))).toBe(false);
      expect(two.marker.highestModseq).toBeDefined();
      await two.setFlags([key], ["\\Flagged", "Later"], []);
      expect(debug.slice(before).some((l) => /SELECT "?Two"?/.test(l) && !l.includes("EXAMINE"))).toBe(true);
      expect((await collect(two.list()))[0]?.flags).toEqual(["Later", "\\Flagged"]);
      await two.close();
    });
  });

  it("two folders read in turns each keep a lean connection of their own: selected once each", async () => {
    const u = await server.addUser();
    await withStore(u, async (store, debug) => {
      await store.createFolder("A");
      await store.createFolder("B");
      const a = await store.openFolder("A", { lookOnly: true });
      const b = await store.openFolder("B", { lookOnly: true });
      for (let i = 0; i < 3; i++) {
        await a.listFlags!();
        await b.listFlags!();
      }
      const sent = debug
        .filter((l) => l.startsWith("imap lean C: "))
        .map((l) => l.replace(/^imap lean C: L\d+ /, ""));
      expect(sent.filter((l) => l.startsWith("EXAMINE"))).toEqual([
        'EXAMINE "A" (CONDSTORE)',
        'EXAMINE "B" (CONDSTORE)',
      ]);
      expect(sent.filter((l) => l === "NOOP")).toHaveLength(6);
    });
  });

  it("a folder still open keeps its lean connection while closed ones give theirs to the next", async () => {
    const u = await server.addUser();
    await withStore(u, async (store, debug) => {
      for (const n of ["A", "B", "C"]) await store.createFolder(n);
      // A is being applied (open); B was listed and closed; C, the next folder, is listed now.
      const a = await store.openFolder("A", { lookOnly: true });
      await a.listFlags!();
      const b = await store.openFolder("B", { lookOnly: true });
      await b.listFlags!();
      await b.close();
      const c = await store.openFolder("C", { lookOnly: true });
      await c.listFlags!();
      const before = debug.length;
      // A's verification: its connection still has it selected (the least recently used one was
      // A's, but C took B's, which no open folder needed): a NOOP, no new EXAMINE.
      await a.listFlags!();
      const sent = debug.slice(before).filter((l) => l.startsWith("imap lean C: "));
      expect(sent.map((l) => l.replace(/^imap lean C: L\d+ /, ""))[0]).toBe("NOOP");
      expect(sent.some((l) => l.includes("EXAMINE"))).toBe(false);
      await a.close();
      await c.close();
    });
  });

  it("removes only the given message; another client's \\Deleted message stays", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      const folder = await store.openFolder("INBOX");
      const a = await folder.append({ body: chunks(message("rm-a")), flags: [], date: Date.now() });
      const b = await folder.append({ body: chunks(message("rm-b")), flags: [], date: Date.now() });
      const c = await folder.append({ body: chunks(message("rm-c")), flags: [], date: Date.now() });
      const other = await connectImap(u);
      try {
        await other.mailboxOpen("INBOX");
        await other.messageFlagsAdd(b.split("/")[1]!, ["\\Deleted"], { uid: true });
      } finally {
        await other.logout();
      }
      await folder.remove([a]);
      const metas = await collect(folder.list());
      expect(metas.map((m) => m.key)).toEqual([b, c]);
      expect(metas[0]?.flags).toEqual(["\\Deleted"]);
    });
  });

  it("sets and removes flags (system flags and a keyword) and removes messages on a lean connection; another client sees it", async () => {
    const u = await server.addUser();
    await seed(u, "INBOX", [[]]);
    await createMailboxes(u, ["Box"]);
    const uids = await seed(u, "Box", [["\\Seen"], ["\\Seen"], ["\\Seen"], ["\\Seen", "$Old"], ["\\Seen"]]);
    await withStore(u, async (store, debug) => {
      await (await store.openFolder("INBOX")).close();
      // Opened by an EXAMINE: the first write SELECTs it on the lean connection.
      const box = await store.openFolder("Box");
      const keys = uids.map((uid) => `${box.identity}/${uid}`);
      expect((await collect(box.list())).map((m) => m.key)).toEqual(keys);
      await box.setFlags([keys[0]!, keys[1]!], ["\\Flagged", "$Label1", "\\Answered"], ["\\Seen"]);
      await box.setFlags([keys[1]!, keys[3]!], [], ["$Label1", "$Old"]);
      await box.remove([keys[2]!, keys[4]!]);
      const sent = leanSent(debug);
      expect(sent).toContain('SELECT "Box" (CONDSTORE)');
      expect(sent.filter((l) => l.startsWith("UID STORE "))).toEqual([
        `UID STORE ${uids[0]}:${uids[1]} +FLAGS.SILENT ($Label1 \\Answered \\Flagged)`,
        `UID STORE ${uids[0]}:${uids[1]} -FLAGS.SILENT (\\Seen)`,
        `UID STORE ${uids[1]},${uids[3]} -FLAGS.SILENT ($Label1 $Old)`,
        `UID STORE ${uids[2]},${uids[4]} +FLAGS.SILENT (\\Deleted)`,
      ]);
      expect(sent.filter((l) => l.startsWith("UID EXPUNGE "))).toEqual([`UID EXPUNGE ${uids[2]},${uids[4]}`]);
      expect(imapflowLines(debug)).toEqual([]);
      const want = new Map([
        [uids[0]!, ["$Label1", "\\Answered", "\\Flagged"]],
        [uids[1]!, ["\\Answered", "\\Flagged"]],
        [uids[3]!, ["\\Seen"]],
      ]);
      expect(await seenByOther(u, "Box")).toEqual(want);
      // A fresh store lists the same.
      const fresh = await openStore(u);
      try {
        const again = await fresh.openFolder("Box", { lookOnly: true });
        expect((await again.listFlags!()).map((r) => [r.key, r.flags])).toEqual(
          [...want].map(([uid, flags]) => [`${box.identity}/${uid}`, flags]),
        );
      } finally {
        await fresh.close();
      }
    });
  });

  it("setFlagsMany(): several changes on one selection, their STOREs pipelined without a NOOP between", async () => {
    const u = await server.addUser();
    await createMailboxes(u, ["Many"]);
    const uids = await seed(u, "Many", [["\\Seen"], [], ["\\Flagged"], ["\\Seen", "$Old"]]);
    await withStore(u, async (store, debug) => {
      await (await store.openFolder("INBOX")).close();
      const box = await store.openFolder("Many");
      const keys = uids.map((uid) => `${box.identity}/${uid}`);
      expect(await collect(box.list())).toHaveLength(4);
      const from = leanSent(debug).length;
      await box.setFlagsMany!([
        { keys: [keys[0]!], add: [], remove: ["\\Seen"] },
        { keys: [keys[1]!, keys[2]!], add: ["\\Seen"], remove: [] },
        { keys: [keys[3]!], add: ["$New"], remove: ["$Old"] },
        { keys: [], add: ["\\Seen"], remove: [] },
      ]);
      const sent = leanSent(debug).slice(from);
      expect(sent).toEqual([
        'SELECT "Many" (CONDSTORE)',
        `UID STORE ${uids[0]} -FLAGS.SILENT (\\Seen)`,
        `UID STORE ${uids[1]}:${uids[2]} +FLAGS.SILENT (\\Seen)`,
        `UID STORE ${uids[3]} +FLAGS.SILENT ($New)`,
        `UID STORE ${uids[3]} -FLAGS.SILENT ($Old)`,
      ]);
      expect(await seenByOther(u, "Many")).toEqual(
        new Map([
          [uids[0]!, []],
          [uids[1]!, ["\\Seen"]],
          [uids[2]!, ["\\Flagged", "\\Seen"]],
          [uids[3]!, ["$New", "\\Seen"]],
        ]),
      );
    });
  });

  it("a session that lists, sets flags and removes messages never connects imapflow", async () => {
    const u = await server.addUser();
    const inboxUids = await seed(u, "INBOX", [[], ["\\Seen"], []]);
    await withStore(u, async (store, debug) => {
      const inbox = await store.openFolder("INBOX");
      const keys = inboxUids.map((uid) => `${inbox.identity}/${uid}`);
      expect((await collect(inbox.list())).map((m) => m.key)).toEqual(keys);
      await inbox.setFlags([keys[0]!], ["\\Seen", "Later"], []);
      await inbox.setFlags([keys[1]!], [], ["\\Seen"]);
      await inbox.remove([keys[2]!]);
      expect((await inbox.listFlags!()).map((r) => [r.key, r.flags])).toEqual([
        [keys[0], ["Later", "\\Seen"]],
        [keys[1], []],
      ]);
      await inbox.close();
      expect(imapflowLines(debug)).toEqual([]);
    });
    expect(await seenByOther(u, "INBOX")).toEqual(
      new Map([
        [inboxUids[0]!, ["Later", "\\Seen"]],
        [inboxUids[1]!, []],
      ]),
    );
  });

  it("after remove(), listings on the kept selection are exact: no new SELECT or EXAMINE, no fallback FETCH", async () => {
    const u = await server.addUser();
    const uids = await seed(u, "INBOX", [["\\Seen"], [], ["\\Flagged"], [], ["\\Seen"], []]);
    await withStore(u, async (store, debug) => {
      const inbox = await store.openFolder("INBOX");
      const key = (uid: number) => `${inbox.identity}/${uid}`;
      expect(await inbox.listFlags!()).toHaveLength(6);
      await inbox.setFlags([key(uids[1]!)], ["$Kw"], []);
      await inbox.remove([key(uids[0]!), key(uids[3]!), key(uids[5]!)]);
      const before = debug.length;
      const rows = await inbox.listFlags!();
      expect(rows.map((r) => [r.key, r.flags])).toEqual([
        [key(uids[1]!), ["$Kw"]],
        [key(uids[2]!), ["\\Flagged"]],
        [key(uids[4]!), ["\\Seen"]],
      ]);
      expect((await inbox.printFlags!())?.count).toBe(3);
      expect((await collect(inbox.list())).map((m) => m.key)).toEqual(
        [uids[1]!, uids[2]!, uids[4]!].map(key),
      );
      let sent = leanSent(debug.slice(before));
      expect(sent[0]).toBe("NOOP");
      // The selection's count was kept (EXISTS less our EXPUNGEs): the searches were trusted.
      expect(sent.some((l) => /^(SELECT|EXAMINE) /.test(l))).toBe(false);
      expect(sent.some((l) => l.startsWith("UID FETCH 1:* (UID FLAGS)"))).toBe(false);
      // Another client's changes meanwhile are seen on the same selection.
      const added = await seed(u, "INBOX", [["\\Draft"]]);
      const other = await connectImap(u);
      try {
        await other.mailboxOpen("INBOX");
        await other.messageDelete(String(uids[2]), { uid: true });
      } finally {
        await other.logout();
      }
      await inbox.remove([key(uids[4]!)]);
      const mid = debug.length;
      expect((await inbox.listFlags!()).map((r) => [r.key, r.flags])).toEqual([
        [key(uids[1]!), ["$Kw"]],
        [key(added[0]!), ["\\Draft"]],
      ]);
      sent = leanSent(debug.slice(mid));
      expect(sent.some((l) => /^(SELECT|EXAMINE) /.test(l))).toBe(false);
      expect(sent.some((l) => l.startsWith("UID FETCH 1:* (UID FLAGS)"))).toBe(false);
      expect(leanSent(debug).filter((l) => l.startsWith("UID EXPUNGE "))).toHaveLength(2);
      await inbox.close();
    });
  });

  it("a folder made anew under the same name: setFlags and remove fail (EUIDVALIDITY or ENOFOLDER) and write nothing", async () => {
    const u = await server.addUser();
    await createMailboxes(u, ["Kept", "Looked"]);
    const kept = await seed(u, "Kept", [[], []]);
    const looked = await seed(u, "Looked", [[], []]);
    await withStore(u, async (store) => {
      await (await store.openFolder("INBOX")).close();
      // Kept: written once (selected read-write on its lean connection); Looked: only listed.
      const a = await store.openFolder("Kept");
      await a.setFlags([`${a.identity}/${kept[0]}`], ["\\Seen"], []);
      const b = await store.openFolder("Looked");
      expect(await collect(b.list())).toHaveLength(2);
      for (const name of ["Kept", "Looked"]) {
        await server.doveadm(["mailbox", "delete", "-u", u.user, name]);
        await server.doveadm(["mailbox", "create", "-u", u.user, name]);
      }
      // The new folders have messages under the old UIDs.
      expect(await seed(u, "Kept", [[], []])).toEqual(kept);
      expect(await seed(u, "Looked", [[], []])).toEqual(looked);
      for (const [folder, uids] of [
        [a, kept],
        [b, looked],
      ] as const) {
        const keys = uids.map((uid) => `${folder.identity}/${uid}`);
        // Dovecot may end a session whose selected mailbox went away: that loss is retryable.
        const attempt = async (write: () => Promise<void>) => {
          let err = await write().catch((e: unknown) => e);
          if (err instanceof DriverError && err.scope === "store") {
            expect(err).toMatchObject({ retryable: true });
            err = await write().catch((e: unknown) => e);
          }
          expect(err).toBeInstanceOf(DriverError);
          expect(["EUIDVALIDITY", "ENOFOLDER"]).toContain((err as DriverError).code);
          expect(err).toMatchObject({ scope: "folder" });
        };
        await attempt(() => folder.setFlags(keys, ["\\Flagged", "Mark"], []));
        await attempt(() => folder.remove(keys));
      }
      for (const [name, uids] of [
        ["Kept", kept],
        ["Looked", looked],
      ] as const) {
        expect(await seenByOther(u, name)).toEqual(new Map(uids.map((uid) => [uid, []])));
      }
    });
  });

  it("listChanges returns exactly what another client changed, appended and expunged", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      let folder = await store.openFolder("INBOX");
      const keys: string[] = [];
      for (let i = 0; i < 4; i++) {
        keys.push(await folder.append({ body: chunks(message(`chg-${i}`)), flags: [], date: Date.now() }));
      }
      folder = await store.openFolder("INBOX");
      const since = folder.marker;
      expect(await folder.listChanges!(since)).toEqual({ changed: [], vanished: [] });

      const other = await connectImap(u);
      let newUid: number | undefined;
      try {
        await other.mailboxOpen("INBOX");
        await other.messageFlagsAdd(keys[1]!.split("/")[1]!, ["\\Answered", "$Label1"], { uid: true });
        await other.messageDelete(keys[2]!.split("/")[1]!, { uid: true });
        const res = await other.append("INBOX", message("chg-new"), ["\\Flagged"]);
        newUid = res ? res.uid : undefined;
      } finally {
        await other.logout();
      }
      folder = await store.openFolder("INBOX");
      expect(folder.marker).not.toEqual(since);
      const changes = await folder.listChanges!(since);
      expect(changes.vanished).toEqual([keys[2]]);
      expect(changes.changed.map((m) => [m.key, m.flags])).toEqual([
        [keys[1], ["$Label1", "\\Answered"]],
        [`${folder.identity}/${newUid}`, ["\\Flagged"]],
      ]);
      // with the known keys: exact without relying on VANISHED
      const withKnown = await (folder as ImapFolder).listChanges(since, undefined, keys);
      expect(withKnown).toEqual(changes);
      // list({ since }) yields the changed part
      expect(await collect(folder.list({ since }))).toEqual(changes.changed);
    });
  });

  it("listChanges with the known keys finds every removed one, the lowest and the highest too, whatever their order", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      let folder = await store.openFolder("INBOX");
      const keys: string[] = [];
      for (let i = 0; i < 12; i++)
        keys.push(await folder.append({ body: chunks(message(`v-${i}`)), flags: [], date: Date.now() }));
      folder = await store.openFolder("INBOX");
      const since = folder.marker;
      const other = await connectImap(u);
      try {
        await other.mailboxOpen("INBOX");
        // UIDs 1, 10 and 12: as text, "…/10" and "…/12" sort before "…/2".
        await other.messageDelete([keys[0], keys[9], keys[11]].map((k) => k!.split("/")[1]).join(","), {
          uid: true,
        });
      } finally {
        await other.logout();
      }
      folder = await store.openFolder("INBOX");
      const known = [...keys].sort().reverse();
      const changes = await (folder as ImapFolder).listChanges(since, undefined, known);
      expect(changes).toEqual({ changed: [], vanished: [keys[0], keys[9], keys[11]] });
    });
  });

  it("changes identity when the mailbox is deleted and recreated; stale keys are refused", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      await store.createFolder("Box");
      const first = await store.openFolder("Box");
      const key = await first.append({ body: chunks(message("uv")), flags: [], date: Date.now() });
      await store.openFolder("INBOX"); // select something else
      await server.doveadm(["mailbox", "delete", "-u", u.user, "Box"]);
      await server.doveadm(["mailbox", "create", "-u", u.user, "Box"]);
      // the old folder object re-selects and notices
      const err = await collect(first.list()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DriverError);
      expect(err).toMatchObject({ scope: "folder", code: "EUIDVALIDITY" });
      const second = await store.openFolder("Box");
      expect(second.identity).not.toBe(first.identity);
      const err2 = await readAll(second.read(key)).catch((e: unknown) => e);
      expect(err2).toMatchObject({ scope: "folder", code: "EUIDVALIDITY" });
    });
  });

  it("never lets the password reach the debug output", async () => {
    const u = await server.addUser();
    const debug: string[] = [];
    const store = await openStore(u, { debug });
    const folder = await store.openFolder("INBOX");
    await collect(folder.list());
    await store.close();
    expect(debug.length).toBeGreaterThan(0);
    expect(debug.join("\n")).not.toContain(u.password);
  });

  it("reconnects after the connection was dropped", async () => {
    const u = await server.addUser();
    await withStore(u, async (store) => {
      const folder = await store.openFolder("INBOX");
      await folder.append({ body: chunks(message("re")), flags: [], date: Date.now() });
      await server.doveadm(["kick", u.user]);
      await new Promise((r) => setTimeout(r, 300));
      const first = await collect(folder.list()).catch((e: unknown) => e);
      if (first instanceof DriverError) {
        expect(first).toMatchObject({ scope: "store", retryable: true });
        expect(await collect(folder.list())).toHaveLength(1);
      } else {
        expect(first).toHaveLength(1);
      }
    });
  });
});

// Dovecot 2.3's post-login list without UIDPLUS (the rest as it advertises it).
const NO_UIDPLUS =
  "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS " +
  "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE LIST-EXTENDED " +
  "I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE " +
  "SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY";

describe.skipIf(skip)("IMAP driver against Dovecot without UIDPLUS", () => {
  let server: DovecotServer;
  beforeAll(async () => {
    server = await startDovecot({ capabilities: NO_UIDPLUS });
  });
  afterAll(() => server?.stop());

  it("still returns the right key from append (Message-ID, none, and twins), refuses remove", async () => {
    const u = await server.addUser();
    const warnings: string[] = [];
    const store = await openStore(u, { warnings });
    try {
      expect(warnings.join()).toMatch(/UIDPLUS/);
      const folder = await store.openFolder("INBOX");
      // someone else's message arrives in between
      const other = await connectImap(u);
      try {
        await other.append("INBOX", message("foreign"), []);
      } finally {
        await other.logout();
      }
      const date = Date.UTC(2024, 1, 2, 3, 4, 5);
      const withId = message("no-uidplus-1", "first");
      const k1 = await folder.append({ body: chunks(withId), flags: ["\\Seen"], date });
      const k2 = await folder.append({ body: chunks(message(null, "no id at all")), flags: [], date });
      // an identical twin (same Message-ID, size, date): the earlier append is excluded
      const k3 = await folder.append({ body: chunks(withId), flags: [], date });
      const metas = await collect(folder.list());
      expect(metas.map((m) => m.key)).toEqual([`${folder.identity}/1`, k1, k2, k3]);
      expect(new Set([k1, k2, k3]).size).toBe(3);
      expect(byKey(metas).get(k1)?.flags).toEqual(["\\Seen"]);
      expect((await readAll(folder.read(k2))).toString()).toContain("no id at all");

      const err = await folder.remove([k1]).catch((e: unknown) => e);
      expect(err).toMatchObject({ scope: "folder", code: "ENOUIDPLUS" });
      expect((await collect(folder.list())).map((m) => [m.key, m.flags])).toContainEqual([k1, ["\\Seen"]]);
    } finally {
      await store.close();
    }
  });
});

describe("folder names and UID sets (no server)", async () => {
  const { nameFromServerPath, serverPathFromName } = await import("../../src/drivers/imap/folder-names.js");
  const { compactUidSet, chunkedUidSets, expandUidSet, uidOfKey } = await import(
    "../../src/drivers/imap/uid-set.js"
  );

  it("maps the server delimiter to / and refuses what cannot be mapped", () => {
    const dot = { prefix: "", delimiter: "." };
    expect(nameFromServerPath("Archive.2024", ".", dot)).toBe("Archive/2024");
    expect(nameFromServerPath("inbox", ".", dot)).toBe("INBOX");
    expect(nameFromServerPath("a/b", ".", dot)).toMatchObject({ refused: expect.stringContaining("a/b") });
    expect(serverPathFromName("Archive/2024", dot)).toBe("Archive.2024");
    expect(() => serverPathFromName("a.b", dot)).toThrow(expect.objectContaining({ code: "EBADNAME" }));
    const courier = { prefix: "INBOX.", delimiter: "." };
    expect(nameFromServerPath("INBOX.Sent", ".", courier)).toBe("Sent");
    expect(serverPathFromName("Sent", courier)).toBe("INBOX.Sent");
    expect(serverPathFromName("INBOX", courier)).toBe("INBOX");
    const slash = { prefix: "", delimiter: "/" };
    expect(nameFromServerPath("a.b/c", "/", slash)).toBe("a.b/c");
    expect(serverPathFromName("a.b/c", slash)).toBe("a.b/c");
  });

  it("reads a key's UID, and refuses a key of another UIDVALIDITY or one that is no key", () => {
    expect(uidOfKey("1700000000/42", "1700000000", "INBOX")).toBe(42);
    expect(uidOfKey("7/007", "7", "INBOX")).toBe(7);
    expect(uidOfKey(`7/${Number.MAX_SAFE_INTEGER}`, "7", "INBOX")).toBe(Number.MAX_SAFE_INTEGER);
    const code = (key: string, validity = "7") => {
      try {
        uidOfKey(key, validity, "INBOX");
        return "read";
      } catch (err) {
        return (err as { code?: string }).code;
      }
    };
    expect(code("8/42")).toBe("EUIDVALIDITY");
    expect(code("77/42")).toBe("EUIDVALIDITY");
    expect(code("07/42")).toBe("EUIDVALIDITY");
    for (const bad of ["7/0", "7/", "7/4x", "7/-4", "7/1e3", "7:42", "42", `7/${2 ** 60}`])
      expect(code(bad), bad).toBe("EBADKEY");
    // A UIDVALIDITY that is not digits can match no key.
    expect(code("a/42", "a")).toBe("EBADKEY");
  });

  it("compacts and chunks UID sets", () => {
    expect(compactUidSet([5, 1, 2, 3, 9, 10, 3])).toBe("1:3,5,9:10");
    expect(expandUidSet("1:3,5,9:10")).toEqual([1, 2, 3, 5, 9, 10]);
    const sparse = Array.from({ length: 5000 }, (_, i) => i * 2 + 1);
    const sets = chunkedUidSets(sparse, 1000);
    expect(sets.every((s) => s.length <= 1000)).toBe(true);
    expect(sets.flatMap(expandUidSet)).toEqual(sparse);
  });
});

describe.skipIf(skip)("IMAP driver against Dovecot without NAMESPACE", () => {
  let server: DovecotServer;
  beforeAll(async () => {
    server = await startDovecot({ capabilities: `${NO_UIDPLUS.replace(" NAMESPACE", "")} UIDPLUS` });
  });
  afterAll(() => server?.stop());

  it("asks imapflow at once (it knows how to find the delimiter otherwise); names as before", async () => {
    const u = await server.addUser();
    await createMailboxes(u, ["Archive.2024"]);
    const debug: string[] = [];
    const store = await openStore(u, { debug });
    try {
      const lean = debug.filter((l) => l.startsWith("imap lean C: "));
      expect(lean.some((l) => l.endsWith(" NAMESPACE"))).toBe(false);
      expect(debug.some((l) => /^imap (debug|info) /.test(l))).toBe(true);
      expect((await store.listFolders()).map((f) => f.name)).toEqual(["Archive", "Archive/2024", "INBOX"]);
    } finally {
      await store.close();
    }
  });
});
