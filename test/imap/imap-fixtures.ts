// Shared bits of the IMAP driver tests (not a test file itself).
import type { Store } from "../../src/drivers/driver.js";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import type { MessageMeta } from "../../src/model/types.js";
import { dovecotAvailable, type ImapUser } from "../helpers/dovecot.js";

export const skip = !dovecotAvailable() && !process.env.CI;

export function openStore(u: ImapUser, extra: { warnings?: string[]; debug?: string[] } = {}): Promise<Store> {
  return openImapStore({
    host: u.host,
    port: u.port,
    tls: "none",
    user: u.user,
    auth: { password: u.password },
    onWarning: (m) => extra.warnings?.push(m),
    ...(extra.debug ? { debug: (m: string) => extra.debug?.push(m) } : {}),
  });
}

export function message(id: string | null, body = "Hello.", eol = "\r\n"): Buffer {
  const lines = [
    "From: Alice <alice@example.org>",
    "To: Bob <bob@example.org>",
    `Subject: test ${id ?? "no id"}`,
    "Date: Thu, 01 Jan 2026 10:00:00 +0000",
    ...(id ? [`Message-ID: <${id}@example.org>`] : []),
    "",
    body,
    "",
  ];
  return Buffer.from(lines.join(eol), "utf8");
}

export async function* chunks(buf: Buffer, size = 1000): AsyncIterable<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

export function byKey(metas: MessageMeta[]): Map<string, MessageMeta> {
  return new Map(metas.map((m) => [m.key, m]));
}
