// Folder.listFlags() of the IMAP driver against a real Dovecot: every message's key and flags
// exactly as list() gives them, by compact ESEARCH sets (one per flag) or, without ESEARCH or when
// the sets cannot be trusted, by one UID FETCH (UID FLAGS).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImapFlow } from "imapflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriverError, type Folder, type KeyFlags, type Store } from "../../src/drivers/driver.js";
import { printFound } from "../../src/drivers/imap/flag-searches.js";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import { eachPosition, parseEsearch, parseUidRanges } from "../../src/drivers/imap/lean/parse.js";
import { fingerprintOf } from "../../src/model/fingerprint.js";
import type { MessageMeta } from "../../src/model/types.js";
import {
  chownToMailUser,
  connectImap,
  type DovecotServer,
  dovecotAvailable,
  type ImapUser,
  startDovecot,
} from "../helpers/dovecot.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";

const skip = !dovecotAvailable() && !process.env.CI;

// Dovecot 2.3's post-login list without ESEARCH (and the extensions built on it).
const NO_ESEARCH =
  "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS " +
  "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS " +
  "LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC WITHIN LIST-STATUS BINARY MOVE " +
  "SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY";

const SYSTEM = ["\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen"];

function message(n: number): Buffer {
  return Buffer.from(
    `From: a@example.org\r\nTo: b@example.org\r\nSubject: m${n}\r\nMessage-ID: <m${n}@example.org>\r\n\r\nbody ${n}\r\n`,
  );
}

/** The commands the lean connection sent, while `debug` is passed to the store. */
class Wire {
  lines: string[] = [];
  readonly debug = (m: string) => {
    if (!m.startsWith("imap lean C: ")) return;
    const line = m.slice(13).replace(/^L\d+ /, "");
    // Logins left out: open() logs its spare connections in while the test goes on.
    if (!/^(AUTHENTICATE|LOGIN|CAPABILITY)\b/.test(line)) this.lines.push(line);
  };
  take(): string[] {
    const out = this.lines;
    this.lines = [];
    return out;
  }
}

function openStore(u: ImapUser, wire?: Wire): Promise<Store> {
  return openImapStore({
    host: u.host,
    port: u.port,
    tls: "none",
    user: u.user,
    auth: { password: u.password },
    ...(wire ? { debug: wire.debug } : {}),
  });
}

async function withImap<T>(u: ImapUser, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
  const c = await connectImap(u);
  try {
    return await fn(c);
  } finally {
    await c.logout();
  }
}

/** A listing as sorted `key flags…` lines, for comparing listFlags() with list(). */
function lines(rows: Iterable<KeyFlags | MessageMeta>): string[] {
  return [...rows].map((r) => [r.key, ...r.flags].join(" ")).sort();
}

async function listed(folder: Folder): Promise<string[]> {
  const out: MessageMeta[] = [];
  for await (const m of folder.list()) out.push(m);
  return lines(out);
}

/** The flags of each message, by subject number, as the listing gives them. */
function flagsByUid(rows: KeyFlags[]): Map<number, string[]> {
  return new Map(rows.map((r) => [Number(r.key.split("/")[1]), r.flags]));
}

/**
 * A folder holding every system flag alone and together, keywords alone and mixed, \Deleted,
 * no flags at all, UID gaps (expunged messages), and a keyword in FLAGS that no message carries.
 */
async function fill(u: ImapUser, path: string): Promise<void> {
  const sets: string[][] = [
    [],
    ...SYSTEM.map((f) => [f]),
    SYSTEM,
    ["$Forwarded"],
    ["Work", "$Junk"],
    ["\\Seen", "Work", "label-2", "$Forwarded"],
    ["\\Deleted", "$Junk"],
    [],
    ["\\Seen"],
    ["\\Seen"],
    ["Unused"],
    ["\\Flagged", "\\Answered", "label-2"],
  ];
  await withImap(u, async (c) => {
    if (path !== "INBOX") await c.mailboxCreate(path);
    for (let i = 0; i < sets.length; i++) await c.append(path, message(i), sets[i]!);
    await c.mailboxOpen(path);
    // UID gaps: the second and the one carrying "Unused" go (Unused stays in FLAGS).
    await c.messageDelete("2,15", { uid: true });
  });
}

