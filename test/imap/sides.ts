// One side of a scenario, as a test sees it: a Maildir directory or a Dovecot user. Both speak the
// scenario notation of test/engine/harness.ts (`A:FS B`, `+A:F -A:S xA nA:S@10`), so that the
// engine's scenario table can run on any pair of stores.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImapFlow } from "imapflow";
import type { AccountConfig, StoreConfig } from "../../src/config/config.js";
import type { Store } from "../../src/drivers/driver.js";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import { openMaildirStore } from "../../src/drivers/maildir/maildir-store.js";
import { type RunOptions, runAccount } from "../../src/engine/sync-account.js";
import type { AccountReport } from "../../src/model/report.js";
import type { Side } from "../../src/model/types.js";
import { change, DAY, FaultCounter, faulty, NOW, seed, show } from "../engine/harness.js";
import { connectImap, type DovecotServer, type ImapUser } from "../helpers/dovecot.js";

export { FaultCounter };

export interface TestSide {
  readonly kind: "maildir" | "imap";
  /** The account section for this side. */
  readonly config: StoreConfig;
  /** Delivers `Tag:Letters` messages dated a day before NOW. `folder` is a `/` name, "" = INBOX. */
  seed(spec: string, folder?: string): Promise<void>;
  /** A mail client's changes (harness notation). */
  change(spec: string, folder?: string): Promise<void>;
  /** The folder in scenario notation, sorted; "" for an empty or missing folder. */
  show(folder?: string): Promise<string>;
  /** Opens the store with tandem's driver, as the CLI would. */
  open(warnings?: string[]): Promise<Store>;
  /** The Dovecot user (IMAP sides). */
  readonly user?: ImapUser;
  /** The Maildir root (Maildir sides). */
  readonly root?: string;
}

/** Letters of the scenario notation and the IMAP flags they stand for (Maildir's letters). */
export const LETTER_FLAG: Record<string, string> = {
  D: "\\Draft",
  F: "\\Flagged",
  P: "$Forwarded",
  R: "\\Answered",
  S: "\\Seen",
  T: "\\Deleted",
};

function flagsOf(letters: string): string[] {
  return [...letters].map((l) => {
    const f = LETTER_FLAG[l];
    if (!f) throw new Error(`scenario: unknown flag letter ${l}`);
    return f;
  });
}

function lettersOf(flags: Iterable<string>): string {
  const out: string[] = [];
  for (const f of flags) {
    const l = Object.keys(LETTER_FLAG).find((k) => LETTER_FLAG[k]!.toLowerCase() === f.toLowerCase());
    if (l) out.push(l);
  }
  return [...new Set(out)].sort().join("");
}

/** The message harness.deliver writes for `tag`: Subject and Message-ID carry the tag. */
export function messageText(tag: string): string {
  return `Message-ID: <${tag}@tandem.test>\r\nSubject: ${tag}\r\nFrom: a@example.com\r\n\r\nBody of ${tag}\r\n`;
}

function words(spec: string): string[] {
  return spec.split(/\s+/).filter((w) => w !== "");
}

// ------------------------------------------------------------------ Maildir

export function maildirSide(root: string, layout: "maildir++" | "fs" = "maildir++"): TestSide {
  for (const s of ["cur", "new", "tmp"]) mkdirSync(join(root, s), { recursive: true });
  return {
    kind: "maildir",
    root,
    config: { type: "maildir", path: root, layout },
    seed: async (spec, folder = "") => seed(root, spec, folder),
    change: async (spec, folder = "") => change(root, spec, folder),
    show: async (folder = "") => show(root, folder),
    open: (warnings) =>
      openMaildirStore({ path: root, layout, create: true, onWarning: (m) => warnings?.push(m) }),
  };
}

// ------------------------------------------------------------------ IMAP

/** Runs `fn` with a fresh logged-in imapflow client (a mail client between runs). */
export async function withImap<T>(u: ImapUser, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
  const client = await connectImap(u);
  try {
    return await fn(client);
  } finally {
    await client.logout().catch(() => {});
    client.close();
  }
}

/** The server path of a `/` folder name ("" = INBOX). */
function serverPath(client: ImapFlow, folder: string): string {
  if (!folder) return "INBOX";
  const delim = client.namespace?.delimiter ?? "/";
  const prefix = client.namespace?.prefix ?? "";
  return prefix + folder.split("/").join(delim);
}

async function ensureMailbox(client: ImapFlow, path: string): Promise<void> {
  if (path === "INBOX") return;
  const all = await client.list();
  if (all.some((e) => e.path === path)) return;
  await client.mailboxCreate(path);
}

interface ImapMessage {
  uid: number;
  tag: string;
  flags: Set<string>;
}

async function messagesOf(client: ImapFlow, path: string): Promise<ImapMessage[] | null> {
  const all = await client.list();
  if (path !== "INBOX" && !all.some((e) => e.path === path)) return null;
  const box = await client.mailboxOpen(path);
  if (box.exists === 0) return [];
  const out: ImapMessage[] = [];
  for await (const m of client.fetch("1:*", { uid: true, flags: true, headers: ["subject"] })) {
    const header = m.headers?.toString("latin1") ?? "";
    const tag = /^Subject: *(.*)$/im.exec(header)?.[1]?.trim() ?? "?";
    out.push({ uid: m.uid, tag, flags: m.flags ?? new Set() });
  }
  return out;
}

