// The chaos tests' model of an account: every message the test ever created (tag = Subject and
// Message-ID), the flags the test gave it, every removal the test made, and the folders. It does not
// try to predict what a killed run left half done; it says what must hold once a run has finished:
// each message the test did not remove is on both sides exactly once with the test's flags, nothing
// the test removed is anywhere, and the folders are the ones the test expects.
//
// To keep that expectation exact under the default policy `keep`, the generator never makes a
// conflict: between two completed runs ("an epoch") a message already known to both sides is changed
// (flags, removal) on one side only, its owner for the epoch; new messages are left alone until a
// completed run has paired them.
import type { Side } from "../../src/model/types.js";
import type { Found } from "./stores.js";

export interface Entry {
  tag: string;
  folder: string;
  letters: string;
  removed: boolean;
  /** The epoch the message was created in; it is paired on both sides from the next epoch on. */
  born: number;
  owner?: { side: Side; epoch: number };
}

export interface FolderInfo {
  name: string;
  born: number;
  /** Removed by the test (on one side, or on both). */
  dead: boolean;
  /** The last epoch the test changed something in this folder. */
  touched: number;
  /** Removed on one side while the other side still holds messages: the side still holding them. */
  vanishingOn?: Side;
}

export class Ledger {
  epoch = 0;
  readonly entries = new Map<string, Entry>();
  readonly folders = new Map<string, FolderInfo>([["", { name: "", born: -1, dead: false, touched: -1 }]]);
  private nextTag = 0;
  private nextFolder = 0;

  constructor(readonly prefix: string) {}

  newTag(): string {
    return `${this.prefix}-${++this.nextTag}`;
  }

  newFolderName(): string {
    return `F${++this.nextFolder}`;
  }

  liveFolders(): FolderInfo[] {
    return [...this.folders.values()].filter((f) => !f.dead);
  }

  created(tag: string, folder: string, letters: string): void {
    this.entries.set(tag, { tag, folder, letters, removed: false, born: this.epoch });
    const f = this.folders.get(folder);
    if (f) f.touched = this.epoch;
    else this.folders.set(folder, { name: folder, born: this.epoch, dead: false, touched: this.epoch });
  }

  /** Messages paired on both sides at the start of this epoch and not removed since. */
  settled(folder: string): Entry[] {
    return [...this.entries.values()].filter((e) => e.folder === folder && !e.removed && e.born < this.epoch);
  }

  /** Messages `side` may change now without making a conflict. */
  changeable(side: Side): Entry[] {
    return [...this.entries.values()].filter((e) => {
      const f = this.folders.get(e.folder)!;
      if (e.removed || e.born >= this.epoch || f.dead) return false;
      return !e.owner || e.owner.epoch !== this.epoch || e.owner.side === side;
    });
  }

  touch(e: Entry, side: Side): void {
    e.owner = { side, epoch: this.epoch };
    this.folders.get(e.folder)!.touched = this.epoch;
  }

  /** Folders that may be removed now: paired, not INBOX, nothing changed in them this epoch. */
  removableFolders(): FolderInfo[] {
    return this.liveFolders().filter((f) => f.name !== "" && f.born < this.epoch && f.touched < this.epoch);
  }

  folderRemoved(name: string, vanishingOn?: Side): void {
    const f = this.folders.get(name)!;
    f.dead = true;
    if (vanishingOn) f.vanishingOn = vanishingOn;
    for (const e of this.entries.values()) if (e.folder === name) e.removed = true;
  }

  vanishing(): FolderInfo[] {
    return [...this.folders.values()].filter((f) => f.vanishingOn !== undefined);
  }

  /**
   * What a side holds against the ledger, after a completed run: one line per problem.
   * `found` maps each folder present on the side to its messages.
   */
  problems(side: Side, found: Map<string, Found[]>): string[] {
    const out: string[] = [];
    const want = new Set(this.liveFolders().map((f) => f.name));
    for (const name of want) if (!found.has(name)) out.push(`${side}: folder ${name || "INBOX"} is missing`);
    for (const name of found.keys())
      if (!want.has(name)) {
        const f = this.folders.get(name);
        out.push(
          `${side}: folder ${name} ${f ? "was removed by the test but" : "is unknown to the test and"} exists`,
        );
      }
    const seen = new Map<string, { folder: string; letters: string }[]>();
    for (const [folder, msgs] of found)
      for (const m of msgs) {
        const list = seen.get(m.tag) ?? [];
        list.push({ folder, letters: m.letters });
        seen.set(m.tag, list);
      }
    for (const [tag, copies] of seen) {
      const e = this.entries.get(tag);
      const where = copies.map((c) => `${c.folder || "INBOX"}:${c.letters || "-"}`).join(", ");
      if (!e) out.push(`${side}: ${tag} was never created by the test, found in ${where}`);
      else if (e.removed) out.push(`${side}: ${tag} was removed by the test but survives in ${where}`);
      else if (copies.length > 1) out.push(`${side}: ${tag} is there ${copies.length} times: ${where}`);
      else if (copies[0]!.folder !== e.folder)
        out.push(`${side}: ${tag} belongs in ${e.folder || "INBOX"} but is in ${where}`);
      else if (copies[0]!.letters !== e.letters)
        out.push(`${side}: ${tag} has flags ${copies[0]!.letters || "-"}, the test set ${e.letters || "-"}`);
    }
    for (const e of this.entries.values())
      if (!e.removed && !seen.has(e.tag))
        out.push(`${side}: ${tag(e)} is lost (flags ${e.letters || "-"}, created in epoch ${e.born})`);
    return out;
  }
}

function tag(e: Entry): string {
  return `${e.tag} in ${e.folder || "INBOX"}`;
}
