// Finding an appended message without UIDPLUS (no APPENDUID): never a guess. Candidates are the
// UIDs at or above the folder's UIDNEXT as of opening (a safe lower bound: every later APPEND gets
// a higher UID), narrowed by Message-ID, then by exact size and arrival second. Exactly one must
// remain.
import type { ImapFlow } from "imapflow";
import { DriverError } from "../driver.js";
import { compactUidSet } from "./uid-set.js";

export interface AppendLookup {
  folder: string;
  /** Lowest UID the new message can have. */
  floor: number;
  /** The Message-ID of the appended message, if its header has one. */
  messageId: string | undefined;
  /** Its size as the server counts it (RFC822.SIZE: bare LFs count as CRLF). */
  size: number;
  /** The INTERNALDATE sent with APPEND (whole seconds). */
  date: Date;
  /** UIDs known to be other appends of this session. */
  exclude: ReadonlySet<number>;
}

export async function findAppendedUid(client: ImapFlow, q: AppendLookup): Promise<number> {
  const messageId = q.messageId;
  const query = messageId
    ? { uid: `${q.floor}:*`, header: { "Message-ID": messageId } }
    : { uid: `${q.floor}:*` };
  const found = await client.search(query, { uid: true });
  if (!Array.isArray(found)) {
    throw new DriverError(
      `The message was appended to "${q.folder}", but the search for its UID failed (the server has no UIDPLUS)`,
      { scope: "message", code: "EAPPENDUID" },
    );
  }
  // `n:*` always matches the highest UID, even below n.
  const candidates = found.filter((u) => u >= q.floor && !q.exclude.has(u));
  const size = q.size;
  const second = Math.floor(q.date.getTime() / 1000);
  const matches: number[] = [];
  if (candidates.length) {
    const rows = await client.fetchAll(
      compactUidSet(candidates),
      { uid: true, size: true, internalDate: true },
      { uid: true },
    );
    for (const row of rows) {
      const d =
        row.internalDate instanceof Date ? row.internalDate.getTime() : Date.parse(String(row.internalDate));
      if (row.size === size && Math.floor(d / 1000) === second && candidates.includes(row.uid)) {
        matches.push(row.uid);
      }
    }
  }
  const unique = [...new Set(matches)];
  if (unique.length !== 1) {
    throw new DriverError(
      `The message was appended to "${q.folder}", but its UID cannot be told (the server has no UIDPLUS): ` +
        `${unique.length} messages match ${messageId ? "its Message-ID, size and date" : "its size and date"}`,
      { scope: "message", code: "EAPPENDUID" },
    );
  }
  return unique[0]!;
}
