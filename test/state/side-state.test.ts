import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  SCHEMA_VERSION,
  SideState,
  StateError,
  type StateRow,
  snapshotPolicy,
  stateSlack,
} from "../../src/state/side-state.js";
import { loadSqlJs } from "../../src/state/sqlite.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tandem-state-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const row = (key: string, over: Partial<StateRow> = {}): StateRow => ({
  folder: "INBOX",
  key,
  pairId: `l:${key}`,
  flags: ["\\Seen"],
  size: 100,
  date: 1_700_000_000_000,
  digest: "ab".repeat(32),
  ...over,
});

async function withState(fn: (s: SideState) => void, side: "left" | "right" = "left"): Promise<void> {
  const s = await SideState.open(dir, side);
  try {
    fn(s);
  } finally {
    s.close();
  }
}

/** The checksum a saved file carries (header bytes 72-79), recomputed: for tests that forge a file. */
function reseal(b: Buffer): void {
  b.fill(0, 72, 80);
  const sum = crc32(b);
  b.writeUInt32BE(0x74646d01, 72);
  b.writeUInt32BE(sum, 76);
}

/** Opens a file with sql.js as it is on disk (checksum bytes zeroed, as tandem does). */
async function rawDb(file: string) {
  const SQL = await loadSqlJs();
  const b = readFileSync(file);
  b.fill(0, 72, 80);
  return new SQL.Database(b);
}

describe("state file checks", () => {
  it("a saved state carries a checksum in its header, and opens again with every row", async () => {
    await withState((s) => {
      for (let i = 0; i < 50; i++) s.putMessage(row(`k${i}`));
      s.save();
    });
    const b = readFileSync(join(dir, "left.db"));
    expect(b.readUInt32BE(72)).toBe(0x74646d01);
    expect(b.readUInt32BE(60)).toBe(SCHEMA_VERSION);
    await withState((s) => expect(s.rows("INBOX")).toHaveLength(50));
  });

  it("a flipped byte anywhere (header intact, length right) is refused at open, naming the file", async () => {
    await withState((s) => {
      for (let i = 0; i < 50; i++) s.putMessage(row(`k${i}`));
      s.save();
    });
    const file = join(dir, "left.db");
    const b = readFileSync(file);
    // A byte inside a row's digest (kept as bytes): SQLite's own quick_check would not see this.
    const at = b.indexOf(Buffer.alloc(8, 0xab), 4096);
    expect(at).toBeGreaterThan(0);
    b[at] = 0xac;
    writeFileSync(file, b);
    const err = await SideState.open(dir, "left").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).message).toContain(`State file ${file} is damaged`);
    expect((err as StateError).message).toMatch(/checksum/);
  });

  it("a file cut to whole pages is refused: its length no longer matches the header's page count", async () => {
    await withState((s) => {
      for (let i = 0; i < 200; i++) s.putMessage(row(`k${i}`));
      s.save();
    });
    const file = join(dir, "left.db");
    const b = readFileSync(file);
    writeFileSync(file, b.subarray(0, b.length - 4096));
    await expect(SideState.open(dir, "left")).rejects.toThrow(/is damaged .*truncated/);
  });

  it("damage the checks at open cannot see surfaces as a StateError naming the file when read", async () => {
    await withState((s) => {
      for (let i = 0; i < 50; i++) s.putMessage(row(`k${i}`));
      s.save();
    });
    const file = join(dir, "left.db");
    const db = await rawDb(file);
    const root = db.exec("SELECT rootpage FROM sqlite_schema WHERE name = 'messages'")[0]!
      .values[0]![0] as number;
    db.close();
    const b = readFileSync(file);
    // A page type SQLite does not know, with a checksum that matches (as if written so).
    b[(root - 1) * 4096] = 0x7f;
    reseal(b);
    writeFileSync(file, b);
    const s = await SideState.open(dir, "left");
    try {
      expect(() => s.rows("INBOX")).toThrow(StateError);
      expect(() => s.rows("INBOX")).toThrow(`State file ${file} is damaged`);
      expect(() => s.count()).toThrow(StateError);
    } finally {
      s.close();
    }
  });
});

