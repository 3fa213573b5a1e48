// The engine through runAccount (and the shipped CLI) with an IMAP side against a real Dovecot:
// another client's changes, UIDVALIDITY changes, a server without UIDPLUS, awkward folder names,
// awkward messages, and what the CLI says on login and connection failures without leaking secrets.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import { DAY, drift, NOW, show, work } from "../engine/harness.js";
import { type DovecotServer, dovecotAvailable, type ImapUser, startDovecot } from "../helpers/dovecot.js";
import { type CommandResult, runCommand } from "../helpers/run-command.js";
import { appendTagged, makeSidesWorld, messageText, type SidesWorld, sync, withImap } from "./sides.js";

const skip = !dovecotAvailable() && !process.env.CI;
const root = resolve(import.meta.dirname, "../..");
const CJS = join(root, "dist", "tandem.cjs");

let server: DovecotServer;
const worlds: SidesWorld[] = [];
beforeAll(async () => {
  if (!skip) server = await startDovecot();
});
afterAll(async () => {
  await server?.stop();
  for (const w of worlds) w.cleanup();
});

/** Left IMAP (a fresh user of `srv`), right Maildir. */
async function imapMaildir(
  opts: { srv?: DovecotServer; layout?: "maildir++" | "fs" } = {},
): Promise<SidesWorld & { u: ImapUser; md: string }> {
  const w = await makeSidesWorld(
    { left: "imap", right: "maildir" },
    { server: opts.srv ?? server, layout: opts.layout },
  );
  worlds.push(w);
  return Object.assign(w, { u: w.sides.left.user!, md: w.sides.right.root! });
}

function folderSummary(r: Awaited<ReturnType<typeof sync>>): string[] {
  return r.folders.map(
    (f) =>
      `${f.folder}: copied ${f.copied.left}/${f.copied.right} flagged ${f.flagged.left}/${f.flagged.right} removed ${f.removed.left}/${f.removed.right}${f.created.length ? ` created ${f.created.join(",")}` : ""}${f.stops.length ? ` stops ${f.stops.map((s) => s.guard).join(",")}` : ""}${f.errors.length ? ` errors ${f.errors.length}` : ""}`,
  );
}

async function imapFolders(u: ImapUser): Promise<string[]> {
  return withImap(u, async (c) => (await c.list()).map((e) => e.path).sort());
}

/** Rewrites a Dovecot user's passwd-file line (new password and/or userdb extra fields). */
async function rewriteUser(
  srv: DovecotServer,
  u: ImapUser,
  opts: { password?: string; extra?: string },
): Promise<ImapUser> {
  const file = join(srv.dir, "users", u.user);
  const fields = readFileSync(file, "utf8").trimEnd().split(":");
  if (opts.password !== undefined) fields[1] = `{PLAIN}${opts.password}`;
  if (opts.extra !== undefined) fields[7] = opts.extra;
  writeFileSync(`${file}.tmp`, `${fields.join(":")}\n`, { mode: 0o644 });
  const { renameSync } = await import("node:fs");
  renameSync(`${file}.tmp`, file);
  // Dovecot re-checks a passwd-file at most once a second.
  await new Promise((r) => setTimeout(r, 1100));
  return { ...u, password: opts.password ?? u.password };
}

