// Both sides of a benchmark account, listed independently of the tools under test, compared, and
// changed the way a mail client would change them.

import { open, readdir, rename, stat, unlink } from "node:fs/promises";
import * as path from "node:path";
import { ImapFlow } from "imapflow";
import { DAY_MS, flagLetters, newMessage } from "./corpus.mjs";

const SYSTEM_FLAGS = ["\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen"];
const LETTER_FLAG = { D: "\\Draft", F: "\\Flagged", R: "\\Answered", S: "\\Seen", T: "\\Deleted" };

async function connect(user) {
  const client = new ImapFlow({
    host: user.host,
    port: user.port,
    secure: false,
    doSTARTTLS: false,
    auth: { user: user.user, pass: user.password },
    logger: false,
  });
  await client.connect();
  return client;
}

const normalFlags = (flags) => [...flags].filter((f) => SYSTEM_FLAGS.includes(f)).sort();

/**
 * The server's view: Map folder → [{ uid, messageId, flags (sorted system flags), date (ms) }].
 */
export async function listServer(user) {
  const client = await connect(user);
  try {
    const out = new Map();
    const boxes = await client.list();
    for (const box of boxes) {
      if (box.flags.has("\\Noselect") || box.flags.has("\\NonExistent")) continue;
      const mb = await client.mailboxOpen(box.path, { readOnly: true });
      const list = [];
      if (mb.exists > 0) {
        for await (const msg of client.fetch(
          "1:*",
          { uid: true, flags: true, envelope: true, internalDate: true },
          { uid: false },
        )) {
          list.push({
            uid: msg.uid,
            messageId: msg.envelope?.messageId ?? "",
            flags: normalFlags(msg.flags ?? []),
            date: new Date(msg.internalDate).getTime(),
          });
        }
      }
      out.set(box.path, list);
    }
    return out;
  } finally {
    await client.logout().catch(() => {});
  }
}

async function headerMessageId(file) {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(16384);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString("latin1");
    const end = text.search(/\r?\n\r?\n/);
    const head = end === -1 ? text : text.slice(0, end);
    const m = /^message-id:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)/im.exec(head);
    if (!m) return "";
    const id = /<[^>]*>/.exec(m[1]);
    return id ? id[0] : m[1].trim();
  } finally {
    await fh.close();
  }
}

function parseName(file) {
  const i = file.lastIndexOf(":2,");
  const info = i === -1 ? "" : file.slice(i + 3);
  const flags = [];
  for (const ch of info) if (LETTER_FLAG[ch]) flags.push(LETTER_FLAG[ch]);
  return { base: i === -1 ? file : file.slice(0, i), info, flags: flags.sort() };
}