describe("snapshots written from the live image", () => {
  /** A state of `n` rows, saved: opened again, it has a live image (a new state has none). */
  async function seeded(n: number): Promise<void> {
    await withState((s) => {
      for (let i = 0; i < n; i++) s.putMessage(row(`k${i}`));
      s.save(true);
    });
  }

  /** Every row of the saved state, read with sql.js from the file as it is on disk. */
  async function saved(): Promise<string[]> {
    const db = await rawDb(join(dir, "left.db"));
    try {
      expect(db.exec("PRAGMA quick_check")[0]?.values[0]?.[0]).toBe("ok");
      return (db.exec("SELECT key, flags FROM messages ORDER BY key")[0]?.values ?? []).map((r) =>
        r.join(" "),
      );
    } finally {
      db.close();
    }
  }

  it("a state that grows within its slack is saved from the image: the file checks, reopens and has every row", async () => {
    await seeded(200);
    const before = { ...SideState.snapshots };
    await withState((s) => {
      for (let i = 200; i < 260; i++) s.putMessage(row(`k${i}`, { flags: ["\\Flagged"] }));
      s.deleteMessage("INBOX", "k3");
      s.save(true);
      // And once more in the same open: the image is still SQLite's file.
      s.putMessage(row("k3"));
      s.save(true);
    });
    expect(SideState.snapshots.live - before.live).toBe(2);
    expect(SideState.snapshots.exported - before.exported).toBe(0);
    const rows = await saved();
    expect(rows).toHaveLength(260);
    expect(rows).toContain("k3 \\Seen");
    expect(rows).toContain("k259 \\Flagged");
    // checkFile() at open verifies the checksum written beside the image's bytes.
    await withState((s) => expect(s.keys("INBOX")).toHaveLength(260));
  });

  it("a state that outgrows its slack is saved through export() from then on, just as whole", async () => {
    const { min } = stateSlack;
    stateSlack.min = 64 * 1024;
    try {
      await outgrow();
    } finally {
      stateSlack.min = min;
    }
  });

  async function outgrow(): Promise<void> {
    await seeded(50);
    const before = { ...SideState.snapshots };
    await withState((s) => {
      // Far more than 64 KiB of new rows: the file system moves the file to a new buffer.
      for (let i = 0; i < 3000; i++) s.putMessage(row(`grown-${i}`, { digest: `${i}`.padStart(64, "c") }));
      s.save(true);
      s.putMessage(row("last"));
      s.save(true);
    });
    expect(SideState.snapshots.live - before.live).toBe(0);
    expect(SideState.snapshots.exported - before.exported).toBe(2);
    expect(await saved()).toHaveLength(3051);
    await withState((s) => expect(s.keys("INBOX")).toHaveLength(3051));
  }

  it("a new state grows in place from its first save: a first sync is saved without export()", async () => {
    const before = { ...SideState.snapshots };
    await withState((s) => {
      for (let i = 0; i < 3000; i++) s.putMessage(row(`n${i}`));
      s.save(true);
    });
    // The save at creation and the one after the rows, both from the live image.
    expect(SideState.snapshots.live - before.live).toBe(2);
    expect(SideState.snapshots.exported - before.exported).toBe(0);
    expect(await saved()).toHaveLength(3000);
  });
});