describe.skipIf(skip).concurrent("another IMAP client between runs", () => {
  it("flags, new mail and expunges on IMAP reach the Maildir, and back", async () => {
    const w = await imapMaildir();
    await w.sides.left.seed("A B C:S D");
    let r = await sync(w);
    expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
    expect(await w.sides.right.show()).toBe("A B C:S D");

    await w.sides.left.change("+A:F -C:S +C:R xB nE:S");
    r = await sync(w);
    expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
    expect(drift(r)).toEqual([]);
    expect(await w.sides.right.show()).toBe("A:F C:R D E:S");
    expect(await w.sides.left.show()).toBe("A:F C:R D E:S");

    await w.sides.right.change("xD +E:F nG:D");
    r = await sync(w);
    expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
    expect(await w.sides.left.show()).toBe("A:F C:R E:FS G:D");
    expect(await w.sides.right.show()).toBe("A:F C:R E:FS G:D");
    expect(work(await sync(w))).toBe(0);
  });

  it("a message tandem copied to IMAP, then expunged there by another client: removed, no drift", async () => {
    const w = await imapMaildir();
    await w.sides.left.seed("A B");
    await w.sides.right.seed("C D:S", "Box");
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    await w.sides.right.change("nE:F");
    await w.sides.right.change("nF", "Box");
    // E and F reach IMAP with UIDs at or above the marker each folder's open recorded.
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    expect((await sync(w)).proven).toBe(true);
    await w.sides.left.change("xE +A:S");
    await w.sides.left.change("xF", "Box");
    const r = await sync(w);
    expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
    expect(drift(r)).toEqual([]);
    expect(await w.sides.right.show()).toBe("A:S B");
    expect(await w.sides.right.show("Box")).toBe("C D:S");
    expect((await sync(w)).proven).toBe(true);
  });

  it("folders created on IMAP (nested too) appear in the Maildir, and Maildir folders on IMAP", async () => {
    const w = await imapMaildir();
    await w.sides.left.seed("A");
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    await w.sides.left.seed("B", "Work");
    await w.sides.left.seed("C:F", "Work/Projects/2026");
    await w.sides.right.seed("D:S", "Archive/Old");
    const r = await sync(w);
    expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
    expect(drift(r)).toEqual([]);
    expect(await w.sides.right.show("Work")).toBe("B");
    expect(await w.sides.right.show("Work/Projects/2026")).toBe("C:F");
    expect(existsSync(join(w.md, ".Work.Projects.2026", "cur"))).toBe(true);
    expect(await w.sides.left.show("Archive/Old")).toBe("D:S");
    expect(await imapFolders(w.u)).toEqual(
      expect.arrayContaining(["Archive", "Archive.Old", "Work", "Work.Projects", "Work.Projects.2026"]),
    );
    // The parents the drivers created on the way ("Archive" on IMAP, ".Work.Projects" in the
    // Maildir) must not make the next run busy.
    const second = await sync(w);
    expect(second.exitCode).toBe(EXIT.ok);
    expect(drift(second)).toEqual([]);
    const third = await sync(w);
    expect(work(third), JSON.stringify(third.folders)).toBe(0);
  });

  it("nested folders: the second run does nothing", async () => {
    const w = await imapMaildir();
    await w.sides.left.seed("C:F", "Work/Projects/2026");
    await w.sides.right.seed("D:S", "Archive/Old");
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    const again = await sync(w);
    expect(work(again), JSON.stringify(again.folders)).toBe(0);
  });

  it("a folder deleted on IMAP is not silently dropped: the engine stops it and says how to go on", async () => {
    const w = await imapMaildir();
    await w.sides.left.seed("A");
    await w.sides.left.seed("B C:S", "Gone");
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    expect(await w.sides.right.show("Gone")).toBe("B C:S");
    await withImap(w.u, (c) => c.mailboxDelete("Gone"));
    const r = await sync(w);
    const gone = r.folders.find((f) => f.folder === "Gone");
    expect(gone?.stops.map((s) => s.message).join("\n")).toMatch(/removed on left.*--force/);
    expect(r.exitCode).not.toBe(EXIT.ok);
    // Its messages stay in the Maildir; the other folders still sync.
    expect(await w.sides.right.show("Gone")).toBe("B C:S");
    expect(r.folders.find((f) => f.folder === "INBOX")?.verified).toBe(true);
    // --force creates it again on IMAP and copies the messages back, once.
    const forced = await sync(w, { force: true });
    expect(forced.exitCode, JSON.stringify(forced)).toBe(EXIT.ok);
    expect(await w.sides.left.show("Gone")).toBe("B C:S");
    expect(work(await sync(w))).toBe(0);
  });
});

