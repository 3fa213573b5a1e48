// The private Dovecot works: login, extensions, APPEND and read-back, imap_capability, TLS.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectImap, type DovecotServer, dovecotAvailable, startDovecot } from "../helpers/dovecot.js";

// In CI Dovecot is always installed (.ci/run sees to it): there a missing one is a failure, not a skip.
const skip = !dovecotAvailable() && !process.env.CI;
if (skip)
  console.warn(
    "test/imap/smoke.test.ts: SKIPPED, /usr/sbin/dovecot is not installed (apt-get install dovecot-imapd)",
  );

const MESSAGE = [
  "From: Alice <alice@example.org>",
  "To: Bob <bob@example.org>",
  "Subject: smoke =?utf-8?q?t=C3=A9st?=",
  "Date: Thu, 01 Jan 2026 10:00:00 +0000",
  "Message-ID: <smoke-1@example.org>",
  "MIME-Version: 1.0",
  "Content-Type: text/plain; charset=utf-8",
  "Content-Transfer-Encoding: 8bit",
  "",
  "Hello Bob,",
  "ünïcödé body, trailing spaces   ",
  ".",
  "Bye",
  "",
].join("\n");

describe.skipIf(skip)("private dovecot", () => {
  // Three servers, started and stopped side by side (a stop takes Dovecot about a second).
  let server: DovecotServer;
  let limited: DovecotServer;
  let secure: DovecotServer;
  beforeAll(async () => {
    [server, limited, secure] = await Promise.all([
      startDovecot(),
      startDovecot({ capabilities: "IMAP4rev1 LITERAL+ IDLE NAMESPACE CONDSTORE ENABLE" }),
      startDovecot({ tls: true }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), limited?.stop(), secure?.stop()]);
  });

  it("logs in, advertises CONDSTORE/QRESYNC/UIDPLUS, and returns an appended message byte for byte", async () => {
    const user = await server.addUser();
    const client = await connectImap(user);
    try {
      for (const cap of ["CONDSTORE", "QRESYNC", "UIDPLUS"])
        expect(client.capabilities.has(cap), cap).toBe(true);

      const raw = Buffer.from(MESSAGE, "utf8");
      const appended = await client.append("INBOX", raw, ["\\Seen"]);
      expect(appended).toBeTruthy();
      if (!appended) return;
      expect(appended.uid).toBeTypeOf("number");

      const lock = await client.getMailboxLock("INBOX");
      try {
        const msg = await client.fetchOne(String(appended.uid), { source: true, flags: true }, { uid: true });
        expect(msg).toBeTruthy();
        if (!msg) return;
        const expected = Buffer.from(MESSAGE.replace(/\r?\n/g, "\r\n"), "utf8");
        expect(msg.source?.equals(expected)).toBe(true);
        expect(msg.flags?.has("\\Seen")).toBe(true);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }

    // The message is on disk in the user's Maildir, and doveadm sees it too.
    const listed = await server.doveadm([
      "-f",
      "flow",
      "fetch",
      "-u",
      user.user,
      "uid",
      "mailbox",
      "INBOX",
      "all",
    ]);
    expect(listed).toMatch(/uid=1\b/);
  });

  it("gives each addUser a fresh account", async () => {
    const a = await server.addUser("same");
    const b = await server.addUser("same");
    expect(a.user).not.toBe(b.user);
    expect(a.maildir).not.toBe(b.maildir);
    const client = await connectImap(b);
    try {
      const status = await client.status("INBOX", { messages: true });
      expect(status).toMatchObject({ messages: 0 });
    } finally {
      await client.logout();
    }
  });

  it("advertises only what imap_capability says: no UIDPLUS", async () => {
    const client = await connectImap(await limited.addUser());
    try {
      expect(client.capabilities.has("UIDPLUS")).toBe(false);
      expect(client.capabilities.has("QRESYNC")).toBe(false);
      expect(client.capabilities.has("CONDSTORE")).toBe(true);
    } finally {
      await client.logout();
    }
  });

  it("with tls: verifies with the CA and refuses without it", async () => {
    expect(secure.caFile).toBeTruthy();
    const user = await secure.addUser();

    const client = await connectImap(user, { secure: true, ca: secure.caFile! });
    try {
      expect(client.secureConnection).toBe(true);
      expect(client.capabilities.has("QRESYNC")).toBe(true);
    } finally {
      await client.logout();
    }

    await expect(connectImap(user, { secure: true })).rejects.toThrow(/self[- ]signed|certificate/i);
  });
});