async function isDir(p) {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A Maildir++ tree's view: Map folder → [{ file (absolute), messageId, flags }]. INBOX is the root,
 * `.A.B` is the folder "A.B" (Dovecot's separator).
 */
export async function listMaildir(root) {
  const out = new Map();
  if (!(await isDir(root))) return out;
  const folders = [];
  if (await isDir(path.join(root, "cur"))) folders.push(["INBOX", root]);
  for (const e of await readdir(root)) {
    if (e.startsWith(".") && e !== "." && e !== ".." && (await isDir(path.join(root, e, "cur")))) {
      folders.push([e.slice(1), path.join(root, e)]);
    }
  }
  for (const [name, dir] of folders) {
    const list = [];
    for (const sub of ["cur", "new"]) {
      const d = path.join(dir, sub);
      let files = [];
      try {
        files = await readdir(d);
      } catch {
        continue;
      }
      const batch = [];
      for (const f of files) {
        if (f.startsWith(".")) continue;
        const file = path.join(d, f);
        batch.push(
          headerMessageId(file).then((messageId) => ({ file, messageId, flags: parseName(f).flags })),
        );
        if (batch.length >= 64) list.push(...(await Promise.all(batch.splice(0))));
      }
      list.push(...(await Promise.all(batch)));
    }
    out.set(name, list);
  }
  return out;
}

/**
 * Holds the server listing against the Maildir listing. With `maxage` ({ now, days }), the
 * Maildir must hold exactly the server's messages that arrived in the window, give or take
 * those within a day of its edge (servers and tools count days differently).
 * Resolves to { ok, problems: string[], counts }.
 */
export function compare(server, local, opts = {}) {
  const problems = [];
  const note = (s) => {
    if (problems.length < 50) problems.push(s);
  };
  const cutoff = opts.maxage ? opts.maxage.now - opts.maxage.days * DAY_MS : undefined;
  const inWindow = (date) =>
    cutoff === undefined ? "yes" : date >= cutoff + DAY_MS ? "yes" : date < cutoff - DAY_MS ? "no" : "either";

  if (cutoff === undefined) {
    for (const f of server.keys()) if (!local.has(f)) note(`folder ${f}: on the server, not in the Maildir`);
  }
  for (const f of local.keys()) if (!server.has(f)) note(`folder ${f}: in the Maildir, not on the server`);

  let serverCount = 0;
  let localCount = 0;
  let duplicates = 0;
  const seenLocal = new Map();
  const seenServer = new Map();
  for (const [folder, msgs] of server) {
    for (const m of msgs) {
      const prev = seenServer.get(m.messageId);
      if (prev !== undefined) note(`server: ${m.messageId} twice (${prev}, ${folder})`);
      seenServer.set(m.messageId, folder);
    }
  }
  for (const [folder, msgs] of local) {
    localCount += msgs.length;
    for (const m of msgs) {
      const prev = seenLocal.get(m.messageId);
      if (prev !== undefined) {
        duplicates++;
        note(`Maildir: ${m.messageId || "(no Message-ID)"} twice (${prev}, ${folder})`);
      }
      seenLocal.set(m.messageId, folder);
    }
  }
  for (const [folder, smsgs] of server) {
    const lmsgs = local.get(folder) ?? [];
    const lmap = new Map(lmsgs.map((m) => [m.messageId, m]));
    const smap = new Map(smsgs.map((m) => [m.messageId, m]));
    let expected = 0;
    for (const s of smsgs) {
      const want = inWindow(s.date);
      const l = lmap.get(s.messageId);
      if (want === "yes") expected++;
      if (l && want !== "no") {
        if (want === "either") expected++;
        if (flagLetters(l.flags) !== flagLetters(s.flags)) {
          note(
            `${folder} ${s.messageId}: flags server "${flagLetters(s.flags)}", Maildir "${flagLetters(l.flags)}"`,
          );
        }
      } else if (l && want === "no") note(`${folder} ${s.messageId}: older than maxage, in the Maildir`);
      else if (!l && want === "yes") note(`${folder} ${s.messageId}: on the server, not in the Maildir`);
    }
    for (const l of lmsgs)
      if (!smap.has(l.messageId)) note(`${folder} ${l.messageId}: in the Maildir, not on the server`);
    if (lmsgs.length !== expected)
      note(`${folder}: ${smsgs.length} on the server, ${lmsgs.length} in the Maildir`);
    serverCount += cutoff === undefined ? smsgs.length : expected;
  }
  return { ok: problems.length === 0 && duplicates === 0, problems, serverCount, localCount, duplicates };
}

/** Distinct random picks from a listing: [{ folder, msg }]. */
function pickMessages(rnd, listing, n) {
  const all = [];
  for (const [folder, msgs] of listing) for (const msg of msgs) all.push({ folder, msg });
  for (let i = all.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, Math.min(n, all.length));
}

const toggledFlag = (rnd) => (rnd() < 0.6 ? "\\Seen" : "\\Flagged");

/**
 * On the server, as another client would: `flags` flag toggles, `adds` new messages, `removes`
 * expunged messages, all on distinct messages. `tag` keeps the new Message-IDs unique.
 */
export async function changeServer(user, rnd, { flags, adds, removes, tag, now }) {
  const listing = await listServer(user);
  const picked = pickMessages(rnd, listing, flags + removes);
  const byFolder = new Map();
  const entry = (f) => {
    if (!byFolder.has(f)) byFolder.set(f, { add: new Map(), remove: new Map(), expunge: [] });
    return byFolder.get(f);
  };
  picked.forEach(({ folder, msg }, i) => {
    const e = entry(folder);
    if (i < flags) {
      const flag = toggledFlag(rnd);
      const side = msg.flags.includes(flag) ? e.remove : e.add;
      if (!side.has(flag)) side.set(flag, []);
      side.get(flag).push(msg.uid);
    } else e.expunge.push(msg.uid);
  });
  const folders = [...listing.keys()];
  const client = await connect(user);
  try {
    for (const [folder, e] of byFolder) {
      await client.mailboxOpen(folder);
      for (const [flag, uids] of e.add) await client.messageFlagsAdd(uids.join(","), [flag], { uid: true });
      for (const [flag, uids] of e.remove)
        await client.messageFlagsRemove(uids.join(","), [flag], { uid: true });
      if (e.expunge.length) await client.messageDelete(e.expunge.join(","), { uid: true });
    }
    for (let k = 0; k < adds; k++) {
      // Most new mail lands in INBOX.
      const folder = rnd() < 0.6 || !folders.length ? "INBOX" : rnd.pick(folders);
      const m = newMessage(rnd, `${tag}.${k}`, now);
      await client.append(folder, Buffer.from(m.text.replace(/\n/g, "\r\n")), [], new Date(m.date));
    }
  } finally {
    await client.logout().catch(() => {});
  }
}

/** In the Maildir, as a mail client would: `flags` flag toggles (renames), `removes` unlinked files. */
export async function changeMaildir(root, rnd, { flags, removes }) {
  const listing = await listMaildir(root);
  const picked = pickMessages(rnd, listing, flags + removes);
  for (let i = 0; i < picked.length; i++) {
    const { file } = picked[i].msg;
    if (i >= flags) {
      await unlink(file);
      continue;
    }
    const name = path.basename(file);
    const { base, info } = parseName(name);
    const letter = toggledFlag(rnd) === "\\Seen" ? "S" : "F";
    const letters = info.includes(letter) ? info.replace(letter, "") : [...info, letter].sort().join("");
    const target = path.join(path.dirname(path.dirname(file)), "cur", `${base}:2,${letters}`);
    await rename(file, target);
  }
}