describe.skipIf(skip).concurrent("proof of an unchanged account (IMAP)", () => {
  it("nothing changed: proven; any change by another client on the server: the ordinary path", async () => {
    const w = await imapMaildir();
    await w.sides.left.seed("A B:S C:F");
    await w.sides.left.seed("D", "Box");
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    let r = await sync(w);
    expect(r.proven, JSON.stringify(r)).toBe(true);
    expect(r.folders.every((f) => f.verified)).toBe(true);
    for (const [what, act, inbox] of [
      ["a flag", "+A:F", "A:F B:S C:F"],
      ["a keyword ($Forwarded)", "+B:P", "A:F B:PS C:F"],
      ["an expunge and a new message (same count)", "xC nE", "A:F B:PS E"],
    ] as const) {
      await w.sides.left.change(act);
      r = await sync(w);
      expect(r.proven, what).toBeUndefined();
      expect(r.exitCode, what).toBe(EXIT.ok);
      expect(await w.sides.right.show(), what).toBe(inbox);
      expect((await sync(w)).proven, what).toBe(true);
    }
    // Same messages, same UIDs, new UIDVALIDITY: every key changed.
    await server.doveadm(["mailbox", "delete", "-u", w.u.user, "Box"]);
    await server.doveadm(["mailbox", "create", "-u", w.u.user, "Box"]);
    await withImap(w.u, (c) => appendTagged(c, "Box", "D", "", NOW - DAY));
    r = await sync(w);
    expect(r.proven).toBeUndefined();
    expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
    expect(await w.sides.right.show("Box")).toBe("D");
    expect((await sync(w)).proven).toBe(true);
  });
});

describe.skipIf(skip).concurrent("the proof path's IMAP batch (IMAP)", () => {
  it("after Maildir changes in every folder, the quiet IMAP side is printed once, by the batch", async () => {
    const w = await imapMaildir();
    const boxes = ["", "B1", "B2", "B3", "B4"];
    for (const [i, box] of boxes.entries()) await w.sides.left.seed(`A${i} B${i}:S`, box);
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    expect((await sync(w)).proven).toBe(true);
    for (const [i, box] of boxes.entries()) await w.sides.right.change(`+A${i}:F`, box);
    // printFlags() of the IMAP folders opened after the proof path: only verification's, after
    // the flags were written, is left; the quiet listing takes the batch's print.
    const printed: string[] = [];
    const r = await sync(w, {
      openStore: async (side) => {
        const store = await w.sides[side].open(w.warnings);
        if (side !== "left") return store;
        const openFolder = store.openFolder.bind(store);
        store.openFolder = async (name, o) => {
          const f = await openFolder(name, o);
          const print = f.printFlags?.bind(f);
          if (print)
            f.printFlags = () => {
              printed.push(name);
              return print();
            };
          return f;
        };
        return store;
      },
    });
    expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
    expect(r.folders.map((f) => `${f.folder}:${f.quiet}`).sort()).toEqual(
      ["B1", "B2", "B3", "B4", "INBOX"].map((b) => `${b}:left`),
    );
    expect(printed.sort()).toEqual(["B1", "B2", "B3", "B4", "INBOX"]);
    for (const [i, box] of boxes.entries()) expect(await w.sides.left.show(box)).toBe(`A${i}:F B${i}:S`);
    expect((await sync(w)).proven).toBe(true);
  });
});

/** Stores for sync(): the IMAP one's lean commands, tags dropped, go into `sent`. */
function tracedImap(w: Awaited<ReturnType<typeof imapMaildir>>, sent: string[]) {
  return (side: "left" | "right") =>
    side === "right"
      ? w.sides.right.open(w.warnings)
      : openImapStore({
          host: w.u.host,
          port: w.u.port,
          tls: "none",
          user: w.u.user,
          auth: { password: w.u.password },
          debug: (m) => {
            if (m.startsWith("imap lean C: ")) sent.push(m.slice(13).replace(/^L\d+ /, ""));
          },
        });
}

