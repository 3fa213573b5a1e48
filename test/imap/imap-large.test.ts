// A 20 MB message is read back as a stream: memory does not grow by the message's size.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import { chownToMailUser, type DovecotServer, dovecotAvailable, startDovecot } from "../helpers/dovecot.js";

const skip = !dovecotAvailable() && !process.env.CI;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Writes a message of about `bytes` into the user's Maildir without holding it in memory. */
async function writeBigMessage(maildir: string, bytes: number): Promise<{ size: number; sha256: string }> {
  const file = join(maildir, "new", `1700000000.big.${process.pid}`);
  const out = createWriteStream(file);
  const hash = createHash("sha256");
  let size = 0;
  const put = async (buf: Buffer) => {
    hash.update(buf);
    size += buf.length;
    if (!out.write(buf)) await once(out, "drain");
  };
  await put(
    Buffer.from(
      "From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n" +
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    ),
  );
  let i = 0;
  while (size < bytes) {
    const lines: string[] = [];
    for (let j = 0; j < 1000; j++) {
      lines.push(createHash("sha256").update(String(i++)).digest("base64").padEnd(76, "A").slice(0, 76));
    }
    await put(Buffer.from(`${lines.join("\r\n")}\r\n`));
  }
  out.end();
  await once(out, "finish");
  await chownToMailUser(file);
  return { size, sha256: hash.digest("hex") };
}

describe.skipIf(skip)("IMAP driver: large messages", () => {
  let server: DovecotServer;
  beforeAll(async () => {
    server = await startDovecot();
  });
  afterAll(() => server?.stop());

  it("streams a 20 MB message: byte-exact, RSS does not grow by its size", async () => {
    const u = await server.addUser();
    const { size, sha256: expected } = await writeBigMessage(u.maildir, 20 * 1024 * 1024);
    const store = await openImapStore({
      host: u.host,
      port: u.port,
      tls: "none",
      user: u.user,
      auth: { password: u.password },
    });
    try {
      const folder = await store.openFolder("INBOX");
      const [meta] = await (async () => {
        const out = [];
        for await (const m of folder.list()) out.push(m);
        return out;
      })();
      expect(meta?.size).toBe(size);
      gc();
      const live = () => {
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const base = process.memoryUsage().rss;
      const baseLive = live();
      let peak = 0;
      let peakLive = 0;
      let n = 0;
      let total = 0;
      const hash = createHash("sha256");
      for await (const chunk of folder.read(meta!.key)) {
        hash.update(chunk);
        total += chunk.length;
        if (++n % 4 === 0) {
          gc();
          peak = Math.max(peak, process.memoryUsage().rss - base);
          peakLive = Math.max(peakLive, live() - baseLive);
        }
      }
      expect(total).toBe(size);
      expect(hash.digest("hex")).toBe(expected);
      expect(n).toBeGreaterThan(10); // it came in chunks
      // RSS can hide growth (freed pages stay mapped), so live memory is checked too.
      expect(peak).toBeLessThan(12 * 1024 * 1024);
      expect(peakLive).toBeLessThan(12 * 1024 * 1024);
    } finally {
      await store.close();
    }
  });
});
