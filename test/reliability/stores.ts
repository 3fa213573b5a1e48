// The two kinds of store as "another client" sees them in the chaos tests: a Maildir on disk, changed
// with plain file operations, and a Dovecot user, changed over IMAP with imapflow. Messages are named
// by a tag that is both their Subject and their Message-ID (`<tag@chaos.test>`).
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { ImapFlow } from "imapflow";
import { connectImap, type ImapUser } from "../helpers/dovecot.js";
import { LETTER_FLAG } from "../imap/sides.js";

/** The flag letters the chaos tests use (Maildir's letters; on IMAP the flags of LETTER_FLAG). */
export const LETTERS = "DFPRS";

export function sortLetters(s: string): string {
  return [...new Set(s)].sort().join("");
}

export function messageText(tag: string, extraLines = 0): string {
  const pad = Array.from({ length: extraLines }, (_, i) => `line ${i} of ${tag}\r\n`).join("");
  return `Message-ID: <${tag}@chaos.test>\r\nSubject: ${tag}\r\nFrom: chaos@example.com\r\nTo: me@example.com\r\nDate: Sun, 1 Nov 2026 10:00:00 +0000\r\n\r\nBody of ${tag}\r\n${pad}`;
}

export function tagOf(header: string): string {
  return /^Subject: *(.*)$/im.exec(header)?.[1]?.trim() ?? "?";
}

export interface Found {
  tag: string;
  letters: string;
  /** Maildir: the file; IMAP: the UID. */
  ref: string;
}

/** One side of an account as another mail client sees it. Folder "" is INBOX; other names are flat. */
export interface ClientSide {
  readonly label: string;
  /** Connects (IMAP) for a batch of operations; `end` disconnects. No-ops for Maildir. */
  begin(): Promise<void>;
  end(): Promise<void>;
  folders(): Promise<string[]>;
  /** The folder's messages; [] when the folder does not exist. */
  list(folder: string): Promise<Found[]>;
  /** Delivers a new message, creating the folder when it is missing. */
  deliver(folder: string, tag: string, letters: string): Promise<void>;
  setLetters(folder: string, m: Found, letters: string): Promise<void>;
  remove(folder: string, m: Found): Promise<void>;
  removeFolder(folder: string): Promise<void>;
}

// ------------------------------------------------------------------ Maildir

let delivered = 0;

export function uniqueBase(date = Date.now()): string {
  return `${Math.floor(date / 1000)}.M${++delivered}P${process.pid}R${Math.floor(Math.random() * 1e9)}.chaos`;
}

export class MaildirClient implements ClientSide {
  readonly label: string;

  constructor(readonly root: string) {
    this.label = `maildir ${root}`;
    for (const s of ["cur", "new", "tmp"]) mkdirSync(join(root, s), { recursive: true });
  }

  private dir(folder: string): string {
    return folder ? join(this.root, `.${folder}`) : this.root;
  }

  async begin(): Promise<void> {}
  async end(): Promise<void> {}

  async folders(): Promise<string[]> {
    const out = [""];
    for (const name of readdirSync(this.root)) {
      if (!name.startsWith(".") || name === "." || name === "..") continue;
      if (statSync(join(this.root, name)).isDirectory()) out.push(name.slice(1));
    }
    return out.sort();
  }

  async list(folder: string): Promise<Found[]> {
    const out: Found[] = [];
    for (const sub of ["new", "cur"]) {
      let names: string[];
      try {
        names = readdirSync(join(this.dir(folder), sub));
      } catch {
        continue;
      }
      for (const name of names) {
        const file = join(this.dir(folder), sub, name);
        const i = name.indexOf(":2,");
        out.push({
          tag: tagOf(readFileSync(file, "latin1")),
          letters: i >= 0 ? sortLetters(name.slice(i + 3).replace(/[^A-Z]/g, "")) : "",
          ref: file,
        });
      }
    }
    return out;
  }