describe.skipIf(skip).concurrent("the proof path's IMAP selections (IMAP)", () => {
  it("after server changes in every folder, the folders the batch left selected are not selected again", async () => {
    const w = await imapMaildir();
    const boxes = ["", "B1", "B2", "B3"];
    for (const [i, box] of boxes.entries()) await w.sides.left.seed(`A${i} B${i}:S`, box);
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    expect((await sync(w)).proven).toBe(true);
    for (const [i, box] of boxes.entries()) await w.sides.left.change(`+A${i}:F nC${i}`, box);
    const sent: string[] = [];
    const r = await sync(w, { openStore: tracedImap(w, sent) });
    expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
    for (const [i, box] of boxes.entries())
      expect(await w.sides.right.show(box)).toBe(`A${i}:F B${i}:S C${i}`);
    const opens = (path: string) =>
      sent.filter((l) => l.startsWith(`EXAMINE "${path}"`) || l.startsWith(`SELECT "${path}"`)).length;
    // The run's one SELECT (for PERMANENTFLAGS) is in the batch, on its last folder, INBOX.
    expect(sent.filter((l) => l.startsWith("SELECT"))).toEqual(['SELECT "INBOX" (CONDSTORE)']);
    // INBOX goes last in the batch (four folders: one connection) and stays selected: the sync
    // reads it there. The others are opened again.
    expect(opens("INBOX")).toBe(1);
    expect(["B1", "B2", "B3"].map(opens)).toEqual([2, 2, 2]);
    expect(r.folders.find((f) => f.folder === "INBOX")?.quiet).toBe("right");
    expect((await sync(w)).proven).toBe(true);
  });

  it("after Maildir changes, an IMAP folder to be written is opened once, by a SELECT, not an EXAMINE and then a SELECT", async () => {
    const w = await imapMaildir();
    const boxes = ["", "B1", "B2", "B3"];
    for (const [i, box] of boxes.entries()) await w.sides.left.seed(`A${i} B${i}:S C${i}`, box);
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    expect((await sync(w)).proven).toBe(true);
    // B2 unchanged on both sides; every other folder has a flag change and a removal in the Maildir.
    for (const [i, box] of boxes.entries())
      if (box !== "B2") await w.sides.right.change(`+A${i}:F xC${i}`, box);
    const sent: string[] = [];
    const r = await sync(w, { openStore: tracedImap(w, sent) });
    expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
    for (const [i, box] of boxes.entries())
      expect(await w.sides.left.show(box)).toBe(box === "B2" ? `A${i} B${i}:S C${i}` : `A${i}:F B${i}:S`);
    const opens = (path: string) =>
      sent.filter((l) => /^(EXAMINE|SELECT) /.test(l) && l.includes(`"${path}"`));
    // The batch EXAMINEs B1 and B3 (SELECTs INBOX, its last); the sync SELECTs them once to write.
    expect(opens("B1")).toEqual(['EXAMINE "B1" (CONDSTORE)', 'SELECT "B1" (CONDSTORE)']);
    expect(opens("B3")).toEqual(['EXAMINE "B3" (CONDSTORE)', 'SELECT "B3" (CONDSTORE)']);
    expect(opens("INBOX")).toEqual(['SELECT "INBOX" (CONDSTORE)']);
    // Proven unchanged by the batch: not opened again.
    expect(opens("B2")).toEqual(['EXAMINE "B2" (CONDSTORE)']);
    expect((await sync(w)).proven).toBe(true);
  });
});

