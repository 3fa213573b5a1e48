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
  v: 1;
  tandem: string;
  /** What picks the stores and folders (see configKey); secrets are left out. */
  config: string;
  /** The state files as the proof was written (SideState.fileStamp). */
  stamps: Record<Side, string>;
  folders: Record<string, FolderProof>;
}

const FILE = "proof.json";

/**
 * SHA-256 over the entries in key order (shorter keys first, then by code unit: for IMAP's
 * `UIDVALIDITY/UID` keys that is UID order, the order the server lists them in, so that listing
 * needs no sort); flags sorted. Any store's order gives the same print.
 */
export function fingerprintOf(entries: Iterable<{ key: string; flags: readonly string[] }>): string {
  let list = Array.isArray(entries) ? (entries as { key: string; flags: readonly string[] }[]) : [...entries];
  let sorted = true;
  for (let i = 1; i < list.length && sorted; i++) if (keyOrder(list[i - 1]!, list[i]!) > 0) sorted = false;
  if (!sorted) {
    // The caller's array is left as it was.
    if (list === entries) list = [...list];
    list.sort(keyOrder);
  }
  const hash = createHash("sha256");
  let chunk = "";
  for (const e of list) {
    const flags = e.flags.length > 1 ? [...e.flags].sort().join(" ") : (e.flags[0] ?? "");
    // NUL and newline separate fields and entries: neither occurs in a key or a flag we keep.
    chunk += `${e.key}\u0000${flags}\n`;
    if (chunk.length > 65_536) {
      hash.update(chunk);
      chunk = "";
    }
  }
  hash.update(chunk);
  return hash.digest("hex");
}

function keyOrder(a: { key: string }, b: { key: string }): number {
  const d = a.key.length - b.key.length;
  if (d !== 0) return d;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
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
    proof?.v !== 1 ||
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
    v: 1,
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
