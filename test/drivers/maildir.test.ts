import { createHash, randomBytes } from "node:crypto";
import { lstatSync, readdirSync } from "node:fs";
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DriverError, type Folder, type Store } from "../../src/drivers/driver.js";
import { openMaildirStore } from "../../src/drivers/maildir/maildir-store.js";
import { fingerprintOf } from "../../src/model/fingerprint.js";
import type { MessageMeta } from "../../src/model/types.js";

let sandbox: string;
let root: string;
let warnings: string[];
const stores: Store[] = [];

beforeEach(async () => {
  sandbox = await mkdtemp(join(tmpdir(), "tandem-maildir-"));
  root = join(sandbox, "Mail");
  warnings = [];
});

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await rm(sandbox, { recursive: true, force: true });
});

async function open(layout: "maildir++" | "fs" = "maildir++"): Promise<Store> {
  const store = await openMaildirStore({
    path: root,
    layout,
    create: true,
    onWarning: (m) => warnings.push(m),
  });
  stores.push(store);
  return store;
}

async function* chunks(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === "string" ? Buffer.from(p, "utf8") : p;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

async function listAll(folder: Folder, opts?: { minDate?: number }): Promise<MessageMeta[]> {
  const out: MessageMeta[] = [];
  for await (const m of folder.list(opts)) out.push(m);
  return out;
}

function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      out.push(`${rel}${n}`);
      if (lstatSync(p).isDirectory()) walk(p, `${rel}${n}/`);
    }
  };
  walk(dir, "");
  return out.sort();
}

async function rejection(p: Promise<unknown>): Promise<DriverError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DriverError);
    return err as DriverError;
  }
  throw new Error("expected a rejection");
}

const MSG = "From: a@example.org\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nHello\r\n";
const DATE = Date.UTC(2021, 4, 17, 10, 20, 30, 0);