describe.skipIf(skip).concurrent("UIDVALIDITY change", () => {
  it("mailbox deleted and recreated with the same messages: no loss, no duplicate, no drift", async () => {
    const w = await imapMaildir();
    await w.sides.left.seed("A B:S C:F", "Box");
    await w.sides.right.seed("D:R", "Box");
    let r = await sync(w);
    expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
    expect(await w.sides.left.show("Box")).toBe("A B:S C:F D:R");
    const before = await withImap(w.u, async (c) => (await c.mailboxOpen("Box")).uidValidity);

    await server.doveadm(["mailbox", "delete", "-u", w.u.user, "Box"]);
    await server.doveadm(["mailbox", "create", "-u", w.u.user, "Box"]);
    await withImap(w.u, async (c) => {
      for (const [tag, letters] of [
        ["A", ""],
        ["B", "S"],
        ["C", "F"],
        ["D", "R"],
      ] as const)
        await appendTagged(c, "Box", tag, letters, NOW - DAY);
    });
    const after = await withImap(w.u, async (c) => (await c.mailboxOpen("Box")).uidValidity);
    expect(after).not.toBe(before);

    r = await sync(w);
    expect(r.exitCode, JSON.stringify(r.folders)).toBe(EXIT.ok);
    expect(drift(r)).toEqual([]);
    expect(await w.sides.left.show("Box")).toBe("A B:S C:F D:R");
    expect(await w.sides.right.show("Box")).toBe("A B:S C:F D:R");
    const again = await sync(w);
    expect(work(again)).toBe(0);
    expect(drift(again)).toEqual([]);
  });
});

describe.skipIf(skip).concurrent("IMAP folder names", () => {
  it("non-ASCII and spaces both ways (Maildir++)", async () => {
    const w = await imapMaildir();
    await w.sides.left.seed("A", "Entwürfe");
    await w.sides.left.seed("B:S", "My Folder");
    await w.sides.right.seed("C", "Gesendete Objekte/Größe");
    const r = await sync(w);
    expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
    expect(drift(r)).toEqual([]);
    expect(await w.sides.right.show("Entwürfe")).toBe("A");
    expect(await w.sides.right.show("My Folder")).toBe("B:S");
    expect(existsSync(join(w.md, ".Entwürfe"))).toBe(true);
    expect(await w.sides.left.show("Gesendete Objekte/Größe")).toBe("C");
    expect(await imapFolders(w.u)).toEqual(
      expect.arrayContaining(["Entwürfe", "My Folder", "Gesendete Objekte.Größe"]),
    );
    // "Gesendete Objekte", created on IMAP as the parent, reaches the Maildir only in the next
    // run at the latest; after that, nothing to do.
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    const again = await sync(w);
    expect(work(again), JSON.stringify(again.folders)).toBe(0);
  });

  it('a "." inside an IMAP folder name: refused clearly by Maildir++, the rest syncs; works with layout fs', async () => {
    // A Dovecot user whose mail uses LAYOUT=fs, so that the server's separator is "/" and "." is
    // an ordinary character of a folder name.
    for (const layout of ["maildir++", "fs"] as const) {
      const w = await imapMaildir({ layout });
      const fsUser = await rewriteUser(server, w.u, { extra: "userdb_mail=maildir:~/Maildir:LAYOUT=fs" });
      expect(await withImap(fsUser, async (c) => c.namespace?.delimiter)).toBe("/");
      await withImap(fsUser, async (c) => {
        await appendTagged(c, "v1.2", "A", "S", NOW - DAY);
        await appendTagged(c, "Plain", "B", "", NOW - DAY);
      });
      const r = await sync(w);
      const dotted = r.folders.find((f) => f.folder === "v1.2");
      const plain = r.folders.find((f) => f.folder === "Plain");
      expect(plain?.verified, JSON.stringify(r)).toBe(true);
      if (layout === "maildir++") {
        expect(r.exitCode).not.toBe(EXIT.ok);
        const said = [
          ...(dotted?.errors ?? []),
          ...(dotted?.stops.map((s) => s.message) ?? []),
          r.failure ?? "",
        ];
        expect(said.join("\n")).toMatch(/v1\.2.*"\."|"\.".*v1\.2/);
        expect(show(w.md, "Plain")).toBe("B");
      } else {
        expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
        expect(drift(r)).toEqual([]);
        expect(show(join(w.md, "v1.2"))).toBe("A:S");
        expect(show(join(w.md, "Plain"))).toBe("B");
        expect(work(await sync(w))).toBe(0);
      }
    }
  });
});

