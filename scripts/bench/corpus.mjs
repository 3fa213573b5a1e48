// A deterministic, realistic mail corpus for the benchmark, written straight into Maildir++ trees.
//
// Sizes: mostly 2–20 KB of text (log-uniform), about 1 in 100 with a 0.2–2 MB base64 attachment.
// Unique Message-IDs, arrival dates spread over two years (file mtime = INTERNALDATE in Dovecot's
// Maildir), flags from the `:2,` suffix. The same seed gives the same messages, byte for byte; only
// the dates are relative to the `now` given.

import { mkdir, utimes, writeFile } from "node:fs/promises";
import * as path from "node:path";

export const DAY_MS = 86_400_000;
const SPAN_DAYS = 730;

/** mulberry32: small, fast, good enough for test data. Returns floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  next.logUniform = (lo, hi) => Math.exp(Math.log(lo) + next() * (Math.log(hi) - Math.log(lo)));
  return next;
}

// Parents always come before their children, so every prefix of this list is a valid tree.
const FOLDER_POOL = [
  "Sent",
  "Archive",
  "Lists",
  "Lists.node",
  "Archive.2024",
  "Drafts",
  "Work",
  "Lists.debian",
  "Receipts",
  "Work.Projects",
  "Archive.2025",
  "Family",
  "Newsletters",
  "Lists.rust",
  "Travel",
  "Notifications",
  "Work.Projects.tandem",
  "Junk",
  "Trash",
  "Friends",
  "Bank",
  "Lists.dovecot",
  "Health",
  "Taxes",
];

/** IMAP names (Dovecot's "." separator) of the F folders: INBOX first. */
export function folderNames(count) {
  const names = ["INBOX"];
  for (let i = 0; names.length < count; i++) {
    names.push(
      i < FOLDER_POOL.length
        ? FOLDER_POOL[i]
        : `Folder-${String(i - FOLDER_POOL.length + 1).padStart(3, "0")}`,
    );
  }
  return names;
}

/** Directory of an IMAP folder inside a Maildir++ root. */
export function folderDir(root, name) {
  return name === "INBOX" ? root : path.join(root, `.${name}`);
}

const WORDS = (
  "the of and to in is that for it as was with be by on not he this are or his from at which but have an " +
  "they you were her she there been one all we their has would when if so no will more can out up who " +
  "said about what its into than them only some could time these two may first then do any like my now " +
  "over such our man me even most made after also did many before must through back years where much your " +
  "way well down should because each just those people how too little state good very make world still " +
  "mailbox server folder message sync flag maildir index backup release patch review meeting invoice " +
  "schedule travel report budget question answer thanks regards please attached draft update changes"
).split(" ");
const FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory"];
const LAST = [
  "Smith",
  "Jones",
  "Müller",
  "Garcia",
  "Nguyen",
  "Okafor",
  "Rossi",
  "Tanaka",
  "Larsen",
  "Kowalski",
];
const DOMAINS = ["example.org", "example.com", "example.net", "lists.example.org", "mail.example.edu"];

function words(rnd, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(WORDS[rnd.int(WORDS.length)]);
  return out.join(" ");
}