describe("MaildirFolder messages", () => {
  it("append() then list() then read() gives identical bytes, date and flags", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const key = await inbox.append({
      body: chunks(MSG.slice(0, 10), MSG.slice(10)),
      flags: ["\\Seen", "$Junk", "\\Flagged", "work"],
      date: DATE,
    });
    expect(key).not.toContain(":2,");
    const list = await listAll(inbox);
    expect(list).toEqual([
      { key, flags: ["$Junk", "\\Flagged", "\\Seen", "work"], size: Buffer.byteLength(MSG), date: DATE },
    ]);
    expect((await collect(inbox.read(key))).toString("utf8")).toBe(MSG);
    const files = await readdir(join(root, "cur"));
    expect(files).toEqual([`${key}:2,FSab`]);
    expect(await readFile(join(root, "dovecot-keywords"), "utf8")).toBe("0 $Junk\n1 work\n");
    expect((await stat(join(root, "cur", files[0]!))).mode & 0o777).toBe(0o600);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
    // The keyword letters survive reopening.
    const again = await (await store.openFolder("INBOX")).list()[Symbol.asyncIterator]().next();
    expect(again.value?.flags).toEqual(["$Junk", "\\Flagged", "\\Seen", "work"]);
  });

  it("list() is in ascending key order, filters by minDate and reads new/ too", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    await writeFile(join(root, "new", "1000.plain.host"), "Subject: new\n\nx\n");
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) {
      keys.push(
        await inbox.append({ body: chunks(`Subject: ${i}\n\n`), flags: [], date: DATE + i * 86_400_000 }),
      );
    }
    const list = await listAll(inbox);
    const listed = list.map((m) => m.key);
    expect(listed).toEqual([...keys, "1000.plain.host"].sort());
    expect(list.find((m) => m.key === "1000.plain.host")?.flags).toEqual([]);
    const recent = await listAll(inbox, { minDate: DATE + 3 * 86_400_000 });
    expect(recent.map((m) => m.key).filter((k) => keys.includes(k))).toEqual(keys.slice(3).sort());
    // Maildir reads lazily: the count is as of the folder's last listing.
    const again = await store.openFolder("INBOX");
    await listAll(again, {});
    expect(again.marker).toEqual({ count: 6 });
  });

  it("a message moved new/ → cur/ by a mail client keeps its key, and setFlags() follows it", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    await writeFile(join(root, "new", "2000.abc.host"), MSG);
    expect((await listAll(inbox)).map((m) => m.key)).toEqual(["2000.abc.host"]);
    // The "MUA" sees it and marks it flagged, after our listing.
    await rename(join(root, "new", "2000.abc.host"), join(root, "cur", "2000.abc.host:2,F"));
    await inbox.setFlags(["2000.abc.host"], ["\\Seen"], []);
    expect(await readdir(join(root, "cur"))).toEqual(["2000.abc.host:2,FS"]);
    expect(await readdir(join(root, "new"))).toEqual([]);
    expect(await listAll(inbox)).toMatchObject([{ key: "2000.abc.host", flags: ["\\Flagged", "\\Seen"] }]);
  });

  it("setFlags() moves a new/ message into cur/ with its flags and keeps unknown letters", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    await writeFile(join(root, "new", "3000.a.host"), MSG);
    await writeFile(join(root, "cur", "3001.a.host:2,Sz"), MSG);
    await listAll(inbox);
    await inbox.setFlags(["3000.a.host", "3001.a.host"], ["\\Answered", "$Label"], ["\\Seen"]);
    expect((await readdir(join(root, "cur"))).sort()).toEqual(["3000.a.host:2,Ra", "3001.a.host:2,Raz"]);
    expect(await listAll(inbox)).toMatchObject([
      { key: "3000.a.host", flags: ["$Label", "\\Answered"] },
      { key: "3001.a.host", flags: ["$Label", "\\Answered"] },
    ]);
    await inbox.setFlags(["3000.a.host"], [], ["$Label", "\\Answered"]);
    expect((await readdir(join(root, "cur"))).sort()).toEqual(["3000.a.host:2,", "3001.a.host:2,Raz"]);
  });

  it("setFlagsMany(): several distinct changes (a keyword, a new/ message) in one call, each applied as setFlags() would", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    await writeFile(join(root, "new", "4000.a.host"), MSG);
    await writeFile(join(root, "cur", "4001.a.host:2,S"), MSG);
    await writeFile(join(root, "cur", "4002.a.host:2,FS"), MSG);
    await writeFile(join(root, "cur", "4003.a.host:2,"), MSG);
    await listAll(inbox);
    await inbox.setFlagsMany!([
      { keys: ["4000.a.host", "4001.a.host"], add: ["\\Flagged"], remove: [] },
      { keys: ["4002.a.host"], add: [], remove: ["\\Seen", "\\Flagged"] },
      { keys: ["4003.a.host"], add: ["$Label"], remove: [] },
      { keys: [], add: ["\\Seen"], remove: [] },
    ]);
    expect((await readdir(join(root, "cur"))).sort()).toEqual([
      "4000.a.host:2,F",
      "4001.a.host:2,FS",
      "4002.a.host:2,",
      "4003.a.host:2,a",
    ]);
    expect(await readdir(join(root, "new"))).toEqual([]);
    expect(await listAll(inbox)).toMatchObject([
      { key: "4000.a.host", flags: ["\\Flagged"] },
      { key: "4001.a.host", flags: ["\\Flagged", "\\Seen"] },
      { key: "4002.a.host", flags: [] },
      { key: "4003.a.host", flags: ["$Label"] },
    ]);
    // A key that is not there fails the call, as setFlags() does.
    await expect(
      inbox.setFlagsMany!([{ keys: ["9999.gone.host"], add: ["\\Seen"], remove: [] }]),
    ).rejects.toThrow();
  });

  it("expect(): a folder not listed finds a message by the name its expected flags make, else reads the folder", async () => {
    const store = await open();
    await store.openFolder("INBOX");
    await writeFile(join(root, "cur", "6000.a.host:2,S"), MSG);
    await writeFile(join(root, "new", "6001.b.host"), MSG);
    await writeFile(join(root, "cur", "6002.c.host:2,RS"), MSG);
    await writeFile(join(root, "cur", "6003.d.host:2,F"), MSG);
    const inbox = await store.openFolder("INBOX");
    inbox.expect?.(
      new Map([
        ["6000.a.host", ["\\Seen"]],
        ["6001.b.host", []],
        // Wrong: a mail client flagged it since.
        ["6003.d.host", []],
      ]),
    );
    await inbox.setFlags(["6000.a.host"], ["\\Flagged"], []);
    await inbox.remove(["6001.b.host"]);
    // Both found by their names alone: the folder was never read whole, so no count is known.
    expect(inbox.marker).toEqual({});
    expect((await readdir(join(root, "cur"))).sort()).toEqual([
      "6000.a.host:2,FS",
      "6002.c.host:2,RS",
      "6003.d.host:2,F",
    ]);
    expect(await readdir(join(root, "new"))).toEqual([]);
    // The wrong hint finds no file: the folder is read, and the message is found all the same.
    await inbox.setFlags(["6003.d.host"], ["\\Seen"], []);
    expect(inbox.marker).toEqual({ count: 3 });
    expect(await listAll(inbox)).toMatchObject([
      { key: "6000.a.host", flags: ["\\Flagged", "\\Seen"] },
      { key: "6002.c.host", flags: ["\\Answered", "\\Seen"] },
      { key: "6003.d.host", flags: ["\\Flagged", "\\Seen"] },
    ]);
  });

  it("list() survives a file renamed between readdir and stat", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    await writeFile(join(root, "cur", "4000.a.host:2,"), MSG);
    await writeFile(join(root, "cur", "4001.b.host:2,"), MSG);
    await writeFile(join(root, "cur", "4002.c.host:2,"), MSG);
    const it = inbox.list()[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value?.key).toBe("4000.a.host");
    await rename(join(root, "cur", "4001.b.host:2,"), join(root, "cur", "4001.b.host:2,S"));
    await unlink(join(root, "cur", "4002.c.host:2,"));
    const second = await it.next();
    expect(second.value).toMatchObject({ key: "4001.b.host", flags: ["\\Seen"] });
    expect((await it.next()).done).toBe(true);
    expect(warnings).toEqual([]);
  });

  it("setFlags() on a key that is gone is a message-scoped error", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const err = await rejection(inbox.setFlags(["nope"], ["\\Seen"], []));
    expect(err).toMatchObject({ scope: "message", code: "ENOENT" });
    expect(err.message).toContain(root);
    expect(await rejection(collect(inbox.read("nope")))).toMatchObject({ scope: "message", code: "ENOENT" });
  });

  it("remove() removes exactly the given keys", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const keys: string[] = [];
    for (let i = 0; i < 4; i++)
      keys.push(await inbox.append({ body: chunks(MSG), flags: ["\\Deleted"], date: DATE }));
    await writeFile(join(root, "new", "5000.other.host"), MSG);
    await inbox.remove([keys[1]!, keys[3]!]);
    expect((await listAll(inbox)).map((m) => m.key)).toEqual([keys[0], keys[2], "5000.other.host"].sort());
    // Removing a key that is already gone changes nothing else.
    await inbox.remove([keys[1]!]);
    expect(await listAll(inbox)).toHaveLength(3);
  });

  it("readHeader() returns the header up to and including the empty line", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const crlf = await inbox.append({ body: chunks(MSG), flags: [], date: DATE });
    const lf = await inbox.append({ body: chunks("A: 1\n", "B: 2\n\nbody\n\nmore"), flags: [], date: DATE });
    const none = await inbox.append({ body: chunks("A: 1\nB: 2"), flags: [], date: DATE });
    const big = `X-Long: ${"y".repeat(300 * 1024)}\n\nbody`;
    const huge = await inbox.append({ body: chunks(big), flags: [], date: DATE });
    const text = async (k: string) => Buffer.from(await inbox.readHeader(k)).toString("latin1");
    expect(await text(crlf)).toBe(MSG.slice(0, MSG.indexOf("\r\n\r\n") + 4));
    expect(await text(lf)).toBe("A: 1\nB: 2\n\n");
    expect(await text(none)).toBe("A: 1\nB: 2");
    expect((await inbox.readHeader(huge)).length).toBe(256 * 1024);
  });

  it("carries bare-LF and binary garbage byte-exact", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const bareLf = Buffer.from("Subject: lf\n\nline\rcr only\n\n\nend", "latin1");
    const garbage = Buffer.concat([randomBytes(100_000), Buffer.from([0, 13, 0, 10, 255, 254])]);
    const a = await inbox.append({ body: chunks(bareLf), flags: [], date: DATE });
    const b = await inbox.append({
      body: chunks(garbage.subarray(0, 777), garbage.subarray(777)),
      flags: [],
      date: DATE,
    });
    expect((await collect(inbox.read(a))).equals(bareLf)).toBe(true);
    expect((await collect(inbox.read(b))).equals(garbage)).toBe(true);
    const sizes = Object.fromEntries((await listAll(inbox)).map((m) => [m.key, m.size]));
    expect(sizes).toEqual({ [a]: bareLf.length, [b]: garbage.length });
  });

  it("streams a 20 MB append without holding it in memory", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const chunk = randomBytes(64 * 1024);
    const total = 20 * 1024 * 1024;
    const hash = createHash("sha256");
    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let sent = 0; sent < total; sent += chunk.length) {
        // One buffer, rewritten for every chunk: the source allocates nothing, so any growth is the
        // driver's, and a driver that kept chunks instead of writing them would store wrong bytes.
        chunk.writeUInt32BE(sent, 0);
        hash.update(chunk);
        peak = Math.max(peak, process.memoryUsage().rss);
        yield chunk;
      }
    }
    const key = await inbox.append({ body: body(), size: total, flags: [], date: DATE });
    expect(peak - before).toBeLessThan(total * 0.5);
    const back = createHash("sha256");
    let size = 0;
    for await (const c of inbox.read(key)) {
      back.update(c);
      size += c.length;
    }
    expect(size).toBe(total);
    expect(back.digest("hex")).toBe(hash.digest("hex"));
  });

  it("reports and skips files it cannot use; the rest of the folder still lists", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const good = await inbox.append({ body: chunks(MSG), flags: [], date: DATE });
    await symlink(join(sandbox, "missing"), join(root, "cur", "6000.dangling.host:2,S"));
    await mkdir(join(root, "cur", "6001.dir.host:2,"));
    const list = await listAll(inbox);
    expect(list.map((m) => m.key)).toEqual([good]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain("6000.dangling.host");
    expect(warnings[1]).toContain("6001.dir.host");
    // listFlags() reads no stat for plain files, yet drops the same entries.
    expect((await inbox.listFlags!()).map((m) => m.key)).toEqual([good]);
    // printFlags() reads no stat at all: entries that are not plain files leave it to listFlags().
    expect(await inbox.printFlags!()).toBeUndefined();
    const target = join(sandbox, "target");
    await writeFile(target, MSG);
    await symlink(target, join(root, "cur", "6002.link.host:2,F"));
    expect((await inbox.listFlags!()).map((m) => m.key).sort()).toEqual(
      (await listAll(inbox)).map((m) => m.key).sort(),
    );
    expect((await inbox.listFlags!()).length).toBe(2);
  });

  it("printFlags() is the print of listFlags(): flags, keywords, new/ without info; a key twice never matches", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const sets = [[], ["\\Seen"], ["\\Answered", "\\Seen", "Work"], ["$Junk", "\\Flagged"], ["Work"]];
    const keys: string[] = [];
    for (const flags of sets) keys.push(await inbox.append({ body: chunks(MSG), flags, date: DATE }));
    // Delivered by another program: in new/, no info part at all.
    await writeFile(join(root, "new", "7000.fresh.host"), MSG);
    const printOf = (l: { key: string; flags: string[] }[]) => ({
      count: l.length,
      fingerprint: fingerprintOf(l),
    });
    const listed = await inbox.listFlags!();
    expect(listed).toHaveLength(6);
    expect(await inbox.printFlags!()).toEqual(printOf(listed));
    // A flag changed by another program changes the print, and it still equals listFlags()'.
    const [name] = (await readdir(join(root, "cur"))).filter((n) => n.startsWith(keys[1]!));
    await rename(join(root, "cur", name!), join(root, "cur", `${keys[1]}:2,FS`));
    const after = await inbox.printFlags!();
    expect(after).toEqual(printOf(await inbox.listFlags!()));
    expect(after).not.toEqual(printOf(listed));
    // The same key in cur/ and in new/: listFlags() lists it once, the print counts both, and so
    // can never match a print of any listing (a proof then fails, and the run lists for real).
    await writeFile(join(root, "new", `${keys[0]}`), MSG);
    const twice = await inbox.printFlags!();
    const once = await inbox.listFlags!();
    expect(once).toHaveLength(6);
    expect(twice?.count).toBe(7);
    expect(twice?.fingerprint).not.toBe(fingerprintOf(once));
  });

  it("listDiff() gives exactly the new, re-flagged and vanished messages against known flags", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    const sets = [[], ["\\Seen"], ["\\Answered", "\\Seen", "Work"], ["\\Flagged"]];
    const keys: string[] = [];
    for (const flags of sets) keys.push(await inbox.append({ body: chunks(MSG), flags, date: DATE }));
    const known = new Map((await inbox.listFlags!()).map((m) => [m.key, m.flags.join(" ")]));
    expect(await inbox.listDiff!(known)).toEqual({ changed: [], vanished: [] });
    // Another program: flags one message, removes one, delivers one.
    const [name] = (await readdir(join(root, "cur"))).filter((n) => n.startsWith(keys[1]!));
    await rename(join(root, "cur", name!), join(root, "cur", `${keys[1]}:2,FS`));
    const [gone] = (await readdir(join(root, "cur"))).filter((n) => n.startsWith(keys[3]!));
    await rm(join(root, "cur", gone!));
    await writeFile(join(root, "new", "7000.fresh.host"), MSG);
    const diff = await inbox.listDiff!(known);
    expect(diff.vanished).toEqual([keys[3]]);
    // As list({ known }) gives them: a known key without size and date, a new one with both.
    const full = new Map((await listAll(inbox)).map((m) => [m.key, m]));
    expect(diff.changed).toEqual(
      [
        {
          key: "7000.fresh.host",
          flags: [],
          size: full.get("7000.fresh.host")!.size,
          date: full.get("7000.fresh.host")!.date,
        },
        { key: keys[1], flags: ["\\Flagged", "\\Seen"], size: Number.NaN, date: Number.NaN },
      ].sort((a, b) => (a.key! < b.key! ? -1 : 1)),
    );
    // A caller whose text of the flags differs only in order gets the entry too (it compares sets).
    const reordered = new Map(known);
    reordered.set(keys[2]!, "Work \\Seen \\Answered");
    expect((await inbox.listDiff!(reordered)).changed.map((m) => m.key)).toContain(keys[2]);
  });

  it("fails loudly (not with an empty listing) when cur/ cannot be read", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    await rm(join(root, "cur"), { recursive: true });
    await writeFile(join(root, "cur"), "");
    const err = await rejection(listAll(inbox));
    expect(err).toMatchObject({ scope: "folder", code: "ENOTDIR" });
    expect(err.message).toContain(join(root, "cur"));
  });

  it("maps write failures to DriverError naming the path, and leaves no tmp file", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    await rm(join(root, "cur"), { recursive: true });
    const err = await rejection(inbox.append({ body: chunks(MSG), flags: [], date: DATE }));
    expect(err).toMatchObject({ code: "ENOENT" });
    expect(err.message).toContain(join(root, "cur"));
    expect(err.cause).toBeDefined();
    expect(await readdir(join(root, "tmp"))).toEqual([]);
  });

  it("a body that fails is reported as such and leaves no tmp file", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from("Subject: x\n");
      throw new Error("connection reset");
    }
    const err = await rejection(inbox.append({ body: failing(), flags: [], date: DATE }));
    expect(err).toMatchObject({ scope: "message", code: "EBODY" });
    expect(await readdir(join(root, "tmp"))).toEqual([]);
  });

  it("close() makes further calls fail with a store-scoped error", async () => {
    const store = await open();
    const inbox = await store.openFolder("INBOX");
    await store.close();
    expect(await rejection(listAll(inbox))).toMatchObject({ scope: "store", code: "ECLOSED" });
    expect(await rejection(store.listFolders())).toMatchObject({ scope: "store", code: "ECLOSED" });
  });
});