// ------------------------------------------------------------------ awkward messages

function fileBody(lines: string[], eol: string): Buffer {
  return Buffer.from(lines.join(eol) + eol, "latin1");
}

const MESSAGES: Record<string, Buffer> = {
  crlf: fileBody(
    ["Message-ID: <crlf@tandem.test>", "Subject: crlf", "From: a@example.com", "", "CRLF body", "line 2"],
    "\r\n",
  ),
  lf: fileBody(
    ["Message-ID: <lf@tandem.test>", "Subject: lf", "From: a@example.com", "", "bare LF body", "line 2"],
    "\n",
  ),
  eightbit: Buffer.concat([
    Buffer.from("Message-ID: <8bit@tandem.test>\r\nSubject: Grüße aus Köln ", "latin1"),
    Buffer.from("— ünïcödé\r\nFrom: Jürgen <j@example.com>\r\n\r\nKörper 8bit ✓\r\n", "utf8"),
  ]),
  noid: fileBody(
    ["Subject: noid", "From: a@example.com", "Date: Thu, 01 Jan 2026 10:00:00 +0000", "", "no id"],
    "\r\n",
  ),
};

function bigMessage(tag: string): Buffer {
  const raw = Buffer.alloc(15 * 1024 * 1024);
  for (let i = 0; i < raw.length; i += 32) createHash("sha256").update(`${tag}${i}`).digest().copy(raw, i);
  const b64 = raw.toString("base64").replace(/.{76}/g, "$&\r\n");
  const head = [
    `Message-ID: <${tag}@tandem.test>`,
    `Subject: ${tag}`,
    "From: a@example.com",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b"',
    "",
    "--b",
    "Content-Type: text/plain",
    "",
    "see attachment",
    "--b",
    "Content-Type: application/octet-stream",
    "Content-Transfer-Encoding: base64",
    'Content-Disposition: attachment; filename="big.bin"',
    "",
    "",
  ].join("\r\n");
  return Buffer.concat([Buffer.from(head), Buffer.from(b64), Buffer.from("\r\n--b--\r\n")]);
}

function noCr(b: Buffer): string {
  return createHash("sha256").update(b.toString("latin1").replace(/\r/g, "")).digest("hex");
}

function maildirFiles(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const sub of ["cur", "new"])
    for (const n of readdirSync(join(dir, sub))) out.push(readFileSync(join(dir, sub, n)));
  return out;
}

describe.skipIf(skip)("awkward messages both ways", () => {
  it("CRLF, bare LF, 8-bit headers, no Message-ID and 20 MB: copied, second run idle, deep verify clean", async () => {
    const w = await imapMaildir();
    const bigImap = bigMessage("big-imap");
    const bigMd = bigMessage("big-maildir");
    expect(bigImap.length).toBeGreaterThan(20_000_000);
    await withImap(w.u, async (c) => {
      for (const [tag, body] of Object.entries(MESSAGES)) {
        if (tag === "lf" || tag === "eightbit") continue; // these two come from the Maildir
        await c.append("INBOX", body, ["\\Seen"], new Date(NOW - DAY));
      }
      await c.append("INBOX", bigImap, [], new Date(NOW - DAY));
    });
    let n = 0;
    for (const [tag, body] of [...Object.entries(MESSAGES), ["big-maildir", bigMd] as const]) {
      if (tag === "crlf" || tag === "noid") continue;
      const file = join(w.md, "cur", `${Math.floor((NOW - DAY) / 1000)}.M${++n}P1.test:2,F`);
      writeFileSync(file, body);
    }
    const r = await sync(w);
    expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
    expect(drift(r)).toEqual([]);
    expect(folderSummary(r)).toEqual(["INBOX: copied 3/3 flagged 0/0 removed 0/0"]);

    const again = await sync(w);
    expect(work(again)).toBe(0);
    const deep = await sync(w, { verifyOnly: true, deep: true });
    expect(deep.exitCode, JSON.stringify(deep)).toBe(EXIT.ok);
    expect(drift(deep)).toEqual([]);

    // Same contents on both sides (line endings aside).
    const onImap = await withImap(w.u, async (c) => {
      await c.mailboxOpen("INBOX");
      const out: string[] = [];
      for await (const m of c.fetch("1:*", { source: true })) out.push(noCr(m.source!));
      return out.sort();
    });
    const onMd = maildirFiles(w.md).map(noCr).sort();
    const expected = [...Object.values(MESSAGES), bigImap, bigMd].map(noCr).sort();
    expect(onImap).toEqual(expected);
    expect(onMd).toEqual(expected);
  }, 120_000);
});