describe("rows()", () => {
  it("reads every field back, also of a key that holds the separator the fast path joins by", async () => {
    const odd = row("a\u001fb", { pairId: "r:x\u001f", flags: ["\\Seen", "$Forwarded"], digest: "" });
    await withState((s) => {
      s.putMessage(row("plain", { flags: [], size: 7, date: 9 }));
      s.putMessage(odd);
      s.putMessage(row("z", { folder: "Other" }));
      s.save();
    });
    await withState((s) => {
      expect(s.rows("INBOX")).toEqual([odd, row("plain", { flags: [], size: 7, date: 9 })]);
      expect(s.rows("Other")).toEqual([row("z", { folder: "Other" })]);
      expect(s.rows("None")).toEqual([]);
    });
  });

  it("keeps a hex digest as its bytes and reads every digest back as written, also text that is not lowercase hex", async () => {
    const digests = ["0123456789abcdef".repeat(4), "", "ABCD", "abc", "not hex", "ab\u001fcd", "00"];
    await withState((s) => {
      for (const [i, digest] of digests.entries()) s.putMessage(row(`k${i}`, { digest }));
      s.save();
    });
    await withState((s) => {
      expect(s.rows("INBOX").map((r) => r.digest)).toEqual(digests);
      expect(s.rowsWhere("INBOX", "key", ["k0"])[0]?.digest).toBe(digests[0]);
    });
    const db = await rawDb(join(dir, "left.db"));
    expect(
      db.exec("SELECT key, typeof(digest), length(digest) FROM messages ORDER BY key")[0]?.values,
    ).toEqual([
      ["k0", "blob", 32],
      ["k1", "blob", 0],
      ["k2", "text", 4],
      ["k3", "text", 3],
      ["k4", "text", 7],
      ["k5", "text", 5],
      ["k6", "blob", 1],
    ]);
    db.close();
  });

  it("rowsWhere() finds rows by key or pairId within one folder (more than one chunk too); keys() lists keys", async () => {
    const many = Array.from({ length: 1200 }, (_, i) =>
      row(`k${String(i).padStart(4, "0")}`, { pairId: `p${i}` }),
    );
    const odd = row("a\u001fb", { pairId: "r:x\u001f" });
    await withState((s) => {
      for (const r of many) s.putMessage(r);
      s.putMessage(odd);
      s.putMessage(row("k0001", { folder: "Other", pairId: "p1" }));
      expect(s.rowsWhere("INBOX", "pairId", ["p1", "p1100", "missing"])).toEqual([many[1], many[1100]]);
      expect(s.rowsWhere("INBOX", "key", ["k0003", "a\u001fb"])).toEqual([odd, many[3]]);
      expect(s.rowsWhere("INBOX", "pairId", ["r:x\u001f"])).toEqual([odd]);
      expect(s.rowsWhere("INBOX", "key", [])).toEqual([]);
      // 1,200 values go in three statements; the answer is still one list in key order.
      expect(s.rowsWhere("INBOX", "pairId", many.map((r) => r.pairId).reverse())).toEqual(many);
      expect(s.keys("INBOX")).toEqual([odd, ...many].map((r) => r.key));
      expect(s.keys("Other")).toEqual(["k0001"]);
      expect(s.keys("Nothing")).toEqual([]);
      for (const k of ["k3", "k10", "k1", "k2"]) s.putMessage(row(k, { folder: "Plain" }));
      expect(s.keys("Plain")).toEqual(["k1", "k10", "k2", "k3"]);
    });
  });
});

describe("a state saved by schema version 1", () => {
  /** A version-1 file as tandem 0.1 wrote it: the (folder, pairId) index, no checksum. */
  async function writeV1(file: string, rows: number): Promise<void> {
    const SQL = await loadSqlJs();
    const db = new SQL.Database();
    db.exec(`
      CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE folders (name TEXT PRIMARY KEY, identity TEXT NOT NULL, uidNext INTEGER, modseq TEXT, count INTEGER,
        minDate INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE TABLE messages (folder TEXT NOT NULL, key TEXT NOT NULL, pairId TEXT NOT NULL, flags TEXT NOT NULL,
        size INTEGER NOT NULL, date INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (folder, key)) WITHOUT ROWID;
      CREATE INDEX messages_pair ON messages (folder, pairId);
      CREATE TABLE intents (folder TEXT NOT NULL, pairId TEXT NOT NULL, sourceKey TEXT NOT NULL, date INTEGER NOT NULL,
        PRIMARY KEY (folder, pairId)) WITHOUT ROWID;
      PRAGMA user_version = 1;
      INSERT INTO meta (k, v) VALUES ('app', 'tandem-state'), ('side', 'left');
      INSERT INTO folders VALUES ('INBOX', '7', 10, NULL, 3, 0);
    `);
    const st = db.prepare("INSERT INTO messages VALUES (?,?,?,?,?,?,?)");
    for (let i = 0; i < rows; i++)
      st.run(["INBOX", `k${i}`, `l:k${i}`, "\\Seen", 100, 1_700_000_000_000, "ab".repeat(32)]);
    st.free();
    writeFileSync(file, db.export());
    db.close();
  }

  it("is read as it is by a read-only open (nothing written), and migrated by the first writable one", async () => {
    const file = join(dir, "left.db");
    await writeV1(file, 2000);
    const before = readFileSync(file);
    const ro = await SideState.open(dir, "left", { readOnly: true });
    expect(ro.count()).toBe(2000);
    ro.close();
    expect(readFileSync(file).equals(before)).toBe(true);

    await withState((s) => {
      expect(s.rows("INBOX")).toHaveLength(2000);
      expect(s.folder("INBOX")?.uidNext).toBe(10);
    });
    const after = readFileSync(file);
    expect(after.readUInt32BE(60)).toBe(SCHEMA_VERSION);
    expect(after.readUInt32BE(72)).toBe(0x74646d01);
    expect(after.length).toBeLessThan(before.length);
    expect(existsSync(`${file}.bak`)).toBe(true);
    const db = await rawDb(file);
    expect(db.exec("SELECT name FROM sqlite_schema WHERE type = 'index' AND name = 'messages_pair'")).toEqual(
      [],
    );
    // Version 3: the digests went to bytes.
    expect(db.exec("SELECT DISTINCT typeof(digest), length(digest) FROM messages")[0]?.values).toEqual([
      ["blob", 32],
    ]);
    db.close();
    await withState((s) => expect(s.rows("INBOX")[1999]).toEqual(row("k999")));
  });

  it("without a checksum, damage is found by SQLite's structural check at open", async () => {
    const file = join(dir, "left.db");
    await writeV1(file, 2000);
    const db = await rawDb(file);
    const root = db.exec("SELECT rootpage FROM sqlite_schema WHERE name = 'messages'")[0]!
      .values[0]![0] as number;
    db.close();
    const b = readFileSync(file);
    // An interior page pointing at page 1 (a loop): the table cannot be walked.
    b.writeUInt32BE(1, (root - 1) * 4096 + 8);
    writeFileSync(file, b);
    // Read-only: no migration reads the table, only the check does.
    await expect(SideState.open(dir, "left", { readOnly: true })).rejects.toThrow(
      `State file ${file} is damaged`,
    );
    await expect(SideState.open(dir, "left")).rejects.toThrow(`State file ${file} is damaged`);
  });
});

