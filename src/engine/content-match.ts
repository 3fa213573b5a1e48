import type { Folder } from "../drivers/driver.js";
import type { ContentMatch } from "../model/plan.js";
import type { MessageMeta } from "../model/types.js";
import { digestOf } from "./digest.js";

/**
 * Finds new messages on both sides that are the same message (SYNC-MODEL.md step 5: "a message
 * added on both sides with the same content is paired, not doubled"; and a copy whose record an
 * interruption lost is found again). Candidates share a Message-ID (or, lacking one, an arrival
 * date within 2 s); a candidate pair matches only when the content digests are equal. Reads only
 * when both sides have new messages, so a first sync into an empty side costs nothing here.
 */
export async function matchByContent(
  left: Folder,
  right: Folder,
  leftNew: readonly MessageMeta[],
  rightNew: readonly MessageMeta[],
  opts: { trustMessageId?: boolean } = {},
): Promise<ContentMatch[]> {
  if (leftNew.length === 0 || rightNew.length === 0) return [];
  const lIds = await messageIds(left, leftNew);
  const rIds = await messageIds(right, rightNew);
  const byId = new Map<string, MessageMeta[]>();
  for (const m of rightNew) {
    const id = rIds.get(m.key) ?? "";
    const list = byId.get(id);
    if (list) list.push(m);
    else byId.set(id, [m]);
  }
  const digests = new Map<string, string>();
  const digestFor = async (folder: Folder, side: string, m: MessageMeta): Promise<string> => {
    const k = `${side}\u0000${m.key}`;
    let d = digests.get(k);
    if (d === undefined) {
      d = await digestOf(folder.read(m.key));
      digests.set(k, d);
    }
    return d;
  };
  const taken = new Set<string>();
  const out: ContentMatch[] = [];
  const leftCount = new Map<string, number>();
  for (const id of lIds.values()) leftCount.set(id, (leftCount.get(id) ?? 0) + 1);
  for (const l of leftNew) {
    const id = lIds.get(l.key) ?? "";
    const candidates = (byId.get(id) ?? []).filter(
      (r) => !taken.has(r.key) && (id !== "" || Math.abs(r.date - l.date) <= 2000),
    );
    if (candidates.length === 0) continue;
    if (opts.trustMessageId && id !== "" && candidates.length === 1 && leftCount.get(id) === 1) {
      // Resync: a Message-ID found once on each side pairs without downloading either body.
      taken.add(candidates[0]!.key);
      out.push({ left: l, right: candidates[0]!, digest: "" });
      continue;
    }
    const ld = await digestFor(left, "l", l);
    for (const r of candidates) {
      if ((await digestFor(right, "r", r)) === ld) {
        taken.add(r.key);
        out.push({ left: l, right: r, digest: ld });
        break;
      }
    }
  }
  return out;
}

async function messageIds(folder: Folder, msgs: readonly MessageMeta[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of msgs) {
    const header = await folder.readHeader(m.key);
    const id = findMessageId(Buffer.from(header).toString("latin1"));
    if (id) out.set(m.key, id);
  }
  return out;
}

/** The Message-ID header's value (unfolded, trimmed), or undefined. */
export function findMessageId(header: string): string | undefined {
  const m = /^message-id:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)/im.exec(header);
  const v = m?.[1]?.replace(/\r?\n[ \t]/g, " ").trim();
  return v ? v : undefined;
}