// ------------------------------------------------------------------ without UIDPLUS

// Dovecot 2.3's post-login list without UIDPLUS.
const NO_UIDPLUS =
  "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS " +
  "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE LIST-EXTENDED " +
  "I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE " +
  "SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY";

describe.skipIf(skip)("a server without UIDPLUS", () => {
  let plain: DovecotServer;
  beforeAll(async () => {
    plain = await startDovecot({ capabilities: NO_UIDPLUS });
  });
  afterAll(() => plain?.stop());

  it("copies to IMAP are found again without duplicates; removals are refused and reported", async () => {
    const w = await imapMaildir({ srv: plain });
    await w.sides.right.seed("A B:S C:F");
    // Twins without a Message-ID: the lookup must still tell them apart.
    for (let i = 0; i < 2; i++)
      writeFileSync(
        join(w.md, "new", `${Math.floor((NOW - DAY) / 1000)}.twin${i}.test`),
        "Subject: twin\r\nFrom: a@example.com\r\n\r\nsame\r\n",
      );
    await w.sides.left.seed("D");
    let r = await sync(w);
    expect(r.exitCode, JSON.stringify(r)).toBe(EXIT.ok);
    expect(drift(r)).toEqual([]);
    expect(w.warnings.join("\n")).toMatch(/UIDPLUS/);
    expect(await w.sides.left.show()).toBe("A B:S C:F D twin twin");
    expect(await w.sides.right.show()).toBe("A B:S C:F D twin twin");
    expect(work(await sync(w))).toBe(0);

    // A removal on the Maildir cannot be carried to this server: the engine says so, keeps the
    // message on IMAP, and reports it instead of claiming success.
    await w.sides.right.change("xA");
    r = await sync(w);
    const inbox = r.folders.find((f) => f.folder === "INBOX")!;
    expect(r.exitCode).not.toBe(EXIT.ok);
    expect([...inbox.errors, ...inbox.stops.map((s) => s.message), r.failure ?? ""].join("\n")).toMatch(
      /UIDPLUS/,
    );
    expect(await w.sides.left.show()).toBe("A B:S C:F D twin twin");
  });
});

// ------------------------------------------------------------------ the CLI

type Result = CommandResult;

function runCli(args: string[], cwd: string): Promise<Result> {
  return runCommand(process.execPath, [CJS, ...args], { cwd, home: cwd, timeoutMs: 60_000 });
}

function cliSetup(imap: string[]): { dir: string; state: string; maildir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "tandem-imap-cli-"));
  const state = join(dir, "state");
  const maildir = join(dir, "mail");
  for (const s of ["cur", "new", "tmp"]) mkdirSync(join(maildir, s), { recursive: true });
  const config = join(dir, "tandem.toml");
  writeFileSync(
    config,
    [
      "[defaults]",
      `stateDir = ${JSON.stringify(state)}`,
      "[accounts.mail]",
      "[accounts.mail.left]",
      'type = "imap"',
      'tls = "none"',
      ...imap,
      "[accounts.mail.right]",
      'type = "maildir"',
      `path = ${JSON.stringify(maildir)}`,
      "",
    ].join("\n"),
  );
  worlds.push({ dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) } as SidesWorld);
  return { dir, state, maildir, config };
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

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

