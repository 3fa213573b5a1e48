// Hostile input (issue "Reliability"): odd messages, dangerous folder names and broken config files.
// Messages travel Maildir↔Maildir (byte-exact) and Maildir→IMAP→Maildir (modulo LF→CRLF) through a
// real Dovecot; folder names that could escape a root are offered by a hostile listing and by real
// directories; config errors go through the built CLI.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AccountConfig } from "../../src/config/config.js";
import type { Store } from "../../src/drivers/driver.js";
import { runAccount } from "../../src/engine/sync-account.js";
import type { AccountReport } from "../../src/model/report.js";
import type { Side } from "../../src/model/types.js";
import { drift, makeWorld, NOW, sync, type World, work } from "../engine/harness.js";
import { chownToMailUser, type DovecotServer, dovecotAvailable, startDovecot } from "../helpers/dovecot.js";
import { imapSide, maildirSide, type SidesWorld, sync as sidesSync, withImap } from "../imap/sides.js";

// ------------------------------------------------------------------ helpers

/** A small deterministic PRNG (mulberry32), so that "random" garbage is the same on every run. */
function randomBytesSeeded(n: number, seed: number): Buffer {
  let a = seed >>> 0;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

const latin1 = (s: string) => Buffer.from(s, "latin1");

/** A large message: a header and `mb` MiB of 76-column lines (CRLF). */
function bigMessage(mb: number): Buffer {
  const line = latin1(
    `${"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/0123456789ab"}\r\n`,
  );
  const head = latin1(`Subject: big ${mb} MiB\r\nMessage-ID: <big-${mb}@hostile.test>\r\n\r\n`);
  const body = Buffer.alloc(mb * 1024 * 1024);
  for (let off = 0; off < body.length; off += line.length) line.copy(body, off);
  return Buffer.concat([head, body]);
}

interface MessageCase {
  name: string;
  body: () => Buffer;
  /** Only Maildir↔Maildir (the IMAP table uses a smaller stand-in). */
  maildirOnly?: boolean;
}

const MESSAGES: MessageCase[] = [
  {
    name: "no headers at all",
    body: () => latin1("\nThis message has no header lines at all.\nSecond line.\n"),
  },
  { name: "no header/body separator", body: () => latin1("just text, never a colon or a blank line") },
  { name: "binary garbage (random bytes incl. NUL)", body: () => randomBytesSeeded(8192, 42) },
  { name: "zero-byte file", body: () => Buffer.alloc(0) },
  {
    name: "bare LF line ends",
    body: () => latin1("Subject: bare LF\nFrom: a@example.com\n\nline 1\nline 2\n"),
  },
  {
    name: "NUL bytes in headers",
    body: () => latin1("Subject: nul\0inside\r\nX-Nul: \0\0\0\r\nFrom: a@example.com\r\n\r\nbody\r\n"),
  },
  {
    name: "8-bit headers (raw UTF-8 and Latin-1)",
    body: () =>
      Buffer.concat([
        Buffer.from("Subject: Grüße aus Köln ☃\r\nFrom: Jörg <j@example.com>\r\n", "utf8"),
        latin1("X-Latin1: caf\xe9 \xff\xfe\r\n\r\nBody \xe9\r\n"),
      ]),
  },
  {
    name: "a 100 KB single line",
    body: () => Buffer.concat([latin1("Subject: long line\r\n\r\n"), Buffer.alloc(100 * 1024, "x")]),
  },
  { name: "a 50 MB message", body: () => bigMessage(50), maildirOnly: true },
];

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Every message file of a Maildir folder directory (new/ and cur/), by content hash. */
function contents(dir: string): Map<string, { file: string; size: number }[]> {
  const out = new Map<string, { file: string; size: number }[]>();
  for (const sub of ["new", "cur"]) {
    let names: string[] = [];
    try {
      names = readdirSync(join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) {
      const file = join(dir, sub, n);
      const data = readFileSync(file);
      const h = sha(data);
      out.set(h, [...(out.get(h) ?? []), { file, size: data.length }]);
    }
  }
  return out;
}

function hashes(dir: string): string[] {
  return [...contents(dir)].flatMap(([h, files]) => files.map(() => h)).sort();
}

let seq = 0;
/** Drops a file into `<root>/new/` the way an MDA would (the name is unique, the content as given). */
function drop(root: string, body: Buffer): string {
  const file = join(root, "new", `${Math.floor(NOW / 1000) - 3600}.H${process.pid}_${++seq}.hostile`);
  writeFileSync(file, body);
  return file;
}

const normal = (tag: string) =>
  latin1(
    `Message-ID: <${tag}@hostile.test>\r\nSubject: ${tag}\r\nFrom: a@example.com\r\n\r\nBody ${tag}\r\n`,
  );

/** LF→CRLF (an IMAP server hands out CRLF line ends; lone LFs are the only thing allowed to differ). */
function crlf(b: Buffer): Buffer {
  return latin1(b.toString("latin1").replace(/\r?\n/g, "\r\n"));
}

function errorsOf(r: AccountReport): string[] {
  return r.folders.flatMap((f) => [...f.errors, ...f.stops.map((s) => s.message)]);
}

function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      out.push(e.isDirectory() ? `${p}/` : e.isSymbolicLink() ? `${p}@` : p);
      if (e.isDirectory() && !e.isSymbolicLink()) walk(join(d, e.name), p);
    }
  };
  walk(dir, "");
  return out.sort();
}

