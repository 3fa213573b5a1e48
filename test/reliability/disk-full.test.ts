import { execFileSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit.js";
import { drift, makeWorld, scan, show, sync, type World, work } from "../engine/harness.js";

/**
 * Disk full (issue "Reliability"): a small tmpfs stands in for a full disk, under the Maildir and
 * under the state. The run must stop with exit 1 and a clear message, keep the previous state, and
 * the next run (with space again) must finish without loss or duplicates.
 */
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), "tandem-mnt-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const mountable = canMount();
if (!mountable && process.env.CI) throw new Error("disk-full tests need root and tmpfs mounts in CI");

function bigMessage(tag: string, kb: number): string {
  return (
    `Message-ID: <${tag}@tandem.test>\r\nSubject: ${tag}\r\n\r\n${"y".repeat(1022)}\r\n`.repeat(1) +
    "z".repeat(kb * 1024)
  );
}

function fillDisk(file: string): void {
  const fd = openSync(file, "w");
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!mountable)("disk full", () => {
  let w: World;
  let mnt: string;
  beforeEach(() => {
    w = makeWorld();
    mnt = join(w.dir, "small");
    mkdirSync(mnt);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]);
  });
  afterEach(() => {
    execFileSync("umount", ["-l", mnt]);
    w.cleanup();
  });

  it("while writing messages into a Maildir: exit 1, nothing lost; with space again the next run completes once", async () => {
    const right = join(mnt, "right");
    w.account.right = { type: "maildir", path: right, layout: "maildir++" };
    for (const s of ["cur", "new", "tmp"]) mkdirSync(join(w.roots.left, s), { recursive: true });
    for (let i = 0; i < 12; i++)
      writeFileSync(
        join(w.roots.left, "cur", `${1_790_000_000 + i}.big${i}.test:2,`),
        bigMessage(`M${i}`, 120),
      );
    const r = await sync(w);
    expect(r.exitCode).toBe(EXIT.failure);
    const said = [r.failure ?? "", ...r.folders.flatMap((f) => f.errors)].join(" ");
    expect(said).toMatch(/no space|ENOSPC/i);
    expect(scan(w.roots.left)).toHaveLength(12);
    // Space again: a bigger filesystem under the same path.
    execFileSync("mount", ["-o", "remount,size=8m", mnt]);
    const again = await sync(w);
    expect(again.exitCode, JSON.stringify(again.folders)).toBe(EXIT.ok);
    expect(drift(again)).toEqual([]);
    expect(show(right)).toBe(show(w.roots.left));
    expect(scan(right)).toHaveLength(12);
    expect(work(await sync(w))).toBe(0);
  });

  it("while saving the state: exit 1, the previous state intact, the next run completes", async () => {
    w.account.stateDir = join(mnt, "state");
    for (const s of ["cur", "new", "tmp"]) mkdirSync(join(w.roots.left, s), { recursive: true });
    writeFileSync(join(w.roots.left, "cur", "1790000000.a.test:2,S"), bigMessage("A", 1));
    expect((await sync(w)).exitCode).toBe(EXIT.ok);
    // Give the state more to write, then fill the disk to the last byte.
    for (let i = 0; i < 400; i++)
      writeFileSync(join(w.roots.left, "cur", `${1_790_000_100 + i}.n${i}.test:2,`), bigMessage(`N${i}`, 0));
    fillDisk(join(mnt, "ballast"));
    // Leave room for the lock and the first journal writes, not for a whole snapshot.
    truncateSync(join(mnt, "ballast"), statSync(join(mnt, "ballast")).size - 8192);
    const r = await sync(w);
    expect(r.exitCode).toBe(EXIT.failure);
    expect(r.failure ?? "").toMatch(
      /Cannot (save the state file|write the state journal) .*no space left on device/,
    );
    expect(r.failure ?? "").toMatch(/previous state is kept/);
    rmSync(join(mnt, "ballast"), { force: true });
    const again = await sync(w);
    expect(again.exitCode, JSON.stringify(again)).toBe(EXIT.ok);
    expect(drift(again)).toEqual([]);
    expect(scan(w.roots.right)).toHaveLength(401);
    expect(show(w.roots.right)).toBe(show(w.roots.left));
    expect(work(await sync(w))).toBe(0);
  });
});
