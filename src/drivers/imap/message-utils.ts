// Byte-level helpers for APPEND: collecting the body, and what the server will make of it.
import type { FetchMessageObject } from "imapflow";
import type { MessageMeta } from "../../model/types.js";
import { normalizeFlags } from "../../model/types.js";
import { DriverError } from "../driver.js";
import { makeKey } from "./uid-set.js";

const SYSTEM_FLAGS = new Set(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]);

export function isSystemFlag(flag: string): boolean {
  return SYSTEM_FLAGS.has(flag);
}

/**
 * The flags one can send: never `\Recent` (server-owned), keywords only when the mailbox keeps
 * them, and only what PERMANENTFLAGS allows when it lists no `\*`.
 */
export function sendableFlags(flags: readonly string[], permanentFlags: Set<string> | undefined): string[] {
  const anyKeyword = !permanentFlags || permanentFlags.has("\\*");
  return normalizeFlags(
    flags.filter((f) => {
      if (!f || f.toLowerCase() === "\\recent") return false;
      if (f.startsWith("\\") && !isSystemFlag(f)) return false;
      return anyKeyword || !!permanentFlags?.has(f);
    }),
  );
}

/** A listing row as the engine sees it. */
export function toMeta(msg: FetchMessageObject, uidValidity: string): MessageMeta {
  const flags: string[] = [];
  for (const f of msg.flags ?? []) if (f.toLowerCase() !== "\\recent") flags.push(f);
  const d = msg.internalDate;
  const date = d instanceof Date ? d.getTime() : typeof d === "string" ? Date.parse(d) : Number.NaN;
  return { key: makeKey(uidValidity, msg.uid), flags: normalizeFlags(flags), size: msg.size ?? 0, date };
}

/**
 * Collects a streamed body into one Buffer. imapflow's append() takes only a Buffer (it announces
 * the literal size up front), so the message is held in memory once while it is appended.
 */
export async function collectBody(body: AsyncIterable<Uint8Array>, sizeHint?: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    chunks.push(buf);
    total += buf.length;
  }
  if (sizeHint !== undefined && sizeHint !== total) {
    throw new DriverError(`The message body has ${total} bytes, but its size was given as ${sizeHint}`, {
      scope: "message",
      code: "ESIZE",
    });
  }
  return Buffer.concat(chunks, total);
}

/** The size the server reports for these bytes: every bare LF counts as CRLF. */
export function crlfSize(body: Buffer): number {
  let bareLf = 0;
  for (let i = body.indexOf(10); i !== -1; i = body.indexOf(10, i + 1)) {
    if (i === 0 || body[i - 1] !== 13) bareLf++;
  }
  return body.length + bareLf;
}

/** The Message-ID header's value (first one, unfolded, trimmed), if the header section has one. */
export function messageIdOf(body: Buffer): string | undefined {
  let end = body.indexOf("\r\n\r\n");
  const endLf = body.indexOf("\n\n");
  if (end === -1 || (endLf !== -1 && endLf < end)) end = endLf;
  const header = body.subarray(0, end === -1 ? Math.min(body.length, 256 * 1024) : end).toString("latin1");
  const unfolded = header.replace(/\r?\n[ \t]+/g, " ");
  const match = /^message-id:[ \t]*(.*?)\s*$/im.exec(unfolded);
  const value = match?.[1]?.trim();
  return value ? value : undefined;
}
