import type { Side } from "./types.js";

/** Something that makes the two sides disagree although the states say they agree (SYNC-MODEL.md "drift"). */
export interface Drift {
  folder: string;
  side: Side;
  key?: string;
  pairId?: string;
  what: string;
}

export interface FolderReport {
  /** The folder's name on the left (and on the right, where a rename map differs). */
  folder: string;
  rightName: string;
  /** Messages copied to each side. */
  copied: Record<Side, number>;
  /** Flag updates written to each side. */
  flagged: Record<Side, number>;
  /** Messages removed from each side. */
  removed: Record<Side, number>;
  /** Folder created on a side this run. */
  created: Side[];
  /** The folder was removed on the other side and, being empty, removed on this one too. */
  removedFolder?: Side;
  conflicts: { pairId: string; text: string }[];
  /** Safety guards and pre-check problems that stopped this folder. */
  stops: { guard: string; message: string }[];
  /** Failures scoped to one message; the rest of the folder went on. */
  errors: string[];
  mended: string[];
  drift: Drift[];
  verified: boolean;
  /** Verified by its proof (engine/proof.ts): listed in full, unchanged since the last clean run, not synced. */
  proven?: boolean;
  /**
   * Synced on the quiet-side path (engine/quiet.ts): this side printed exactly as the last clean
   * run left it, only the other side's changes were read, and the stores' fresh prints matched
   * the states' prints carried forward from that run's proof.
   */
  quiet?: Side;
}

export function newFolderReport(folder: string, rightName: string): FolderReport {
  return {
    folder,
    rightName,
    copied: { left: 0, right: 0 },
    flagged: { left: 0, right: 0 },
    removed: { left: 0, right: 0 },
    created: [],
    conflicts: [],
    stops: [],
    errors: [],
    mended: [],
    drift: [],
    verified: false,
  };
}

export interface AccountReport {
  account: string;
  dryRun: boolean;
  folders: FolderReport[];
  /** Things worth saying that are not failures (a damaged state moved aside, ...). */
  notes: string[];
  /**
   * Nothing had changed since the last clean run: every folder's full listing matched that run's
   * fingerprints (engine/proof.ts), so the states were neither loaded nor written.
   */
  proven?: boolean;
  /** Account-wide failure (connection, authentication, state), if the run could not finish. */
  failure?: string;
  exitCode: number;
}
