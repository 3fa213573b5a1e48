// Connecting: credentials, TLS, refusals; and resolving secrets from commands.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/dovecot/dovecot.mjs";
import { DriverError } from "../../src/drivers/driver.js";
import { resolveSecret, splitCommand } from "../../src/drivers/imap/credentials.js";
import { openImapStore } from "../../src/drivers/imap/imap-store.js";
import { type DovecotServer, dovecotAvailable, startDovecot } from "../helpers/dovecot.js";

const skip = !dovecotAvailable() && !process.env.CI;

describe.skipIf(skip)("connecting to Dovecot", () => {
  let plain: DovecotServer;
  let tls: DovecotServer;
  beforeAll(async () => {
    [plain, tls] = await Promise.all([startDovecot(), startDovecot({ tls: true })]);
  });
  afterAll(async () => {
    await Promise.all([plain?.stop(), tls?.stop()]);
  });

  it("wrong password → EAUTH, not retryable, no secret in the message", async () => {
    const u = await plain.addUser();
    const err = await openImapStore({
      host: u.host,
      port: u.port,
      tls: "none",
      user: u.user,
      auth: { password: "wrong-secret-xyz" },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ scope: "store", code: "EAUTH", retryable: false });
    expect((err as Error).message).toBe(
      `Cannot log in as ${u.user}@${u.host}: the server rejected the credentials; check user and password (or the output of passwordCommand / oauth2TokenCommand)`,
    );
    expect((err as Error).message).not.toContain("wrong-secret-xyz");
  });

  it("closed port → ECONNECT, retryable", async () => {
    const port = await freePort();
    const err = await openImapStore({
      host: "127.0.0.1",
      port,
      tls: "none",
      user: "me",
      auth: { password: "x" },
      connectTimeoutMs: 3000,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ scope: "store", code: "ECONNECT", retryable: true });
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it("starttls against a server that does not offer STARTTLS → ETLS, no plaintext login", async () => {
    const u = await plain.addUser();
    const err = await openImapStore({
      host: u.host,
      port: u.port,
      tls: "starttls",
      user: u.user,
      auth: { password: u.password },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ scope: "store", code: "ETLS" });
    expect((err as Error).message).toMatch(/STARTTLS/);
  });

  it("implicit TLS with the test CA works; without it → ETLS naming tlsCaFile", async () => {
    const u = await tls.addUser();
    const store = await openImapStore({
      host: u.host,
      port: u.port,
      tls: "implicit",
      tlsCaFile: tls.caFile!,
      user: u.user,
      auth: { password: u.password },
    });
    try {
      expect(store.label).toBe(`imaps://${u.user}@${u.host}:${u.port}`);
      expect((await store.listFolders()).map((f) => f.name)).toContain("INBOX");
    } finally {
      await store.close();
    }
    const err = await openImapStore({
      host: u.host,
      port: u.port,
      tls: "implicit",
      user: u.user,
      auth: { password: u.password },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ scope: "store", code: "ETLS", retryable: false });
    expect((err as Error).message).toContain("tlsCaFile");
  });

  it("plain connection to the TLS port fails without hanging", async () => {
    const u = await tls.addUser();
    const err = await openImapStore({
      host: u.host,
      port: u.port,
      tls: "none",
      user: u.user,
      auth: { password: u.password },
      connectTimeoutMs: 3000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).scope).toBe("store");
    expect((err as Error).message).not.toContain(u.password);
  });
});

describe("resolveSecret", () => {
  it("runs a password command once and trims its output", async () => {
    expect(await resolveSecret({ passwordCommand: "printf secret123" })).toEqual({ password: "secret123" });
    expect(await resolveSecret({ passwordCommand: "printf '%s\\n' 'two words'" })).toEqual({
      password: "two words",
    });
    expect(await resolveSecret({ passwordCommand: "echo $((40+2))", passwordShell: true })).toEqual({
      password: "42",
    });
    expect(await resolveSecret({ oauth2TokenCommand: "printf tok" })).toEqual({ accessToken: "tok" });
    expect(await resolveSecret({ password: "lit" })).toEqual({ password: "lit" });
  });

  it("a failing command → EAUTHCMD with exit status and stderr, never stdout", async () => {
    const err = await resolveSecret({
      passwordCommand: "echo topsecret; echo 'vault locked' >&2; exit 3",
      passwordShell: true,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ scope: "store", code: "EAUTHCMD" });
    const msg = (err as Error).message;
    expect(msg).toContain("exit status 3");
    expect(msg).toContain("vault locked");
    expect(msg).not.toContain("topsecret");
    const missing = await resolveSecret({ passwordCommand: "/nonexistent/tool get" }).catch(
      (e: unknown) => e,
    );
    expect(missing).toMatchObject({ code: "EAUTHCMD" });
    const empty = await resolveSecret({ passwordCommand: "true" }).catch((e: unknown) => e);
    expect(empty).toMatchObject({ code: "EAUTHCMD" });
  });

  it("splits argv on whitespace honouring quotes", () => {
    expect(splitCommand(`pass show "mail/my account"  'x y' z`)).toEqual([
      "pass",
      "show",
      "mail/my account",
      "x y",
      "z",
    ]);
    expect(() => splitCommand(`a 'b`)).toThrow(DriverError);
  });
});