describe("the journal across runs (a big state)", () => {
  const policy = { ...snapshotPolicy };
  beforeEach(() => {
    // As for a big state: no snapshot until the journal is as large as the snapshot.
    snapshotPolicy.floor = 0;
    snapshotPolicy.ratio = 1;
  });
  afterEach(() => Object.assign(snapshotPolicy, policy));

  const journal = () => join(dir, "left.journal");
  const db = () => join(dir, "left.db");

  it("save() keeps the journal instead of rewriting the file; the next open replays it without writing", async () => {
    await withState(() => {});
    const snapshot = readFileSync(db());
    const stamp0 = SideState.fileStamp(dir, "left");
    await withState((s) => {
      s.putMessage(row("a"));
      s.putMessage(row("b"));
      s.save();
    });
    expect(readFileSync(db()).equals(snapshot)).toBe(true);
    const stamp1 = SideState.fileStamp(dir, "left");
    expect(stamp1).not.toBe(stamp0);
    await withState((s) => {
      expect(s.rows("INBOX").map((r) => r.key)).toEqual(["a", "b"]);
      s.deleteMessage("INBOX", "a");
      s.flush();
    });
    // A flushed delete: the journal grew.
    const stamp2 = SideState.fileStamp(dir, "left");
    expect(stamp2).not.toBe(stamp1);
    await withState((s) => {
      expect(s.rows("INBOX").map((r) => r.key)).toEqual(["b"]);
      s.save(); // nothing recorded: nothing written
    });
    expect(SideState.fileStamp(dir, "left")).toBe(stamp2);
    expect(readFileSync(db()).equals(snapshot)).toBe(true);
  });

  it("a snapshot is written once the journal is large; the old file becomes .bak and the journal empties", async () => {
    await withState(() => {});
    const first = readFileSync(db());
    await withState((s) => {
      for (let i = 0; i < 400; i++) s.putMessage(row(`k${String(i).padStart(3, "0")}`));
      s.save();
    });
    expect(readFileSync(journal()).length).toBe(0);
    expect(readFileSync(`${db()}.bak`).equals(first)).toBe(true);
    await withState((s) => expect(s.count()).toBe(400));
  });

  it("folder() and folders() show every put and delete at once, and hand out copies", async () => {
    await withState((s) => {
      const inbox = { name: "INBOX", identity: "7", uidNext: 3, highestModseq: "9", count: 1, minDate: 0 };
      expect(s.folder("INBOX")).toBeUndefined();
      s.putFolder(inbox);
      expect(s.folder("INBOX")).toEqual(inbox);
      s.putFolder({ ...inbox, uidNext: 5 });
      expect(s.folder("INBOX")?.uidNext).toBe(5);
      s.putFolder({ ...inbox, name: "Work" });
      expect(s.folders().map((f) => f.name)).toEqual(["INBOX", "Work"]);
      const given = s.folder("INBOX")!;
      given.uidNext = 99;
      s.folders()[0]!.count = 42;
      expect(s.folder("INBOX")).toEqual({ ...inbox, uidNext: 5 });
      s.deleteFolder("INBOX");
      expect(s.folder("INBOX")).toBeUndefined();
      expect(s.folders().map((f) => f.name)).toEqual(["Work"]);
    });
  });

  it("killed after the snapshot's rename, before the journal was emptied: the replay changes nothing", async () => {
    await withState((s) => {
      s.putMessage(row("a"));
      s.putFolder({ name: "INBOX", identity: "7", uidNext: 3, highestModseq: null, count: 1, minDate: 0 });
      s.putMessage(row("b", { flags: [] }));
      s.deleteMessage("INBOX", "a");
      s.deleteFolder("Old");
      s.putIntent({ folder: "INBOX", pairId: "r:x", sourceKey: "x", date: 1 });
      s.save();
    });
    const ops = readFileSync(journal());
    expect(ops.length).toBeGreaterThan(0);
    await withState((s) => s.save(true));
    expect(readFileSync(journal()).length).toBe(0);
    writeFileSync(journal(), ops);
    await withState((s) => {
      expect(s.rows("INBOX")).toEqual([row("b", { flags: [] })]);
      expect(s.intents("INBOX")).toHaveLength(1);
      expect(s.folder("INBOX")?.uidNext).toBe(3);
    });
  });

  it("a torn tail is cut off at open, so that later ops are not appended after it", async () => {
    await withState((s) => {
      s.putMessage(row("a"));
      s.save();
    });
    // A batch killed mid-write.
    writeFileSync(
      journal(),
      Buffer.concat([readFileSync(journal()), Buffer.from('0badf00d {"o":"put","f":"IN')]),
    );
    const torn = readFileSync(journal()).length;
    const ro = await SideState.open(dir, "left", { readOnly: true });
    expect(ro.rows("INBOX").map((r) => r.key)).toEqual(["a"]);
    ro.close();
    expect(readFileSync(journal()).length).toBe(torn);
    await withState((s) => {
      s.putMessage(row("b"));
      s.save();
    });
    await withState((s) => expect(s.rows("INBOX").map((r) => r.key)).toEqual(["a", "b"]));
  });

  it("a journal of several MB (read a chunk at a time, non-ASCII keys) replays whole and is cut exactly", async () => {
    snapshotPolicy.ratio = 1000;
    await withState((s) => {
      for (let i = 0; i < 12_000; i++) s.putMessage(row(`ключ-${i}`, { folder: i % 2 ? "INBOX" : "Été" }));
      s.save();
    });
    expect(readFileSync(journal()).length).toBeGreaterThan(2 * 1024 * 1024);
    writeFileSync(
      journal(),
      Buffer.concat([readFileSync(journal()), Buffer.from('0badf00d {"o":"del","f":"É')]),
    );
    await withState((s) => {
      expect(s.count()).toBe(12_000);
      expect(s.rows("Été")[0]).toEqual(row("ключ-0", { folder: "Été" }));
      s.putMessage(row("last"));
      s.save();
    });
    await withState((s) => expect(s.count()).toBe(12_001));
  });

  it("a damaged line with intact lines after it is refused, naming the journal and --resync", async () => {
    await withState((s) => {
      s.putMessage(row("a"));
      s.flush();
      s.putMessage(row("b"));
      s.save();
    });
    const text = readFileSync(journal(), "utf8");
    writeFileSync(journal(), text.replace('"k":"a"', '"k":"A"'));
    const err = await SideState.open(dir, "left").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).message).toContain(`Journal ${journal()} cannot be read`);
    expect((err as StateError).message).toMatch(/line 2 is damaged.*--resync/);
    // --resync moves both aside; a fresh state starts.
    SideState.moveAside(dir, "left", Date.UTC(2026, 0, 1));
    expect(existsSync(journal())).toBe(false);
    expect(existsSync(`${journal()}.damaged-2026-01-01T00-00-00-000Z`)).toBe(true);
    await withState((s) => expect(s.count()).toBe(0));
  });

  it("a leftover .tmp of a snapshot killed while being written is ignored and replaced", async () => {
    await withState((s) => {
      s.putMessage(row("a"));
      s.save();
    });
    writeFileSync(`${db()}.tmp`, "half a snapshot");
    await withState((s) => {
      expect(s.count()).toBe(1);
      s.save(true);
    });
    expect(existsSync(`${db()}.tmp`)).toBe(false);
    await withState((s) => expect(s.count()).toBe(1));
  });
});

describe("SideState.fileStamp", () => {
  it("names size, mtime and inode of both files, '-' for a missing one", async () => {
    expect(SideState.fileStamp(dir, "right")).toBe("-/-");
    await withState(() => {}, "right");
    expect(SideState.fileStamp(dir, "right")).toMatch(/^\d+:\d+:\d+\/(-|0:\d+:\d+)$/);
  });
});