describe("Maildir folders", () => {
  it("maildir++: create, list and remove nested folders", async () => {
    const store = await open("maildir++");
    // Only the folder itself is made; its parents stay implicit until made on their own.
    await store.createFolder("Archive/2024/Q1");
    expect(await store.listFolders()).toEqual([
      { name: "INBOX" },
      { name: "Archive", noselect: true },
      { name: "Archive/2024", noselect: true },
      { name: "Archive/2024/Q1" },
    ]);
    await store.createFolder("Archive");
    await store.createFolder("Archive/2024");
    await store.createFolder("Sent");
    await store.createFolder("Sent");
    expect(await store.listFolders()).toEqual([
      { name: "INBOX" },
      { name: "Archive" },
      { name: "Archive/2024" },
      { name: "Archive/2024/Q1" },
      { name: "Sent" },
    ]);
    for (const d of [".Archive", ".Archive.2024", ".Archive.2024.Q1", ".Sent"]) {
      expect((await readdir(join(root, d))).sort()).toEqual(["cur", "maildirfolder", "new", "tmp"]);
      expect((await stat(join(root, d))).mode & 0o777).toBe(0o700);
    }
    const q1 = await store.openFolder("Archive/2024/Q1");
    const key = await q1.append({ body: chunks(MSG), flags: ["\\Seen"], date: DATE });
    expect(await readdir(join(root, ".Archive.2024.Q1", "cur"))).toEqual([`${key}:2,S`]);
    const err = await rejection(store.removeFolder("Archive/2024/Q1"));
    expect(err).toMatchObject({ scope: "folder", code: "ENOTEMPTY" });
    await q1.remove([key]);
    await store.removeFolder("Archive/2024/Q1");
    await store.removeFolder("Archive");
    // .Archive.2024 remains, so Archive is still reported, as a parent that holds no messages.
    expect(await store.listFolders()).toEqual([
      { name: "INBOX" },
      { name: "Archive", noselect: true },
      { name: "Archive/2024" },
      { name: "Sent" },
    ]);
    expect(await readdir(root)).not.toContain(".Archive");
    expect(await rejection(store.openFolder("Archive/2024/Q1"))).toMatchObject({
      scope: "folder",
      code: "ENOENT",
    });
    expect(await rejection(store.removeFolder("INBOX"))).toMatchObject({ scope: "folder" });
  });

  it("removeFolder() refuses a Maildir++ folder holding foreign files, touching nothing", async () => {
    const store = await open("maildir++");
    await store.createFolder("Keep");
    await writeFile(join(root, ".Keep", "notes.txt"), "mine");
    await writeFile(join(root, ".Keep", "dovecot-uidlist"), "3 V1 N1\n");
    const err = await rejection(store.removeFolder("Keep"));
    expect(err).toMatchObject({ scope: "folder", code: "ENOTEMPTY" });
    expect(err.message).toContain("notes.txt");
    expect((await readdir(join(root, ".Keep"))).sort()).toEqual([
      "cur",
      "dovecot-uidlist",
      "maildirfolder",
      "new",
      "notes.txt",
      "tmp",
    ]);
  });

  it("maildir++ removeFolder() leaves the folder namespace in one rename: a run killed on either side of it leaves no dot-directory that is no folder", async () => {
    const store = await open("maildir++");
    await store.createFolder("Done");
    await store.removeFolder("Done");
    // Nothing left behind, under the folder's name or the name it was renamed to.
    expect((await readdir(root)).sort()).toEqual(["cur", "new", "tmp"]);
    // Killed before the rename, after cur/ and new/ went: tmp/ still makes it a folder, and the
    // next removal finishes it.
    await store.createFolder("Half");
    for (const sub of ["cur", "new"]) await rm(join(root, ".Half", sub), { recursive: true });
    expect((await store.listFolders()).map((f) => f.name)).toContain("Half");
    // Killed after the rename: outside the namespace (no folder), swept by the next removal;
    // one holding a file that is not the folder's own is left as it is.
    for (const [d, extra] of [
      ["tandem-removing-0a1b2c", ""],
      ["tandem-removing-3d4e5f", "mine.txt"],
    ] as const) {
      await mkdir(join(root, d, "tmp"), { recursive: true });
      await writeFile(join(root, d, "maildirfolder"), "");
      if (extra) await writeFile(join(root, d, extra), "keep me");
    }
    expect((await store.listFolders()).map((f) => f.name)).toEqual(["INBOX", "Half"]);
    await store.removeFolder("Half");
    expect((await readdir(root)).sort()).toEqual(["cur", "new", "tandem-removing-3d4e5f", "tmp"]);
    expect(await readFile(join(root, "tandem-removing-3d4e5f", "mine.txt"), "utf8")).toBe("keep me");
    expect((await store.listFolders()).map((f) => f.name)).toEqual(["INBOX"]);
  });

  it("remove() also removes a duplicate file of the same key left in new/", async () => {
    const store = await open();
    await writeFile(join(root, "new", "7000.dup.host"), MSG);
    await writeFile(join(root, "cur", "7000.dup.host:2,S"), MSG);
    const inbox = await store.openFolder("INBOX");
    expect(await listAll(inbox)).toMatchObject([{ key: "7000.dup.host", flags: ["\\Seen"] }]);
    await inbox.remove(["7000.dup.host"]);
    expect(await listAll(inbox)).toEqual([]);
    expect(await readdir(join(root, "new"))).toEqual([]);
  });

  it("maildir++: a dotted name is refused, foreign dot directories are not folders", async () => {
    const store = await open("maildir++");
    expect(await rejection(store.createFolder("a.b"))).toMatchObject({ scope: "folder", code: "EBADNAME" });
    await mkdir(join(root, ".notmuch", "xapian"), { recursive: true });
    expect(await store.listFolders()).toEqual([{ name: "INBOX" }]);
  });

  it("fs: create, list and remove nested folders", async () => {
    const store = await open("fs");
    await store.createFolder("Lists/dev");
    expect(await store.listFolders()).toEqual([
      { name: "INBOX" },
      { name: "Lists", noselect: true },
      { name: "Lists/dev" },
    ]);
    await store.createFolder("Lists");
    await store.createFolder("Sent");
    await store.createFolder("INBOX/Sub");
    expect(await store.listFolders()).toEqual([
      { name: "INBOX" },
      { name: "INBOX/Sub" },
      { name: "Lists" },
      { name: "Lists/dev" },
      { name: "Sent" },
    ]);
    expect((await readdir(join(root, "Lists"))).sort()).toEqual(["cur", "dev", "new", "tmp"]);
    const dev = await store.openFolder("Lists/dev");
    const key = await dev.append({ body: chunks(MSG), flags: [], date: DATE });
    expect(await readdir(join(root, "Lists", "dev", "cur"))).toEqual([`${key}:2,`]);
    // A folder with a child loses its cur/new/tmp and stays as a plain parent.
    await store.removeFolder("Lists");
    expect(await store.listFolders()).toEqual([
      { name: "INBOX" },
      { name: "INBOX/Sub" },
      { name: "Lists", noselect: true },
      { name: "Lists/dev" },
      { name: "Sent" },
    ]);
    await store.removeFolder("Sent");
    expect(await readdir(root)).not.toContain("Sent");
  });

  it("openFolder() completes a folder missing some of cur/new/tmp", async () => {
    const store = await open("fs");
    await mkdir(join(root, "Half", "cur"), { recursive: true });
    expect((await store.listFolders()).map((f) => f.name)).toContain("Half");
    const half = await store.openFolder("Half");
    expect(await listAll(half)).toEqual([]);
    expect((await readdir(join(root, "Half"))).sort()).toEqual(["cur", "new", "tmp"]);
  });

  const hostile: [string, ("maildir++" | "fs")[]][] = [
    ["..", ["maildir++", "fs"]],
    ["../etc", ["maildir++", "fs"]],
    ["a/../../x", ["maildir++", "fs"]],
    ["a/./b", ["maildir++", "fs"]],
    ["/abs", ["maildir++", "fs"]],
    ["/", ["maildir++", "fs"]],
    ["", ["maildir++", "fs"]],
    ["a//b", ["maildir++", "fs"]],
    ["a/", ["maildir++", "fs"]],
    ["a\\..\\..\\x", ["maildir++", "fs"]],
    ["a\u0000b", ["maildir++", "fs"]],
    ["a\nb", ["maildir++", "fs"]],
    ["a\rb", ["maildir++", "fs"]],
    [".hidden", ["maildir++", "fs"]],
    ["cur", ["fs"]],
    ["a/new", ["fs"]],
    ["tmp/x", ["fs"]],
    ["a.b", ["maildir++"]],
  ];
  for (const [name, layouts] of hostile) {
    for (const layout of layouts) {
      it(`refuses folder ${JSON.stringify(name)} in ${layout} layout and writes nothing outside the root`, async () => {
        const store = await open(layout);
        const before = tree(sandbox);
        for (const call of [
          () => store.createFolder(name),
          () => store.openFolder(name),
          () => store.removeFolder(name),
        ]) {
          const err = await rejection(call());
          expect(err).toMatchObject({ scope: "folder", code: "EBADNAME" });
          expect(err.message).toContain(`Cannot use folder ${JSON.stringify(name)}`);
        }
        expect(tree(sandbox)).toEqual(before);
      });
    }
  }

  it("names the reason for a name that would escape the root", async () => {
    const store = await open("fs");
    const err = await rejection(store.createFolder("../etc"));
    expect(err.message).toBe('Cannot use folder "../etc": it would escape the Maildir root');
  });

  it("openMaildirStore() without create refuses a missing root", async () => {
    const err = await rejection(openMaildirStore({ path: join(sandbox, "nope"), layout: "fs" }));
    expect(err).toMatchObject({ scope: "store", code: "ENOENT" });
  });
});