describe.skipIf(skip).concurrent("the CLI with an IMAP side", () => {
  beforeAll(() => {
    if (!existsSync(CJS)) {
      const r = spawnSync("npm", ["run", "build"], { cwd: root, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
    }
  }, 180_000);

  async function wrongPassword(): Promise<{ r: Result; u: ImapUser }> {
    const u = await server.addUser();
    const s = cliSetup([
      `host = "${u.host}"`,
      `port = ${u.port}`,
      `user = "${u.user}"`,
      'password = "not-the-password"',
    ]);
    return { r: await runCli(["sync", "--config", s.config], s.dir), u };
  }

  it("wrong password: exit 1, names the login and says the server rejected it", async () => {
    const { r, u } = await wrongPassword();
    expect(r.code, r.out + r.err).toBe(EXIT.failure);
    expect(r.out).toBe("");
    expect(r.err).toContain(`Cannot log in as ${u.user}@${u.host}`);
    expect(r.err).toMatch(/rejected the credentials/);
    expect(r.out + r.err).not.toContain("not-the-password");
  });

  it("wrong password: the message says what to do", async () => {
    const { r } = await wrongPassword();
    expect(r.err).toMatch(/check .*(password|passwordCommand)/i);
  });

  it("unreachable port: exit 1 and names the host and port", async () => {
    const port = await closedPort();
    const s = cliSetup([
      'host = "127.0.0.1"',
      `port = ${port}`,
      'user = "nobody"',
      'password = "x-secret-x"',
    ]);
    const r = await runCli(["sync", "--config", s.config], s.dir);
    expect(r.code, r.out + r.err).toBe(EXIT.failure);
    expect(r.err).toContain(String(port));
    expect(r.out + r.err).not.toContain("x-secret-x");
  });

  it("passwordCommand: the secret appears in no output, no state file and no Maildir file", async () => {
    const SECRET = "KnownSecret-4711";
    const u = await rewriteUser(server, await server.addUser(), { password: SECRET });
    await withImap(u, async (c) => {
      await c.append("INBOX", Buffer.from(messageText("A")), ["\\Seen"], new Date(NOW - DAY));
      await c.mailboxCreate("Sub");
      await c.append("Sub", Buffer.from(messageText("B")), [], new Date(NOW - DAY));
    });
    const s = cliSetup([
      `host = "${u.host}"`,
      `port = ${u.port}`,
      `user = "${u.user}"`,
      `passwordCommand = "printf ${SECRET}"`,
    ]);
    const outputs: string[] = [];
    for (const args of [
      ["sync", "--verbose"],
      ["sync", "--json", "--verbose"],
      ["verify", "--verbose"],
      ["verify", "--json", "--deep"],
      ["status", "--json"],
      ["status", "--verbose"],
    ]) {
      const r = await runCli([...args, "--config", s.config], s.dir);
      outputs.push(r.out, r.err);
      if (args[0] === "sync") expect(r.code, `${args.join(" ")}: ${r.out}${r.err}`).toBe(EXIT.ok);
    }
    expect(show(s.maildir)).toBe("A:S");
    expect(show(s.maildir, "Sub")).toBe("B");
    for (const o of outputs) expect(o).not.toContain(SECRET);
    const b64 = Buffer.from(SECRET).toString("base64").replace(/=+$/, "");
    for (const file of [...allFiles(s.state), ...allFiles(s.maildir)]) {
      const bytes = readFileSync(file);
      expect(bytes.includes(SECRET), file).toBe(false);
      expect(bytes.includes(Buffer.from(SECRET, "utf16le")), file).toBe(false);
      expect(bytes.includes(b64), file).toBe(false);
    }
  });
});