export async function appendTagged(
  client: ImapFlow,
  path: string,
  tag: string,
  letters: string,
  date: number,
): Promise<void> {
  await ensureMailbox(client, path);
  await client.append(path, Buffer.from(messageText(tag), "latin1"), flagsOf(letters), new Date(date));
}

export function imapSide(u: ImapUser): TestSide {
  const config: StoreConfig = {
    type: "imap",
    host: u.host,
    port: u.port,
    tls: "none",
    user: u.user,
    password: u.password,
    passwordShell: false,
    connectTimeoutMs: 15_000,
    commandTimeoutMs: 60_000,
  };
  return {
    kind: "imap",
    user: u,
    config,
    seed: (spec, folder = "") =>
      withImap(u, async (c) => {
        const path = serverPath(c, folder);
        await ensureMailbox(c, path);
        for (const item of words(spec)) {
          const [tag, letters = ""] = item.split(":");
          await appendTagged(c, path, tag!, letters, NOW - DAY);
        }
      }),
    change: (spec, folder = "") =>
      withImap(u, async (c) => {
        const path = serverPath(c, folder);
        for (const op of words(spec)) {
          const kind = op[0];
          const parsed = /^([^:@]+)(?::([A-Z]*))?(?:@(\d+))?$/.exec(op.slice(1));
          if (!parsed) throw new Error(`scenario: cannot parse ${op}`);
          const tag = parsed[1]!;
          const letters = parsed[2] ?? "";
          if (kind === "n") {
            const date = parsed[3] ? NOW - Number(parsed[3]) * DAY : NOW - DAY;
            await appendTagged(c, path, tag, letters, date);
            continue;
          }
          const msg = (await messagesOf(c, path))?.find((m) => m.tag === tag);
          if (!msg) throw new Error(`scenario: no message ${tag} in ${u.user}/${path}`);
          const uid = String(msg.uid);
          if (kind === "x") {
            await c.messageFlagsAdd(uid, ["\\Deleted"], { uid: true });
            await c.messageDelete(uid, { uid: true }); // UID EXPUNGE of this one message
          } else if (kind === "+") {
            await c.messageFlagsAdd(uid, flagsOf(letters), { uid: true });
          } else if (kind === "-") {
            await c.messageFlagsRemove(uid, flagsOf(letters), { uid: true });
          } else throw new Error(`scenario: unknown op ${op}`);
        }
      }),
    show: (folder = "") =>
      withImap(u, async (c) => {
        const msgs = (await messagesOf(c, serverPath(c, folder))) ?? [];
        return msgs
          .map((m) => {
            const l = lettersOf(m.flags);
            return l ? `${m.tag}:${l}` : m.tag;
          })
          .sort()
          .join(" ");
      }),
    open: (warnings) =>
      openImapStore({
        host: u.host,
        port: u.port,
        tls: "none",
        user: u.user,
        auth: { password: u.password },
        connectTimeoutMs: 15_000,
        commandTimeoutMs: 60_000,
        onWarning: (m) => warnings?.push(m),
      }),
  };
}

// ------------------------------------------------------------------ worlds

export interface SidesWorld {
  dir: string;
  sides: Record<Side, TestSide>;
  account: AccountConfig;
  /** Driver warnings of every run so far. */
  warnings: string[];
  cleanup(): void;
}

export type SideKind = "maildir" | "imap";

/**
 * A fresh account on two fresh sides: `maildir` is a new directory, `imap` a new Dovecot user of
 * `server` (needed when either side is IMAP).
 */
export async function makeSidesWorld(
  kinds: Record<Side, SideKind>,
  opts: Partial<AccountConfig> & { server?: DovecotServer; layout?: "maildir++" | "fs" } = {},
): Promise<SidesWorld> {
  const { server, layout, ...accountOpts } = opts;
  const dir = mkdtempSync(join(tmpdir(), "tandem-imap-scn-"));
  const make = async (side: Side): Promise<TestSide> => {
    if (kinds[side] === "maildir") return maildirSide(join(dir, side), layout);
    if (!server) throw new Error("an IMAP side needs a server");
    return imapSide(await server.addUser(side));
  };
  const sides = { left: await make("left"), right: await make("right") };
  const account: AccountConfig = {
    name: "test",
    stateDir: join(dir, "state"),
    conflict: "keep",
    maxDelete: 50,
    include: ["*"],
    exclude: [],
    rename: {},
    left: sides.left.config,
    right: sides.right.config,
    ...accountOpts,
  };
  return {
    dir,
    sides,
    account,
    warnings: [],
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Like harness.sync, with each side opened by its own driver (and the fault wrapper when given). */
export async function sync(
  world: SidesWorld,
  opts: Partial<RunOptions> & { counter?: FaultCounter } = {},
): Promise<AccountReport> {
  const { counter, ...rest } = opts;
  return runAccount(world.account, {
    dryRun: false,
    force: false,
    resync: false,
    now: NOW,
    log: () => {},
    openStore: async (side) => {
      const store = await world.sides[side].open(world.warnings);
      return counter ? faulty(store, counter) : store;
    },
    ...rest,
  });
}