describe.skipIf(skip)("IMAP listFlags() against Dovecot", () => {
  let server: DovecotServer;
  let plain: DovecotServer;
  beforeAll(async () => {
    [server, plain] = await Promise.all([startDovecot(), startDovecot({ capabilities: NO_ESEARCH })]);
  });
  afterAll(() => Promise.all([server?.stop(), plain?.stop()]));

  it("equals list(): every system flag, keywords, \\Deleted, none, UID gaps — by ESEARCH sets", async () => {
    const u = await server.addUser();
    await fill(u, "Mixed");
    const wire = new Wire();
    const store = await openStore(u, wire);
    try {
      const folder = await store.openFolder("Mixed");
      wire.take();
      const got = await folder.listFlags!();
      const sent = wire.take();
      expect(sent.some((l) => l.startsWith("UID FETCH"))).toBe(false);
      expect(sent).toContain("UID SEARCH RETURN (ALL) KEYWORD label-2");
      expect(got.map((r) => r.key)).toEqual(
        [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16].map((uid) => `${folder.identity}/${uid}`),
      );
      const flags = flagsByUid(got);
      expect(flags.get(1)).toEqual([]);
      expect(flags.get(7)).toEqual(SYSTEM);
      expect(flags.get(10)).toEqual(["$Forwarded", "Work", "\\Seen", "label-2"]);
      expect(flags.get(11)).toEqual(["$Junk", "\\Deleted"]);
      expect(lines(got)).toEqual(await listed(folder));
      // printFlags(): the same searches, the print of this very listing, and no listing built.
      wire.take();
      expect(await folder.printFlags!()).toEqual({ count: 14, fingerprint: fingerprintOf(got) });
      expect(wire.take().some((l) => l.startsWith("UID FETCH"))).toBe(false);
    } finally {
      await store.close();
    }
  });

  it("equals list() without ESEARCH: one UID FETCH (UID FLAGS)", async () => {
    const u = await plain.addUser();
    await fill(u, "INBOX");
    const wire = new Wire();
    const store = await openStore(u, wire);
    try {
      const folder = await store.openFolder("INBOX");
      wire.take();
      const got = await folder.listFlags!();
      const sent = wire.take();
      expect(sent).toContain("UID FETCH 1:* (UID FLAGS)");
      expect(sent.some((l) => l.startsWith("UID SEARCH"))).toBe(false);
      expect(got).toHaveLength(14);
      expect(flagsByUid(got).get(7)).toEqual(SYSTEM);
      expect(lines(got)).toEqual(await listed(folder));
      // Without ESEARCH there is nothing to print from: the caller prints listFlags().
      expect(await folder.printFlags!()).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("an empty folder: nothing, with and without ESEARCH", async () => {
    for (const srv of [server, plain]) {
      const u = await srv.addUser();
      const store = await openStore(u);
      try {
        const folder = await store.openFolder("INBOX");
        expect(await folder.listFlags!()).toEqual([]);
        const print = await folder.printFlags!();
        if (srv === server) expect(print).toEqual({ count: 0, fingerprint: fingerprintOf([]) });
        else expect(print).toBeUndefined();
      } finally {
        await store.close();
      }
    }
  });

  it("sees another client's changes between calls, keywords new to the mailbox included", async () => {
    const u = await server.addUser();
    await fill(u, "INBOX");
    const wire = new Wire();
    const store = await openStore(u, wire);
    try {
      const folder = await store.openFolder("INBOX");
      const before = await folder.listFlags!();
      expect(lines(before)).toEqual(await listed(folder));
      const printBefore = await folder.printFlags!();
      expect(printBefore?.fingerprint).toBe(fingerprintOf(before));
      await withImap(u, async (c) => {
        await c.mailboxOpen("INBOX");
        await c.messageFlagsAdd("1", ["Brand-New", "\\Flagged"], { uid: true });
        await c.messageFlagsRemove("10", ["\\Seen", "Work"], { uid: true });
        await c.messageFlagsAdd("13", ["Later"], { uid: true });
        await c.messageDelete("12", { uid: true });
        await c.append("INBOX", message(99), ["\\Draft", "Later"]);
      });
      wire.take();
      const after = await folder.listFlags!();
      const sent = wire.take();
      // Still selected on the lean connection: a NOOP brings the view up to date, no new EXAMINE
      // (Dovecot rescans a recently changed Maildir folder at each one).
      expect(sent[0]).toBe("NOOP");
      expect(sent.some((l) => l.startsWith("EXAMINE"))).toBe(false);
      // The keywords new since the folder was opened are searched once the NOOP named them.
      expect(sent).toContain("UID SEARCH RETURN (ALL) KEYWORD Brand-New");
      expect(sent.some((l) => l.startsWith("UID FETCH"))).toBe(false);
      const flags = flagsByUid(after);
      expect(flags.get(1)).toEqual(["Brand-New", "\\Flagged"]);
      expect(flags.get(10)).toEqual(["$Forwarded", "label-2"]);
      expect(flags.get(13)).toEqual(["Later", "\\Seen"]);
      expect(flags.has(12)).toBe(false);
      expect(flags.get(17)).toEqual(["Later", "\\Draft"]);
      expect(lines(after)).toEqual(await listed(folder));
      // The print follows the changes too, keywords new to the mailbox included.
      const printAfter = await folder.printFlags!();
      expect(printAfter).toEqual({ count: after.length, fingerprint: fingerprintOf(after) });
      expect(printAfter?.fingerprint).not.toBe(printBefore?.fingerprint);
      // Next time they go out with the first batch (once each), still exact.
      wire.take();
      expect(lines(await folder.listFlags!())).toEqual(lines(after));
      expect(wire.take().filter((l) => l.endsWith("KEYWORD Brand-New"))).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it("a change announced outside the NOOP (our own APPEND): the next call selects afresh, still exact", async () => {
    const u = await server.addUser();
    await fill(u, "INBOX");
    const wire = new Wire();
    const store = await openStore(u, wire);
    try {
      const folder = await store.openFolder("INBOX");
      await folder.listFlags!();
      const bytes = message(50);
      await folder.append({
        body: (async function* () {
          yield bytes;
        })(),
        size: bytes.length,
        flags: ["\\Seen", "Fresh-One"],
        date: Date.now(),
      });
      wire.take();
      const got = await folder.listFlags!();
      const sent = wire.take();
      // The APPEND's EXISTS (and the FLAGS naming the new keyword) came outside any EXAMINE or
      // NOOP: what the connection knew of the mailbox is stale, so it is selected again.
      // (On whichever of the store's lean connections: the least recently used one serves it.)
      expect(sent.some((l) => /^EXAMINE "INBOX"/.test(l))).toBe(true);
      expect(sent).not.toContain("NOOP");
      expect(flagsByUid(got).get(17)).toEqual(["Fresh-One", "\\Seen"]);
      expect(lines(got)).toEqual(await listed(folder));
    } finally {
      await store.close();
    }
  });

  it("keywords only a Maildir file name holds are in FLAGS; one that is no atom falls back to FETCH", async () => {
    // Dovecot names keyword letters missing from dovecot-keywords `unknown-N` and lists them in
    // FLAGS like any other: a message cannot carry a keyword FLAGS does not name.
    const u = await server.addUser();
    await writeFile(join(u.maildir, "cur", "1700000000.M1P1.test:2,Sb"), message(1));
    await chownToMailUser(u.maildir);
    const wire = new Wire();
    let store = await openStore(u, wire);
    try {
      const folder = await store.openFolder("INBOX");
      wire.take();
      const got = await folder.listFlags!();
      expect(wire.take().some((l) => l.startsWith("UID FETCH"))).toBe(false);
      expect(got.map((r) => r.flags)).toEqual([["\\Seen", "unknown-1"]]);
      expect(lines(got)).toEqual(await listed(folder));
    } finally {
      await store.close();
    }
    // A keyword Dovecot took from the file but that cannot be sent as an atom: no search for it.
    const v = await server.addUser();
    await writeFile(join(v.maildir, "dovecot-keywords"), "0 a]b\n");
    await writeFile(join(v.maildir, "cur", "1700000000.M2P2.test:2,Fa"), message(2));
    await writeFile(join(v.maildir, "cur", "1700000000.M3P3.test:2,"), message(3));
    await chownToMailUser(v.maildir);
    store = await openStore(v, wire);
    try {
      const folder = await store.openFolder("INBOX");
      wire.take();
      const got = await folder.listFlags!();
      expect(wire.take()).toContain("UID FETCH 1:* (UID FLAGS)");
      expect(lines(got)).toEqual(
        lines([
          { key: `${folder.identity}/1`, flags: ["\\Flagged", "a]b"] },
          { key: `${folder.identity}/2`, flags: [] },
        ]),
      );
      expect(lines(got)).toEqual(await listed(folder));
    } finally {
      await store.close();
    }
  });

  it("a change announced while the searches run: falls back to FETCH, still exact", async () => {
    const u = await server.addUser();
    await fill(u, "INBOX");
    const wire = new Wire();
    const store = await openStore(u, wire);
    try {
      const folder = await store.openFolder("INBOX");
      // A keyword remembered from before that the mailbox no longer lists: Dovecot creates it when
      // searched for and announces the new FLAGS in the middle of the answers.
      (folder as unknown as { keywordsSeen: string[] }).keywordsSeen = ["Phantom", "Work"];
      wire.take();
      const got = await folder.listFlags!();
      const sent = wire.take();
      expect(sent).toContain("UID SEARCH RETURN (ALL) KEYWORD Phantom");
      expect(sent).toContain("UID FETCH 1:* (UID FLAGS)");
      expect(lines(got)).toEqual(await listed(folder));
      // The next call knows the mailbox's keywords again: searches only.
      wire.take();
      expect(lines(await folder.listFlags!())).toEqual(lines(got));
      expect(wire.take().some((l) => l.startsWith("UID FETCH"))).toBe(false);
    } finally {
      await store.close();
    }
  });

  it("a folder gone meanwhile: a folder-scoped ENOFOLDER, as list() gives", async () => {
    const u = await server.addUser();
    await withImap(u, (c) => c.mailboxCreate("Gone"));
    const store = await openStore(u);
    try {
      const folder = await store.openFolder("Gone");
      await withImap(u, (c) => c.mailboxDelete("Gone"));
      // Dovecot ends a session whose selected mailbox was deleted ("* BYE ... inconsistent"): the
      // lean connection that opened it may be lost first (retryable, as any lost connection).
      const first = await folder.listFlags!().catch((e: unknown) => e);
      if ((first as { code?: string }).code !== "ENOFOLDER")
        expect(first).toMatchObject({ scope: "store", retryable: true });
      await expect(folder.listFlags!()).rejects.toMatchObject({ scope: "folder", code: "ENOFOLDER" });
      // The connection stays usable.
      const inbox = await store.openFolder("INBOX");
      expect(await inbox.listFlags!()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe.skipIf(skip)("IMAP Store.printFolders(): many folders, pipelined", () => {
  let server: DovecotServer;
  let plain: DovecotServer;
  beforeAll(async () => {
    [server, plain] = await Promise.all([startDovecot(), startDovecot({ capabilities: NO_ESEARCH })]);
  });
  afterAll(() => Promise.all([server?.stop(), plain?.stop()]));

  /** Each folder's own identity and printFlags(), one by one: what the batch must give. */
  async function onebyone(store: Store, names: string[]): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const name of names) {
      const folder = await store.openFolder(name, { lookOnly: true });
      out.set(name, { identity: folder.identity, ...(await folder.printFlags!()) });
      await folder.close();
    }
    return out;
  }

  it("gives each folder's identity and printFlags(): keywords, system flags only, empty, missing", async () => {
    const u = await server.addUser();
    await fill(u, "Mixed");
    await fill(u, "INBOX");
    await withImap(u, async (c) => {
      await c.mailboxCreate("Empty");
      await c.mailboxCreate("Plain");
      for (let i = 0; i < 4; i++) await c.append("Plain", message(i), i % 2 ? ["\\Seen"] : []);
    });
    const wire = new Wire();
    const store = await openStore(u, wire);
    try {
      const names = ["Mixed", "INBOX", "Empty", "Plain"];
      const expected = await onebyone(store, names);
      wire.take();
      const batch = store.printFolders!([...names, "Missing"]);
      for (const name of names) expect(await batch.get(name)).toEqual(expected.get(name));
      // No such folder: the batch cannot tell; the caller's own open says why.
      expect(await batch.get("Missing")).toBeUndefined();
      const sent = wire.take();
      expect(sent.some((l) => l.startsWith("UID FETCH"))).toBe(false);
      // The store had not seen a SELECT yet (lookOnly opens EXAMINE): the batch's last folder,
      // INBOX, is SELECTed, for PERMANENTFLAGS, and the others EXAMINEd.
      expect(sent.filter((l) => l.startsWith("SELECT"))).toEqual(['SELECT "INBOX" (CONDSTORE)']);
      expect(store.caps.keywords).toBe(true);
      // A folder whose FLAGS name keywords goes round twice (the second time searching them);
      // the others once.
      const examined = (name: string) =>
        sent.filter((l) => l.startsWith(`EXAMINE "${name}"`) || l.startsWith(`SELECT "${name}"`)).length;
      expect(examined("Mixed")).toBe(2);
      expect(examined("INBOX")).toBe(2);
      expect(examined("Plain")).toBe(1);
      expect(examined("Empty")).toBe(1);
      expect(sent).toContain("UID SEARCH RETURN (ALL) KEYWORD label-2");
      expect((await batch.get("Empty")) as { count: number }).toMatchObject({ count: 0 });
    } finally {
      await store.close();
    }
  });

  it("more folders than fit in flight on one connection: every print exact, each folder examined once", async () => {
    const u = await server.addUser();
    const names = Array.from({ length: 21 }, (_, i) => `F${i}`);
    await withImap(u, async (c) => {
      for (const [i, name] of names.entries()) {
        await c.mailboxCreate(name);
        for (let m = 0; m <= i % 4; m++) await c.append(name, message(m), m % 2 ? ["\\Flagged"] : ["\\Seen"]);
      }
    });
    const wire = new Wire();
    const store = await openStore(u, wire);
    try {
      const expected = await onebyone(store, names);
      wire.take();
      const batch = store.printFolders!(names);
      for (const name of names) expect(await batch.get(name)).toEqual(expected.get(name));
      expect(wire.take().filter((l) => /^(EXAMINE|SELECT) /.test(l))).toHaveLength(names.length);
    } finally {
      await store.close();
    }
  });

  it("a folder the batch left selected opens without a new EXAMINE, unless the NOOP brings news", async () => {
    const u = await server.addUser();
    const names = ["A", "B", "C", "INBOX"];
    await withImap(u, async (c) => {
      for (const name of names) {
        if (name !== "INBOX") await c.mailboxCreate(name);
        for (let m = 0; m < 3; m++) await c.append(name, message(m), m % 2 ? ["\\Flagged"] : []);
      }
    });
    const wire = new Wire();
    const store = await openStore(u, wire);
    const fresh = await openStore(u);
    try {
      // INBOX goes last, whatever the order asked, and is SELECTed (the run's one SELECT): the
      // batch leaves it selected read-write.
      const batch = store.printFolders!(names);
      for (const name of names) expect(await batch.get(name)).toBeDefined();
      expect(
        wire
          .take()
          .filter((l) => /^(EXAMINE|SELECT) /.test(l))
          .at(-1),
      ).toBe('SELECT "INBOX" (CONDSTORE)');
      await new Promise((r) => setImmediate(r)); // the batch lets its connections go
      expect(store.warm!("INBOX")).toBe(true);
      expect(store.warm!("A")).toBe(false);
      // Opened on that selection: a NOOP, no EXAMINE; the marker is a fresh open's.
      const inbox = await store.openFolder("INBOX");
      expect(wire.take()).toEqual(["NOOP"]);
      const other = await fresh.openFolder("INBOX");
      expect(inbox.marker).toEqual(other.marker);
      await other.close();
      expect(lines(await inbox.listFlags!())).toEqual(await listed(inbox));
      wire.take();
      // Left read-write by the batch's SELECT: a write goes out on that selection, no SELECT first.
      const [first] = [...(await inbox.listFlags!())].map((m) => m.key).sort();
      await inbox.setFlagsMany!([{ keys: [first!], add: ["\\Answered"], remove: [] }]);
      expect(wire.take().filter((l) => /^(EXAMINE|SELECT) /.test(l))).toEqual([]);
      expect([...(await inbox.listFlags!())].find((m) => m.key === first)?.flags).toContain("\\Answered");
      await inbox.close();
      wire.take();
      // Another client changes it: the NOOP reports that, and the open selects afresh.
      await withImap(u, async (c) => {
        await c.mailboxOpen("INBOX");
        await c.messageFlagsAdd("1", ["\\Seen"]);
      });
      const again = await store.openFolder("INBOX");
      expect(wire.take()).toEqual(["NOOP", 'EXAMINE "INBOX" (CONDSTORE)']);
      const now = await fresh.openFolder("INBOX");
      expect(again.marker).toEqual(now.marker);
      expect(BigInt(again.marker.highestModseq!)).toBeGreaterThan(BigInt(inbox.marker.highestModseq!));
      await Promise.all([again.close(), now.close()]);
    } finally {
      await Promise.all([store.close(), fresh.close()]);
    }
  });

  it("without ESEARCH: undefined for every folder (the caller prints listFlags())", async () => {
    const u = await plain.addUser();
    await fill(u, "INBOX");
    const store = await openStore(u);
    try {
      const batch = store.printFolders!(["INBOX"]);
      expect(await batch.get("INBOX")).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("a connection lost mid-batch: every folder not yet printed fails with a store-scoped DriverError", async () => {
    const u = await server.addUser();
    const names = Array.from({ length: 6 }, (_, i) => `G${i}`);
    await withImap(u, async (c) => {
      for (const name of names) {
        await c.mailboxCreate(name);
        await c.append(name, message(1), ["\\Seen"]);
      }
    });
    const proxy = await startFaultProxy(server.port, server.host);
    const store = await openImapStore({
      host: proxy.host,
      port: proxy.port,
      tls: "none",
      user: u.user,
      auth: { password: u.password },
    });
    try {
      proxy.cutOnClientCommand(/^\S+ EXAMINE "G3"/i);
      const batch = store.printFolders!(names);
      const results = await Promise.allSettled(names.map((n) => batch.get(n)!));
      const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
      expect(failed.length).toBeGreaterThan(0);
      for (const f of failed) {
        expect(f.reason).toBeInstanceOf(DriverError);
        expect((f.reason as DriverError).scope).toBe("store");
      }
      // What was printed before the cut is exact.
      for (const [i, r] of results.entries()) {
        if (r.status === "fulfilled" && r.value) expect(r.value.count).toBe(1);
        else if (r.status === "fulfilled") throw new Error(`${names[i]}: undefined`);
      }
      expect(proxy.stats.cuts).toBe(1);
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});

describe("UID sets of ESEARCH answers (no server)", () => {
  const positions = (set: string, all: string): number[] | null => {
    const ranges = parseUidRanges(all)!;
    const out: number[] = [];
    const ok = eachPosition(set, ranges, (from, to) => {
      for (let i = from; i <= to; i++) out.push(i);
    });
    return ok ? out : null;
  };

  it("reads ALL as ascending ranges with positions, refusing what is not", () => {
    expect(parseUidRanges("1:3,5,7:8,9")).toEqual({
      lo: [1, 5, 7],
      hi: [3, 5, 9],
      base: [0, 3, 4],
      count: 7,
    });
    expect(parseUidRanges("")).toEqual({ lo: [], hi: [], base: [], count: 0 });
    for (const bad of ["3,1", "1:3,2", "1,,2", "1,", ",1", "0", "1:*", "a", "1:", "4294967296"]) {
      expect(parseUidRanges(bad), bad).toBeNull();
    }
  });

  it("prints the listing the sets describe, UIDs across every decade and up to 2^32-1", () => {
    const all = "1:12,19:21,99:101,999,1000,4294967290:4294967295";
    const byFlag: Array<[string, string]> = [
      ["$Junk", "20,1000"],
      ["\\Flagged", "9:11,4294967295"],
      ["\\Seen", "1:5,19:21,100,4294967290:4294967293"],
    ];
    const found = { all: parseUidRanges(all)!, byFlag };
    const listing: KeyFlags[] = [];
    for (const [lo, hi] of all.split(",").map((r) => r.split(":").map(Number))) {
      for (let u = lo!; u <= (hi ?? lo)!; u++) {
        const holds = (set: string) =>
          set.split(",").some((r) => {
            const [a, b] = r.split(":").map(Number);
            return u >= a! && u <= (b ?? a)!;
          });
        const flags = byFlag.filter(([, set]) => holds(set)).map(([f]) => f);
        listing.push({ key: `77/${u}`, flags });
      }
    }
    expect(printFound("77", found)).toEqual({ count: listing.length, fingerprint: fingerprintOf(listing) });
    // A set naming a UID that ALL has not: no print.
    expect(printFound("77", { ...found, byFlag: [["\\Seen", "13"]] })).toBeUndefined();
  });

  it("maps a flag's set to positions in ALL; a UID that ALL has not makes it fail", () => {
    expect(positions("2,5:7,10", "1:3,5:7,10")).toEqual([1, 3, 4, 5, 6]);
    expect(positions("10,1", "1:3,5:7,10")).toEqual([6, 0]);
    expect(positions("7:5", "1:3,5:7,10")).toEqual([3, 4, 5]);
    expect(positions("", "1:3")).toEqual([]);
    expect(positions("4", "1:3,5:7")).toBeNull();
    expect(positions("2:6", "1:3,5:7")).toBeNull();
    expect(positions("8", "1:3,5:7")).toBeNull();
    expect(positions("1,x", "1:3")).toBeNull();
  });

  it("reads ESEARCH answers by tag", () => {
    expect(parseEsearch('* ESEARCH (TAG "L7") UID ALL 1:3,9')).toEqual({
      tag: "L7",
      uid: true,
      all: "1:3,9",
    });
    expect(parseEsearch('* ESEARCH (TAG "L8") UID')).toEqual({ tag: "L8", uid: true, all: "" });
    expect(parseEsearch('* ESEARCH (TAG "L9")')).toEqual({ tag: "L9", uid: false, all: "" });
    expect(parseEsearch("* ESEARCH ALL 4")).toEqual({ tag: undefined, uid: false, all: "4" });
    expect(parseEsearch("* SEARCH 1 2")).toBeNull();
  });
});