/** Text lines of at most 72 columns adding up to about `bytes`. */
function textBody(rnd, bytes) {
  const lines = [];
  let size = 0;
  let line = "";
  while (size < bytes) {
    const w = WORDS[rnd.int(WORDS.length)];
    if (line.length + w.length + 1 > 72) {
      lines.push(line);
      size += line.length + 1;
      line = w;
      if (rnd() < 0.08) {
        lines.push("");
        size += 1;
      }
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join("\n");
}

function randomBytes(rnd, n) {
  const buf = Buffer.allocUnsafe(n + 4);
  for (let i = 0; i < n; i += 4) buf.writeUInt32LE((rnd() * 4294967296) >>> 0, i);
  return buf.subarray(0, n);
}

function base64Lines(buf) {
  const b64 = buf.toString("base64");
  const lines = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join("\n");
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const pad2 = (n) => String(n).padStart(2, "0");

/** RFC 5322 date in UTC. */
export function rfcDate(ms) {
  const d = new Date(ms);
  return `${WEEKDAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`;
}

function person(rnd) {
  const first = rnd.pick(FIRST);
  const last = rnd.pick(LAST);
  return {
    name: `${first} ${last}`,
    addr: `${first.toLowerCase()}.${last.toLowerCase()}@${rnd.pick(DOMAINS)}`,
  };
}

/**
 * One message as LF-terminated text (what a Maildir file holds).
 * `attachment`: bytes of binary attachment (0 for none).
 */
export function messageText(rnd, { messageId, date, subject, bodyBytes, attachment }) {
  const from = person(rnd);
  const head = [
    `Return-Path: <${from.addr}>`,
    `From: ${from.name.replace(/ü/g, "ue")} <${from.addr}>`,
    "To: Bench User <bench@example.net>",
    `Subject: ${subject}`,
    `Date: ${rfcDate(date)}`,
    `Message-ID: ${messageId}`,
    "MIME-Version: 1.0",
  ];
  if (!attachment) {
    head.push("Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit");
    return `${head.join("\n")}\n\n${textBody(rnd, bodyBytes)}\n`;
  }
  const boundary = `=_bench_${Math.floor(rnd() * 1e12).toString(36)}`;
  head.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
  return [
    head.join("\n"),
    "",
    "This is a multi-part message in MIME format.",
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=us-ascii",
    "Content-Transfer-Encoding: 7bit",
    "",
    textBody(rnd, bodyBytes),
    "",
    `--${boundary}`,
    "Content-Type: application/octet-stream",
    `Content-Disposition: attachment; filename="file-${rnd.int(100000)}.bin"`,
    "Content-Transfer-Encoding: base64",
    "",
    base64Lines(randomBytes(rnd, attachment)),
    "",
    `--${boundary}--`,
    "",
  ].join("\n");
}

/** Maildir flag letters in ASCII order. */
export function flagLetters(flags) {
  const map = { "\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T" };
  return flags
    .map((f) => map[f])
    .filter(Boolean)
    .sort()
    .join("");
}

/** Description of message i (no text yet): folder, date, flags, sizes. */
function describe(rnd, i, folders, weights, now, seed) {
  const folderIndex = i < folders.length ? i : weightedIndex(rnd, weights);
  const folder = folders[folderIndex];
  // Arrival: uniform over two years, kept a few minutes away from now.
  const date = now - 300_000 - Math.floor(rnd() * SPAN_DAYS * DAY_MS);
  const ageDays = (now - date) / DAY_MS;
  const flags = [];
  const seen = folder === "Sent" || folder === "Drafts" || rnd() < (ageDays > 30 ? 0.95 : 0.5);
  if (seen) flags.push("\\Seen");
  if (seen && rnd() < 0.1) flags.push("\\Answered");
  if (rnd() < 0.03) flags.push("\\Flagged");
  if (folder === "Drafts") flags.push("\\Draft");
  const attachment = rnd() < 0.01 ? Math.floor(rnd.logUniform(200_000, 2_000_000) / 1.37) : 0;
  const bodyBytes = Math.floor(rnd.logUniform(1_500, 19_000));
  return {
    index: i,
    folder,
    date,
    flags,
    attachment,
    bodyBytes,
    messageId: `<bench.${seed.toString(36)}.${i}@tandem.bench>`,
    subject: `${words(rnd, 2 + rnd.int(6))} #${i}`,
  };
}

function weightedIndex(rnd, weights) {
  const total = weights[weights.length - 1];
  const x = rnd() * total;
  let lo = 0;
  let hi = weights.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (weights[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function cumulativeWeights(n) {
  // INBOX holds about a quarter; the rest fall off like a Zipf curve.
  const raw = [];
  for (let i = 0; i < n; i++) raw.push(i === 0 ? 0 : 1 / (i + 1) ** 0.8);
  const rest = raw.reduce((a, b) => a + b, 0);
  raw[0] = n === 1 ? 1 : rest / 3;
  let acc = 0;
  return raw.map((w) => (acc += w));
}

/** File name of a message in cur/: unique, with S= (size) and W= (CRLF size) as Dovecot writes them. */
export function maildirName(stamp, unique, text, flags) {
  const size = Buffer.byteLength(text);
  let lf = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lf++;
  return `${Math.floor(stamp / 1000)}.M${unique}P1.bench,S=${size},W=${size + lf}:2,${flagLetters(flags)}`;
}

async function makeFolderDirs(root, name) {
  const dir = folderDir(root, name);
  for (const sub of ["cur", "new", "tmp"]) await mkdir(path.join(dir, sub), { recursive: true });
  if (name !== "INBOX") await writeFile(path.join(dir, "maildirfolder"), "");
}

/**
 * Writes `messages` messages over `folders` folders into every Maildir++ root in `roots` (identical
 * copies). Resolves to a summary.
 */
export async function writeCorpus({ roots, messages, folders, seed, now }) {
  const names = folderNames(folders);
  const weights = cumulativeWeights(names.length);
  for (const root of roots) for (const name of names) await makeFolderDirs(root, name);
  const rnd = prng(seed);
  const summary = {
    messages,
    folders: names.length,
    folderNames: names,
    bytes: 0,
    attachments: 0,
    attachmentBytes: 0,
    withinDays30: 0,
    perFolder: Object.fromEntries(names.map((n) => [n, 0])),
  };
  const pending = [];
  for (let i = 0; i < messages; i++) {
    const m = describe(rnd, i, names, weights, now, seed);
    const text = messageText(rnd, m);
    const file = maildirName(m.date, i, text, m.flags);
    summary.bytes += Buffer.byteLength(text);
    summary.perFolder[m.folder]++;
    if (m.attachment) {
      summary.attachments++;
      summary.attachmentBytes += Buffer.byteLength(text);
    }
    if (now - m.date < 30 * DAY_MS) summary.withinDays30++;
    const mtime = new Date(m.date);
    for (const root of roots) {
      const p = path.join(folderDir(root, m.folder), "cur", file);
      pending.push(writeFile(p, text).then(() => utimes(p, mtime, mtime)));
    }
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return summary;
}

/** A new message (as arriving mail) for the change sets: LF text, Message-ID, arrival date. */
export function newMessage(rnd, tag, now) {
  const date = now - 60_000 - rnd.int(3 * 3600_000);
  const messageId = `<bench.new.${tag}@tandem.bench>`;
  const text = messageText(rnd, {
    messageId,
    date,
    subject: `new ${words(rnd, 3)} ${tag}`,
    bodyBytes: Math.floor(rnd.logUniform(1_500, 19_000)),
    attachment: rnd() < 0.02 ? Math.floor(rnd.logUniform(200_000, 2_000_000) / 1.37) : 0,
  });
  return { messageId, date, text };
}