  async deliver(folder: string, tag: string, letters: string): Promise<void> {
    const dir = this.dir(folder);
    for (const s of ["cur", "new", "tmp"]) mkdirSync(join(dir, s), { recursive: true });
    const base = uniqueBase();
    const tmp = join(dir, "tmp", base);
    writeFileSync(tmp, messageText(tag));
    renameSync(tmp, letters ? join(dir, "cur", `${base}:2,${sortLetters(letters)}`) : join(dir, "new", base));
  }

  async setLetters(folder: string, m: Found, letters: string): Promise<void> {
    const base = m.ref.split("/").pop()!.split(":2,")[0]!;
    renameSync(m.ref, join(this.dir(folder), "cur", `${base}:2,${sortLetters(letters)}`));
  }

  async remove(_folder: string, m: Found): Promise<void> {
    unlinkSync(m.ref);
  }

  async removeFolder(folder: string): Promise<void> {
    if (!folder) throw new Error("INBOX cannot be removed");
    rmSync(this.dir(folder), { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ IMAP

function flagsOf(letters: string): string[] {
  return [...letters].map((l) => LETTER_FLAG[l]!);
}

function lettersOf(flags: Iterable<string>): string {
  const out: string[] = [];
  for (const f of flags) {
    const l = Object.keys(LETTER_FLAG).find((k) => LETTER_FLAG[k]!.toLowerCase() === f.toLowerCase());
    if (l) out.push(l);
  }
  return sortLetters(out.join(""));
}

export class ImapClient implements ClientSide {
  readonly label: string;
  private client: ImapFlow | undefined;

  constructor(readonly user: ImapUser) {
    this.label = `imap ${user.user}`;
  }

  private get c(): ImapFlow {
    if (!this.client) throw new Error("ImapClient: begin() first");
    return this.client;
  }

  async begin(): Promise<void> {
    if (!this.client) this.client = await connectImap(this.user);
  }

  async end(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    await c.logout().catch(() => {});
    c.close();
  }

  private path(folder: string): string {
    return folder || "INBOX";
  }

  async folders(): Promise<string[]> {
    const all = await this.c.list();
    return all.map((e) => (e.path.toUpperCase() === "INBOX" ? "" : e.path)).sort();
  }

  private async select(folder: string): Promise<boolean> {
    const path = this.path(folder);
    if (this.c.mailbox && this.c.mailbox.path === path) return true;
    if (folder && !(await this.folders()).includes(folder)) return false;
    await this.c.mailboxOpen(path);
    return true;
  }

  async list(folder: string): Promise<Found[]> {
    if (!(await this.select(folder))) return [];
    const box = this.c.mailbox;
    if (!box || box.exists === 0) return [];
    const out: Found[] = [];
    for await (const m of this.c.fetch("1:*", { uid: true, flags: true, headers: ["subject"] })) {
      out.push({
        tag: tagOf(m.headers?.toString("latin1") ?? ""),
        letters: lettersOf(m.flags ?? []),
        ref: String(m.uid),
      });
    }
    return out;
  }

  async deliver(folder: string, tag: string, letters: string): Promise<void> {
    const path = this.path(folder);
    if (folder && !(await this.folders()).includes(folder)) await this.c.mailboxCreate(path);
    await this.c.append(path, Buffer.from(messageText(tag), "latin1"), flagsOf(letters), new Date());
  }

  async setLetters(folder: string, m: Found, letters: string): Promise<void> {
    await this.select(folder);
    await this.c.messageFlagsSet(m.ref, flagsOf(letters), { uid: true });
  }

  async remove(folder: string, m: Found): Promise<void> {
    await this.select(folder);
    await this.c.messageFlagsAdd(m.ref, ["\\Deleted"], { uid: true });
    await this.c.messageDelete(m.ref, { uid: true });
  }

  async removeFolder(folder: string): Promise<void> {
    if (!folder) throw new Error("INBOX cannot be removed");
    if (this.c.mailbox && this.c.mailbox.path === folder) await this.c.mailboxClose();
    await this.c.mailboxDelete(folder);
  }
}