// ------------------------------------------------------------------ Dovecot

const haveDovecot = dovecotAvailable();
let server: DovecotServer | undefined;
beforeAll(async () => {
  if (haveDovecot) server = await startDovecot();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

/** A fresh IMAP↔Maildir world; `back` syncs the same IMAP user into a second Maildir (account "back"). */
async function imapWorlds(): Promise<{ there: SidesWorld; back: SidesWorld; cleanup(): void }> {
  if (!server) throw new Error("no Dovecot");
  const dir = mkdtempSync(join(tmpdir(), "tandem-hostile-imap-"));
  const user = await server.addUser("hostile");
  const imap = imapSide(user);
  const mk = (name: string, left: ReturnType<typeof maildirSide> | typeof imap, right: typeof left) => {
    const account: AccountConfig = {
      name,
      stateDir: join(dir, "state"),
      conflict: "keep",
      maxDelete: 50,
      include: ["*"],
      exclude: [],
      rename: {},
      left: left.config,
      right: right.config,
    };
    return { dir, sides: { left, right }, account, warnings: [] as string[], cleanup: () => {} };
  };
  const there = mk("there", maildirSide(join(dir, "src")), imap);
  const back = mk("back", imap, maildirSide(join(dir, "back")));
  return { there, back, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// ------------------------------------------------------------------ messages

describe("hostile messages, Maildir↔Maildir: copied byte for byte", () => {
  let world: World;
  afterAll(() => world?.cleanup());

  it.each(MESSAGES)(
    "$name",
    async (c) => {
      world?.cleanup();
      world = makeWorld();
      const body = c.body();
      const file = drop(world.roots.left, body);
      drop(world.roots.left, normal("companion"));

      const first = await sync(world);
      expect(first.failure).toBeUndefined();
      expect(errorsOf(first)).toEqual([]);
      expect(drift(first)).toEqual([]);
      expect(first.exitCode).toBe(0);
      expect(hashes(world.roots.right)).toEqual(hashes(world.roots.left));
      expect(contents(world.roots.right).get(sha(body))?.length).toBe(1);
      expect(existsSync(file) || contents(world.roots.left).has(sha(body))).toBe(true);

      const second = await sync(world);
      expect(work(second)).toBe(0);
      expect(second.exitCode).toBe(0);

      const verify = await sync(world, { verifyOnly: true, deep: true });
      expect(drift(verify)).toEqual([]);
      expect(verify.exitCode).toBe(0);
      expect(hashes(world.roots.right)).toEqual(hashes(world.roots.left));
    },
    120_000,
  );
});

/**
 * What Dovecot does with each message: `exact` it keeps it (modulo LF→CRLF); `refused` it answers
 * APPEND with NO (tandem must report a message-scoped error and keep going); `nul-mangled` it
 * takes the message but hands every NUL byte out as 0x80 on FETCH (Dovecot 2.3, no BINARY).
 */
type ImapFate = "exact" | "refused" | "nul-mangled";
const IMAP_FATE: Record<string, ImapFate> = {
  "zero-byte file": "refused",
  "binary garbage (random bytes incl. NUL)": "nul-mangled",
  "NUL bytes in headers": "nul-mangled",
};

const IMAP_MESSAGES: (MessageCase & { fate: ImapFate })[] = [
  ...MESSAGES.filter((m) => !m.maildirOnly),
  { name: "a 20 MB message", body: () => bigMessage(20) },
].map((m) => ({ ...m, fate: IMAP_FATE[m.name] ?? "exact" }));

/** Syncs `body` (and a normal companion) Maildir→IMAP, then IMAP→a second Maildir. */
async function throughImap(body: Buffer) {
  const w = await imapWorlds();
  const src = w.there.sides.left.root!;
  const file = drop(src, body);
  drop(src, normal("companion"));
  const r1 = await sidesSync(w.there);
  const r2 = await sidesSync(w.there);
  const v1 = await sidesSync(w.there, { verifyOnly: true, deep: true });
  const b1 = await sidesSync(w.back);
  const b2 = await sidesSync(w.back);
  const bv = await sidesSync(w.back, { verifyOnly: true, deep: true });
  const back = contents(w.back.sides.right.root!);
  return { w, file, r1, r2, v1, b1, b2, bv, back };
}

describe.skipIf(!haveDovecot)("hostile messages, Maildir→IMAP→Maildir", () => {
  it.each(IMAP_MESSAGES.filter((m) => m.fate === "exact"))(
    "$name: copied exactly",
    async (c) => {
      const body = c.body();
      const t = await throughImap(body);
      try {
        for (const r of [t.r1, t.r2, t.b1, t.b2]) {
          expect(r.failure).toBeUndefined();
          expect(errorsOf(r)).toEqual([]);
          expect(drift(r)).toEqual([]);
          expect(r.exitCode).toBe(0);
        }
        expect(work(t.r1)).toBe(2);
        expect(work(t.r2)).toBe(0);
        expect(work(t.b2)).toBe(0);
        expect(drift(t.v1)).toEqual([]);
        expect(drift(t.bv)).toEqual([]);
        expect(t.back.size).toBe(2);
        expect(t.back.has(sha(crlf(body)))).toBe(true);
        expect(existsSync(t.file)).toBe(true);
      } finally {
        t.w.cleanup();
      }
    },
    120_000,
  );

  it("a zero-byte file, which Dovecot refuses: a message-scoped error, the rest syncs, the source stays", async () => {
    const t = await throughImap(Buffer.alloc(0));
    try {
      for (const r of [t.r1, t.r2]) {
        expect(r.failure).toBeUndefined();
        expect(errorsOf(r)).toHaveLength(1);
        expect(errorsOf(r)[0]).toMatch(/^Appending a message in "INBOX": NO Can't save a zero byte message/);
        expect(r.exitCode).not.toBe(0);
      }
      expect(t.r1.folders[0]?.copied.right).toBe(1); // the companion
      expect(work(t.r2)).toBe(0);
      expect(existsSync(t.file)).toBe(true);
      expect(readFileSync(t.file).length).toBe(0);
      // The refused message stays unpaired, and verify says so instead of hiding it.
      const base = t.file.split("/").pop()!;
      expect(drift(t.v1)).toEqual([`INBOX left ${base} in the store but not paired`]);
      expect(t.v1.exitCode).toBe(3);
      expect([...t.back.keys()]).toEqual([sha(crlf(normal("companion")))]);
      expect(drift(t.bv)).toEqual([]);
    } finally {
      t.w.cleanup();
    }
  }, 120_000);

  // Dovecot 2.3 takes a message with NUL bytes but hands each NUL out as 0x80 (non-BINARY FETCH). tandem's sync reports success;
  // only `verify --deep` notices, and reports the drift (it must never be hidden).
  it.each(IMAP_MESSAGES.filter((m) => m.fate === "nul-mangled"))(
    "$name: Dovecot hands NUL out as 0x80; the deep verify reports the changed content",
    async (c) => {
      const body = c.body();
      const t = await throughImap(body);
      try {
        expect(errorsOf(t.r1)).toEqual([]);
        expect(work(t.r1)).toBe(2);
        expect(work(t.r2)).toBe(0);
        expect(existsSync(t.file)).toBe(true);
        expect(drift(t.v1)).toHaveLength(1);
        expect(drift(t.v1)[0]).toMatch(/^INBOX right \d+\/\d+ content differs from the recorded digest$/);
        expect(t.v1.exitCode).toBe(3);
        const replaced = latin1(body.toString("latin1").replaceAll("\0", "\x80"));
        expect(t.back.has(sha(crlf(replaced))) || t.back.has(sha(replaced))).toBe(true);
      } finally {
        t.w.cleanup();
      }
    },
    120_000,
  );

  // BUG: a message with NUL bytes is changed by the server (Dovecot serves each NUL as 0x80) while `tandem
  // sync` exits 0 with no error; the next `verify --deep` then reports drift forever (exit 3) and
  // no run can mend it. Expected: the sync notices (compare the appended size/digest, or append
  // with BINARY/literal8 where the server has it) and reports a message-scoped error, leaving the
  // source as it is. Reproduce: a Maildir file "Subject: x\r\n\r\na\0b\r\n", sync to Dovecot,
  // `tandem verify --deep` → "INBOX right <uidvalidity>/<uid> content differs from the recorded digest".
  it.skip("NUL bytes: copied exactly or refused as a message-scoped error, verify --deep clean", async () => {
    const t = await throughImap(latin1("Subject: nul\r\n\r\na\0b\r\n"));
    try {
      const refused = errorsOf(t.r1).length === 1;
      expect(refused || t.back.has(sha(crlf(latin1("Subject: nul\r\n\r\na\0b\r\n"))))).toBe(true);
      expect(drift(t.v1).filter((d) => d.includes("content differs"))).toEqual([]);
    } finally {
      t.w.cleanup();
    }
  }, 120_000);
});

// ------------------------------------------------------------------ folder names

/** Names a hostile server (or a damaged Maildir) could list; none may become a path outside a root. */
const HOSTILE_NAMES = [
  "..",
  "a/../../x",
  "/abs",
  "a/./b",
  "ctl\x01name",
  "nul\0name",
  "back\\slash",
  ".hidden",
];

/**
 * The left store lists the hostile names as well as its own folders; each of them opens as the real
 * folder "Hostile" (one message), so the run meets them exactly as it would on a hostile server.
 */
function hostileListing(store: Store, names: string[]): Store {
  return {
    caps: store.caps,
    label: store.label,
    listFolders: async () => [...(await store.listFolders()), ...names.map((name) => ({ name }))],
    createFolder: (n) => store.createFolder(n),
    removeFolder: (n) => store.removeFolder(n),
    openFolder: (n) => store.openFolder(names.includes(n) ? "Hostile" : n),
    close: () => store.close(),
  };
}

type RightKind = "maildir++" | "fs" | "imap";

describe("hostile folder names offered by the other side", () => {
  it.each<RightKind>(["maildir++", "fs", "imap"])(
    "right side %s: a clear per-folder message, the rest syncs, nothing written outside the roots",
    async (kind) => {
      if (kind === "imap" && !server) return;
      const dir = mkdtempSync(join(tmpdir(), "tandem-hostile-names-"));
      try {
        // The roots sit two levels down, so that "../.." from a root is still inside `dir`.
        const leftRoot = join(dir, "a", "b", "left");
        const rightRoot = join(dir, "a", "b", "right");
        const left = maildirSide(leftRoot, "maildir++");
        await left.seed("A B");
        await left.seed("G", "Good");
        await left.seed("H", "Hostile");
        const right =
          kind === "imap" ? imapSide(await server!.addUser("names")) : maildirSide(rightRoot, kind);
        const names = [...HOSTILE_NAMES, "dot.name"];
        const account: AccountConfig = {
          name: "names",
          stateDir: join(dir, "a", "b", "state"),
          conflict: "keep",
          maxDelete: 50,
          include: ["*"],
          exclude: ["Hostile"],
          rename: {},
          left: left.config,
          right: right.config,
        };
        const before = tree(dir).filter((p) => !/^a\/b\/(left|right|state)(\/|$)/.test(p));
        const warnings: string[] = [];
        const run = (o: { verifyOnly?: boolean } = {}) =>
          runAccount(account, {
            dryRun: false,
            force: false,
            resync: false,
            now: NOW,
            log: () => {},
            ...o,
            openStore: async (side: Side) =>
              side === "left" ? hostileListing(await left.open(warnings), names) : await right.open(warnings),
          });
        const r = await run();
        expect(r.failure).toBeUndefined();
        const byName = new Map(r.folders.map((f) => [f.folder, f]));
        // The good folders synced in full.
        expect(byName.get("INBOX")?.copied.right).toBe(2);
        expect(byName.get("Good")?.copied.right).toBe(1);
        if (kind === "fs") expect(contents(join(rightRoot, "Good")).size).toBe(1);
        else expect(await right.show("Good")).toBe("G");
        expect(await right.show()).toBe("A B");
        // Every hostile name: a per-folder error that names the folder and says why.
        // "dot.name" is fine in the fs layout, a backslash is fine on Dovecot.
        const fine = kind === "fs" ? ["dot.name"] : kind === "imap" ? ["back\\slash"] : [];
        const refusedHere = names.filter((n) => !fine.includes(n));
        for (const n of refusedHere) {
          const f = byName.get(n);
          expect(f, `no report for ${JSON.stringify(n)}`).toBeDefined();
          expect(f!.errors, JSON.stringify(n)).toHaveLength(1);
          expect(f!.errors[0]).toMatch(
            /^Cannot use folder (name )?".*"( on this server)?: |^Creating folder ".*": .*(Invalid mailbox name|not allowed)/s,
          );
          expect(f!.copied.right).toBe(0);
        }
        for (const n of fine) expect(byName.get(n)?.copied.right, n).toBe(1);
        // Nothing outside the roots and the state directory appeared or vanished.
        expect(tree(dir).filter((p) => !/^a\/b\/(left|right|state)(\/|$)/.test(p))).toEqual(before);
        if (kind !== "imap") {
          for (const p of tree(rightRoot)) expect(p).not.toMatch(/(^|\/)(x|abs)(\/|$)/);
        }
        // A second run does no work and says the same.
        const r2 = await run();
        // (work() would count the hostile folders' `created`: see the BUG below.)
        expect(work({ ...r2, folders: r2.folders.filter((f) => f.errors.length === 0) })).toBe(0);
        for (const f of r2.folders) expect(f.copied.right + f.copied.left, f.folder).toBe(0);
        expect(r2.folders.find((f) => f.folder === "..")?.errors).toHaveLength(1);
        // Verify: only the hostile folders stand out ("folder missing"), the rest is clean.
        const v = await run({ verifyOnly: true });
        for (const f of v.folders) {
          if (f.folder === "INBOX" || f.folder === "Good" || fine.includes(f.folder))
            expect(f.drift, f.folder).toEqual([]);
          else expect(f.drift.map((d) => d.what)).toEqual(["folder missing"]);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});

// BUG: a folder that could not be created on a side is still reported as created there: sync-account
// pushes `fr.created` before `createFolder` and keeps it when that throws, so every run reports
// "created" (and work) for each refused folder. Reproduce: the test above with right side maildir++,
// report.folders.find(f => f.folder === "..") → { created: ["right"], errors: ['Cannot use folder ".."…'] }.
it("a folder whose creation failed is not reported as created", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-hostile-created-"));
  try {
    const left = maildirSide(join(dir, "left"));
    const right = maildirSide(join(dir, "right"));
    await left.seed("H", "Hostile");
    const account: AccountConfig = {
      name: "created",
      stateDir: join(dir, "state"),
      conflict: "keep",
      maxDelete: 50,
      include: ["*"],
      exclude: ["Hostile"],
      rename: {},
      left: left.config,
      right: right.config,
    };
    const r = await runAccount(account, {
      dryRun: false,
      force: false,
      resync: false,
      now: NOW,
      log: () => {},
      openStore: async (side: Side) =>
        side === "left" ? hostileListing(await left.open(), [".."]) : await right.open(),
    });
    const f = r.folders.find((x) => x.folder === "..");
    expect(f?.errors).toHaveLength(1);
    expect(f?.created).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// BUG: a folder whose name holds a line break ("a\nb", also "\r", U+2028, U+2029) is silently left
// out even with include = ["*"]: folderMatcher turns `*` into `.*` without the `s` flag, so `*` does
// not match a line terminator. The folder is neither synced nor reported. Reproduce:
// folderMatcher(["*"], [])("a\nb") === false. Expected: `*` matches every name, and the name is
// then refused with a per-folder message like the other control characters.
it("a listed folder named with a line break gets a per-folder message", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-hostile-nl-"));
  try {
    const left = maildirSide(join(dir, "left"));
    const right = maildirSide(join(dir, "right"));
    await left.seed("H", "Hostile");
    const account: AccountConfig = {
      name: "nl",
      stateDir: join(dir, "state"),
      conflict: "keep",
      maxDelete: 50,
      include: ["*"],
      exclude: ["Hostile"],
      rename: {},
      left: left.config,
      right: right.config,
    };
    const r = await runAccount(account, {
      dryRun: false,
      force: false,
      resync: false,
      now: NOW,
      log: () => {},
      openStore: async (side: Side) =>
        side === "left" ? hostileListing(await left.open(), ["line\nbreak"]) : await right.open(),
    });
    expect(r.folders.find((f) => f.folder === "line\nbreak")?.errors).toHaveLength(1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("hostile directories on a Maildir side", () => {
  it.each<"fs" | "maildir++">(["fs", "maildir++"])(
    "layout %s: unusable directories are skipped with a warning, symlinks are not followed",
    async (layout) => {
      const dir = mkdtempSync(join(tmpdir(), "tandem-hostile-dirs-"));
      try {
        const outside = join(dir, "outside");
        mkdirSync(join(outside, "cur"), { recursive: true });
        mkdirSync(join(outside, "new"));
        mkdirSync(join(outside, "tmp"));
        writeFileSync(join(outside, "new", "1.x.secret"), normal("secret"));
        const left = maildirSide(join(dir, "left"), layout);
        const right = maildirSide(join(dir, "right"), layout);
        await left.seed("A");
        const maildir = (rel: string) => {
          for (const s of ["cur", "new", "tmp"]) mkdirSync(join(dir, "left", rel, s), { recursive: true });
          writeFileSync(join(dir, "left", rel, "new", `1.${seq++}.bad`), normal(`in-${rel.length}`));
        };
        const bad =
          layout === "fs"
            ? ["ctl\x01name", "back\\slash", "cur-ok/cur/x", ".hidden"]
            : ["..x", ".a..b", ".ctl\x01", ".a.", ".INBOX"];
        for (const b of bad) maildir(b);
        symlinkSync(outside, join(dir, "left", layout === "fs" ? "escape" : ".escape"));
        const before = tree(dir).filter((p) => !/^(left|right|state)(\/|$)/.test(p));
        const w: SidesWorld = {
          dir,
          sides: { left, right },
          account: {
            name: "dirs",
            stateDir: join(dir, "state"),
            conflict: "keep",
            maxDelete: 50,
            include: ["*"],
            exclude: [],
            rename: {},
            left: left.config,
            right: right.config,
          },
          warnings: [],
          cleanup: () => {},
        };
        const r = await sidesSync(w);
        expect(r.failure).toBeUndefined();
        expect(errorsOf(r)).toEqual([]);
        expect(drift(r)).toEqual([]);
        expect(await right.show()).toBe("A");
        // The symlinked folder is not followed (or, if listed, nothing is taken from outside).
        expect(JSON.stringify(tree(join(dir, "right")))).not.toContain("secret");
        for (const f of r.folders) expect(f.folder).not.toMatch(/escape/);
        expect(readdirSync(join(outside, "new"))).toEqual(["1.x.secret"]);
        expect(w.warnings.join("\n")).toMatch(/does not map to a usable folder name/);
        expect(tree(dir).filter((p) => !/^(left|right|state)(\/|$)/.test(p))).toEqual(before);
        expect(work(await sidesSync(w))).toBe(0);
        expect(drift(await sidesSync(w, { verifyOnly: true, deep: true }))).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe.skipIf(!haveDovecot)("IMAP folder names that are not valid modified UTF-7", () => {
  it("raw server directories with broken &-sequences: the run goes on, nothing leaves the root", async () => {
    const user = await server!.addUser("utf7");
    const dir = mkdtempSync(join(tmpdir(), "tandem-hostile-utf7-"));
    try {
      // Dovecot escapes "&" itself on CREATE, so broken names are made as raw Maildir++ directories.
      const raw = [".bad&AAA-x", ".&Jjo-bad&", ".open&AGE", ".&-ok"];
      for (const r of raw)
        for (const s of ["cur", "new", "tmp"]) mkdirSync(join(user.maildir, r, s), { recursive: true });
      await chownToMailUser(user.maildir);
      const imap = imapSide(user);
      await imap.seed("A");
      const right = maildirSide(join(dir, "m", "right"), "fs");
      const w: SidesWorld = {
        dir,
        sides: { left: imap, right },
        account: {
          name: "utf7",
          stateDir: join(dir, "m", "state"),
          conflict: "keep",
          maxDelete: 50,
          include: ["*"],
          exclude: [],
          rename: {},
          left: imap.config,
          right: right.config,
        },
        warnings: [],
        cleanup: () => {},
      };
      const listed = await withImap(user, async (c) => (await c.list()).map((e) => e.path));
      const r = await sidesSync(w);
      expect(r.failure).toBeUndefined();
      expect(await right.show()).toBe("A");
      expect(tree(dir).filter((p) => !/^m\/(right|state)(\/|$)/.test(p))).toEqual(["m/"]);
      expect(tree(join(dir, "m", "right")).every((p) => !p.startsWith(".."))).toBe(true);
      // Each listed name either synced cleanly or got a per-folder message.
      for (const f of r.folders) expect(f.errors.length + f.drift.length <= 1, f.folder).toBe(true);
      expect(listed.length).toBeGreaterThan(1);
      expect(work(await sidesSync(w))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ config through the CLI

const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "dist", "tandem.cjs");

describe("broken config files through the CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-hostile-config-"));
  beforeAll(() => {
    if (!existsSync(CLI)) {
      const r = spawnSync("npm", ["run", "build"], { cwd: ROOT, stdio: "ignore" });
      if (r.status !== 0) throw new Error("npm run build failed");
    }
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const good = `[accounts.a.left]
type = "maildir"
path = "l"
[accounts.a.right]
type = "imap"
host = "localhost"
user = "me"
password = "s3cret-Pa55word"
`;
  // [name, config text, expected key (or null for a TOML syntax error), line]
  const CASES: [string, string, string | null, number][] = [
    ["a TOML syntax error", good.replace('path = "l"', 'path = "l'), null, 3],
    ["a table opened twice", `${good}[accounts.a.left]\ntype = "maildir"\n`, null, 9],
    ["an unknown key", good.replace('path = "l"', 'path = "l"\npaht = "x"'), "accounts.a.left.paht", 4],
    ["a wrong type", good.replace('user = "me"', "user = 12"), "accounts.a.right.user", 7],
    [
      "a port out of range",
      good.replace('user = "me"', 'user = "me"\nport = 70000'),
      "accounts.a.right.port",
      8,
    ],
    ["missing credentials", good.replace(/password = .*\n/, ""), "accounts.a.right", 4],
    [
      "a password of the wrong type",
      good.replace('password = "s3cret-Pa55word"', "password = 1234567890"),
      "accounts.a.right.password",
      8,
    ],
    ["a missing store", good.slice(0, good.indexOf("[accounts.a.right]")), "accounts.a.right", 1],
  ];

  it.each(CASES)("%s: exit 2 with key and line (config check and sync)", (name, text, key, line) => {
    const file = join(dir, `${name.replace(/\W+/g, "-")}.toml`);
    writeFileSync(file, text);
    for (const args of [
      ["config", "check", "--config", file],
      ["sync", "--config", file],
    ]) {
      const r = spawnSync(process.execPath, [CLI, ...args], {
        encoding: "utf8",
        env: { PATH: process.env.PATH, HOME: dir },
        timeout: 30_000,
      });
      expect(r.status, `${args[0]}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).not.toContain("s3cret-Pa55word");
      expect(r.stderr).not.toContain("1234567890");
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      const first = r.stderr.split("\n")[0]!;
      if (key === null)
        expect(first).toMatch(
          new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:${line}:\\d+: TOML syntax error: \\S`),
        );
      else expect(r.stderr).toContain(`${file}:${line}: ${key}: `);
    }
  });
});
