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
  /**
   * The print of the pairs both states agreed on, pairId and flags (the same on both sides): with
   * the sides' prints it describes the states well enough for a later run to keep all three up to
   * date from the rows it changes (quiet.ts).
   */
  pairs: string;
}

export interface Proof {
  v: 3;
  tandem: string;
  /** What picks the stores and folders (see configKey); secrets are left out. */
  config: string;
  /** The state files as the proof was written (SideState.fileStamp). */
  stamps: Record<Side, string>;
  folders: Record<string, FolderProof>;
}

const FILE = "proof.json";

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
    proof?.v !== 3 ||
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
    v: 3,
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
