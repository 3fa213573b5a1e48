import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { AccountConfig, StoreConfig } from "../config/config.js";
import type { Side } from "../model/types.js";
import { SideState } from "../state/side-state.js";
import { VERSION } from "../version.js";

/**
 * The proof a clean run leaves behind (`<state dir>/proof.json`): for every folder, a fingerprint
 * of each side's full verification listing (keys and flags), taken after the run's last write and
 * found to agree with both states. It is written only when every folder settled and verified and
 * both states were saved, and it carries a stamp of the state files it vouches for.
 *
 * The next run may then verify a folder by listing it in full again and comparing fingerprints:
 * same listing + same (unchanged) states = the verification already done, with the same result.
 * Anything that differs — a listing, a state file, the config, tandem's version — and the run
 * takes the ordinary path. A lost or torn proof only costs that ordinary path.
 */
export interface SideProof {
  identity: string;
  fingerprint: string;
  count: number;
}

export interface FolderProof {
  names: Record<Side, string>;
  left: SideProof;
  right: SideProof;
}

export interface Proof {
  v: 2;
  tandem: string;
  /** What picks the stores and folders (see configKey); secrets are left out. */
  config: string;
  /** The state files as the proof was written (SideState.fileStamp). */
  stamps: Record<Side, string>;
  folders: Record<string, FolderProof>;
}

const FILE = "proof.json";

/**
 * A fingerprint of a listing that needs no sort and no copy: the sum, lane by lane mod 2^32, of a
 * 128-bit value per entry (two 32-bit hashes of its key, NUL and flags sorted and joined by spaces,
 * by two different mixings, spread over four lanes), with the count.
 * A sum is the same in any order, so a Maildir's directory order and a server's UID order agree
 * without sorting 100,000 entries; a changed, added or lost entry changes the sum unless its
 * hash collides (2^-64 for accidents). Not a cryptographic hash: it guards against mistakes, and
 * whoever can shape keys and flags in a store can change the mail itself anyway.
 */
export function fingerprintOf(entries: Iterable<{ key: string; flags: readonly string[] }>): string {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let n = 0;
  for (const e of entries) {
    // Two different mixings of the same characters, so that the lanes are not one hash twice.
    let a = 0x811c9dc5;
    let b = 0x9747b28c;
    const key = e.key;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    // NUL and space separate: neither occurs in a key or a flag we keep.
    const flags = e.flags;
    const sorted = flags.length < 2 || isSorted(flags) ? flags : [...flags].sort();
    for (let f = 0; f < sorted.length; f++) {
      const flag = sorted[f]!;
      const sep = f === 0 ? 0 : 32;
      a = Math.imul(a ^ sep, 0x01000193);
      b = Math.imul(b ^ sep, 0x5bd1e995);
      b ^= b >>> 15;
      for (let i = 0; i < flag.length; i++) {
        const c = flag.charCodeAt(i);
        a = Math.imul(a ^ c, 0x01000193);
        b = Math.imul(b ^ c, 0x5bd1e995);
        b ^= b >>> 15;
      }
    }
    // Without flags the entry still ends in its NUL: "k" + no flags differs from "k\0" + "".
    if (sorted.length === 0) {
      a = Math.imul(a ^ 0, 0x01000193);
      b = Math.imul(b ^ 0, 0x5bd1e995);
      b ^= b >>> 15;
    }
    s0 = (s0 + fmix(a ^ 0x3c6ef372)) | 0;
    s1 = (s1 + fmix(b ^ 0xa54ff53a)) | 0;
    s2 = (s2 + fmix((a + Math.imul(b, 0x27d4eb2f)) | 0)) | 0;
    s3 = (s3 + fmix((b ^ Math.imul(a, 0x165667b1)) | 0)) | 0;
    n++;
  }
  const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");
  return `m1:${n}:${hex(s0)}${hex(s1)}${hex(s2)}${hex(s3)}`;
}

function isSorted(flags: readonly string[]): boolean {
  for (let i = 1; i < flags.length; i++) if (flags[i - 1]! > flags[i]!) return false;
  return true;
}

/** MurmurHash3's 32-bit finalizer: every input bit reaches every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** What decides which stores and folders a run syncs, and how: a change means a new proof is needed. */
export function configKey(account: AccountConfig): string {
  const store = (s: StoreConfig) =>
    s.type === "maildir"
      ? { type: s.type, path: s.path, layout: s.layout }
      : { type: s.type, host: s.host, port: s.port, user: s.user };
  const key = JSON.stringify({
    name: account.name,
    left: store(account.left),
    right: store(account.right),
    include: account.include,
    exclude: account.exclude,
    rename: Object.entries(account.rename).sort(),
    maxage: account.maxage ?? 0,
  });
  return createHash("sha256").update(key).digest("hex");
}

/** The proof, if there is one that vouches for these very state files, config and version. */
export function readProof(dir: string, account: AccountConfig): Proof | undefined {
  let proof: Proof;
  try {
    proof = JSON.parse(readFileSync(join(dir, FILE), "utf8")) as Proof;
  } catch {
    return undefined;
  }
  if (
    proof?.v !== 2 ||
    proof.tandem !== VERSION ||
    proof.config !== configKey(account) ||
    typeof proof.folders !== "object" ||
    proof.stamps?.left !== SideState.fileStamp(dir, "left") ||
    proof.stamps?.right !== SideState.fileStamp(dir, "right")
  )
    return undefined;
  return proof;
}

/** Written after both states were saved; atomic (a torn file reads as no proof), private to the owner. */
export function writeProof(dir: string, account: AccountConfig, folders: Record<string, FolderProof>): void {
  const proof: Proof = {
    v: 2,
    tandem: VERSION,
    config: configKey(account),
    stamps: { left: SideState.fileStamp(dir, "left"), right: SideState.fileStamp(dir, "right") },
    folders,
  };
  const file = join(dir, FILE);
  const tmp = `${file}.tmp`;
  try {
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify(proof));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch {
    // Best effort: without a proof the next run takes the ordinary path.
    removeProof(dir);
  }
}

/** Done before a run writes anything to the states: a proof never outlives the states it describes. */
export function removeProof(dir: string): void {
  rmSync(join(dir, FILE), { force: true });
  rmSync(join(dir, `${FILE}.tmp`), { force: true });
}
