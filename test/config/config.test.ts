import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  type AccountConfig,
  ConfigError,
  defaultStateDir,
  loadConfig,
  parseConfig,
  resolveConfigPath,
  splitCommandLine,
} from "../../src/config/config.js";

const env = { HOME: "/home/tester" };
const PATH = "/etc/tandem/config.toml";

function parse(text: string, e: NodeJS.ProcessEnv = env) {
  return parseConfig(text, { path: PATH, env: e });
}

function parseError(text: string, path = PATH): ConfigError {
  try {
    parseConfig(text, { path, env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const IMAP = `type = "imap"
host = "imap.example.com"
user = "me@example.com"
passwordCommand = "pass show mail/work"`;
const MAILDIR = `type = "maildir"
path = "~/Mail/work"`;

/** One account `work` with the given extra lines in each table. */
function account(opts: { account?: string; left?: string; right?: string; leftBase?: string } = {}): string {
  return [
    "[accounts.work]",
    opts.account ?? "",
    "[accounts.work.left]",
    opts.leftBase ?? IMAP,
    opts.left ?? "",
    "[accounts.work.right]",
    MAILDIR,
    opts.right ?? "",
  ].join("\n");
}

describe("parseConfig: valid files", () => {
  const full = `# tandem config
[defaults]
stateDir = "~/state"
maxDelete = 20
exclude = ["Trash"]

[accounts.work]
maxage = 30
conflict = "left"
rename = { "[Gmail]/Sent Mail" = "Sent", "[Gmail]/Drafts" = "Drafts" }

[accounts.work.left]
type = "imap"
host = "imap.example.com"
user = "me@example.com"
passwordCommand = "pass show 'mail/work'"

[accounts.work.right]
type = "maildir"
path = "~/Mail/work"

[accounts.home]
maxDelete = 80
exclude = []
include = ["INBOX", "Lists/%"]

[accounts.home.left]
type = "imap"
host = "mail.home.test"
port = 1143
tls = "starttls"
tlsCaFile = "ca.pem"
user = "u"
password = "pw"
connectTimeoutMs = 5000

[accounts.home.right]
type = "maildir"
path = "mail/home"
layout = "fs"

[accounts.plain.left]
type = "imap"
host = "localhost"
tls = "none"
user = "u"
oauth2TokenCommand = "get-token"
passwordShell = true
[accounts.plain.right]
type = "imap"
host = "other"
user = "v"
passwordCommand = "echo x | cat"
passwordShell = true
`;

  const config = parse(full);
  const byName = (name: string): AccountConfig => config.accounts.find((a) => a.name === name)!;

  it("keeps accounts in file order and the absolute path", () => {
    expect(config.path).toBe(PATH);
    expect(config.accounts.map((a) => a.name)).toEqual(["work", "home", "plain"]);
  });

  it("applies [defaults], lets accounts override, and fills built-in defaults", () => {
    expect(byName("work")).toEqual({
      name: "work",
      stateDir: "/home/tester/state",
      maxage: 30,
      conflict: "left",
      maxDelete: 20,
      include: ["*"],
      exclude: ["Trash"],
      rename: { "[Gmail]/Sent Mail": "Sent", "[Gmail]/Drafts": "Drafts" },
      left: {
        type: "imap",
        host: "imap.example.com",
        port: 993,
        tls: "implicit",
        user: "me@example.com",
        passwordCommand: "pass show 'mail/work'",
        passwordShell: false,
        connectTimeoutMs: 30_000,
        commandTimeoutMs: 120_000,
      },
      right: { type: "maildir", path: "/home/tester/Mail/work", layout: "maildir++" },
    });
    const home = byName("home");
    expect(home).toMatchObject({
      stateDir: "/home/tester/state",
      conflict: "keep",
      maxDelete: 80,
      include: ["INBOX", "Lists/%"],
      exclude: [],
      rename: {},
    });
    expect(home.maxage).toBeUndefined();
  });

  it("resolves store options: ports by tls, relative paths against the config directory", () => {
    expect(byName("home").left).toEqual({
      type: "imap",
      host: "mail.home.test",
      port: 1143,
      tls: "starttls",
      tlsCaFile: "/etc/tandem/ca.pem",
      user: "u",
      password: "pw",
      passwordShell: false,
      connectTimeoutMs: 5000,
      commandTimeoutMs: 120_000,
    });
    expect(byName("home").right).toEqual({ type: "maildir", path: "/etc/tandem/mail/home", layout: "fs" });
    expect(byName("plain").left).toMatchObject({ port: 143, tls: "none", oauth2TokenCommand: "get-token" });
    expect(byName("plain").right).toMatchObject({ type: "imap", port: 993, passwordShell: true });
  });

  it.each([
    ["$TANDEM_STATE_DIR", { HOME: "/h", TANDEM_STATE_DIR: "/srv/state", XDG_STATE_HOME: "/x" }, "/srv/state"],
    ["$XDG_STATE_HOME/tandem", { HOME: "/h", XDG_STATE_HOME: "/x" }, "/x/tandem"],
    ["~/.local/state/tandem", { HOME: "/h" }, "/h/.local/state/tandem"],
    ["relative XDG_STATE_HOME is ignored", { HOME: "/h", XDG_STATE_HOME: "rel" }, "/h/.local/state/tandem"],
  ])("state directory defaults to %s", (_name, e, expected) => {
    expect(parse(account(), e).accounts[0]!.stateDir).toBe(expected);
    expect(defaultStateDir(e)).toBe(expected);
  });

  it("an account's stateDir beats the default and the environment", () => {
    const config = parse(account({ account: 'stateDir = "/var/lib/tandem"' }), {
      HOME: "/h",
      TANDEM_STATE_DIR: "/s",
    });
    expect(config.accounts[0]!.stateDir).toBe("/var/lib/tandem");
  });

  it("accepts a left table written inline and dotted keys", () => {
    const config = parse(`[accounts.a]
left = { type = "maildir", path = "/m/a" }
right.type = "maildir"
right.path = "/m/b"
`);
    expect(config.accounts[0]!.left).toEqual({ type: "maildir", path: "/m/a", layout: "maildir++" });
    expect(config.accounts[0]!.right).toEqual({ type: "maildir", path: "/m/b", layout: "maildir++" });
  });
});

interface ErrorCase {
  name: string;
  toml: string;
  key?: string;
  line?: number;
  message: RegExp | string;
}

const errorCases: ErrorCase[] = [
  {
    name: "TOML syntax error gives line and column",
    toml: '[accounts.work]\nmaxage = 30\nconflict = "keep\n',
    line: 3,
    message: /^\/etc\/tandem\/config\.toml:3:\d+: TOML syntax error: /,
  },
  {
    name: "unknown key in a store, with a suggestion",
    toml: account({ left: 'hots = "typo.example.com"' }),
    key: "accounts.work.left.hots",
    line: 8,
    message: `${PATH}:8: accounts.work.left.hots: unknown key (did you mean "host"?)`,
  },
  {
    name: "unknown top-level table",
    toml: `${account()}\n[default]\nmaxage = 3\n`,
    key: "default",
    line: 13,
    message: /default: unknown key \(did you mean "defaults"\?\)/,
  },
  {
    name: "unknown account option",
    toml: account({ account: "maxAge = 3" }),
    key: "accounts.work.maxAge",
    line: 2,
    message: /unknown key \(did you mean "maxage"\?\)/,
  },
  {
    name: "wrong type names key, line and what was expected",
    toml: account({ left: 'port = "abc"' }),
    key: "accounts.work.left.port",
    line: 8,
    message: `${PATH}:8: accounts.work.left.port: expected a number from 1 to 65535, got "abc"`,
  },
  {
    name: "port out of range",
    toml: account({ left: "port = 70000" }),
    key: "accounts.work.left.port",
    message: /expected a number from 1 to 65535, got 70000$/,
  },
  {
    name: "bad enum value",
    toml: account({ account: 'conflict = "newest"' }),
    key: "accounts.work.conflict",
    line: 2,
    message: /expected one of "keep", "left", "right", "fail", "ask", got "newest"$/,
  },
  {
    name: "maxDelete above 100",
    toml: account({ account: "maxDelete = 150" }),
    message: /accounts\.work\.maxDelete: expected a percentage from 0 to 100, got 150$/,
  },
  {
    name: "maxage not a positive integer",
    toml: account({ account: "maxage = 0" }),
    message: /accounts\.work\.maxage: expected a positive whole number of days, got 0$/,
  },
  {
    name: "include must be an array",
    toml: account({ account: 'include = "*"' }),
    message: /accounts\.work\.include: expected an array of folder patterns/,
  },
  {
    name: "wrong type in [defaults]",
    toml: `[defaults]\nmaxDelete = "lots"\n${account()}`,
    key: "defaults.maxDelete",
    line: 2,
    message: /expected a percentage from 0 to 100, got "lots"/,
  },
  {
    name: "a type error inside an inline table points at its line",
    toml: `[accounts.work]\nright = { type = "maildir", path = "/m" }\nleft = { type = "maildir", path = 5 }\n`,
    key: "accounts.work.left.path",
    line: 3,
    message: /expected a directory path, got 5$/,
  },
  {
    name: "missing credentials",
    toml: account({ leftBase: 'type = "imap"\nhost = "h"\nuser = "u"' }),
    key: "accounts.work.left",
    line: 3,
    message:
      /accounts\.work\.left: no credentials: set one of password, passwordCommand, oauth2TokenCommand$/,
  },
  {
    name: "two credentials",
    toml: account({ left: 'password = "s3cr3t-pw"' }),
    key: "accounts.work.left.passwordCommand",
    message:
      /set only one of password, passwordCommand, oauth2TokenCommand \(found password and passwordCommand\)$/,
  },
  {
    name: "missing required key",
    toml: account({ leftBase: 'type = "imap"\nuser = "u"\npassword = "x"' }),
    key: "accounts.work.left.host",
    line: 3,
    message: /accounts\.work\.left\.host: required key is missing \(expected a host name\)$/,
  },
  {
    name: "missing store table",
    toml: '[accounts.work.left]\ntype = "maildir"\npath = "/m"\n',
    key: "accounts.work.right",
    line: 1,
    message: /accounts\.work\.right: required table is missing/,
  },
  {
    name: "unknown store type",
    toml: account({ leftBase: 'type = "pop3"\nhost = "h"' }),
    key: "accounts.work.left.type",
    line: 4,
    message: /expected "imap" or "maildir", got "pop3"$/,
  },
  {
    name: "rename not one-to-one",
    toml: account({ account: 'rename = { "Sent Items" = "Sent", "Sent Mail" = "Sent" }' }),
    key: 'accounts.work.rename."Sent Mail"',
    line: 2,
    message: /must be one-to-one: "Sent Items" and "Sent Mail" are both renamed to "Sent"$/,
  },
  {
    name: "account name with a space",
    toml: account().replaceAll("accounts.work", 'accounts."my work"'),
    key: 'accounts."my work"',
    line: 1,
    message: /invalid account name: use only letters, digits, "\.", "_" and "-"/,
  },
  {
    name: "account name ..",
    toml: account().replaceAll("accounts.work", 'accounts.".."'),
    key: 'accounts.".."',
    message: /invalid account name/,
  },
  {
    name: "no accounts",
    toml: '[defaults]\nconflict = "keep"\n',
    key: "accounts",
    message: /accounts: no accounts defined/,
  },
  {
    name: "unsplittable passwordCommand",
    toml: account({ leftBase: `type = "imap"\nhost = "h"\nuser = "u"\npasswordCommand = "pass 'unclosed"` }),
    key: "accounts.work.left.passwordCommand",
    line: 7,
    message: /cannot split into arguments: unterminated ' quote$/,
  },
];

describe("parseConfig: errors", () => {
  it.each(errorCases)("$name", ({ toml, key, line, message }) => {
    const err = parseError(toml);
    if (key !== undefined) expect(err.key).toBe(key);
    if (line !== undefined) expect(err.line).toBe(line);
    if (typeof message === "string") expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
  });

  it("uses the path as given in messages", () => {
    const err = parseError(account({ left: 'port = "abc"' }), "config.toml");
    expect(err.message).toBe(
      'config.toml:8: accounts.work.left.port: expected a number from 1 to 65535, got "abc"',
    );
  });

  it("reports every problem, one per line, in file order", () => {
    const err = parseError(account({ account: "maxDelete = 101", left: 'port = "x"\ncolour = 1' }));
    const lines = err.message.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/:2: accounts\.work\.maxDelete: /);
    expect(lines[1]).toMatch(/:8: accounts\.work\.left\.port: /);
    expect(lines[2]).toMatch(/:9: accounts\.work\.left\.colour: unknown key$/);
    expect(err.problems).toHaveLength(3);
    expect(err.line).toBe(2);
  });
});

describe("parseConfig: passwords never appear in messages", () => {
  const secret = "hunter2-Sup3rS3cret";
  const cases: [string, string][] = [
    ["wrong type", account({ leftBase: `type = "imap"\nhost = "h"\nuser = "u"\npassword = 734529811` })],
    ["two credentials", account({ left: `password = "${secret}"` })],
    ["password in a maildir store", account({ right: `password = "${secret}"` })],
    ["password beside other errors", account({ left: `password = "${secret}"\nport = "${secret}"` })],
    ["syntax error on the password line", account({ left: `password = "${secret}` })],
    [
      "password as an array",
      account({ leftBase: `type = "imap"\nhost = "h"\nuser = "u"\npassword = ["${secret}"]` }),
    ],
  ];
  it.each(cases)("%s", (_name, toml) => {
    const err = parseError(toml);
    expect(err.message).not.toContain(secret);
    expect(err.message).not.toContain("734529811");
    expect(JSON.stringify(err.problems)).not.toContain(secret);
  });
});

describe("loadConfig and the config path", () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "config.toml");
  writeFileSync(file, account());

  it.each([
    [
      "--config beats everything",
      { configPath: "/a.toml", env: { HOME: "/h", TANDEM_CONFIG: "/b.toml" } },
      "/a.toml",
    ],
    [
      "then $TANDEM_CONFIG",
      { env: { HOME: "/h", TANDEM_CONFIG: "/b.toml", XDG_CONFIG_HOME: "/x" } },
      "/b.toml",
    ],
    ["then $XDG_CONFIG_HOME", { env: { HOME: "/h", XDG_CONFIG_HOME: "/x" } }, "/x/tandem/config.toml"],
    ["then ~/.config", { env: { HOME: "/h" } }, "/h/.config/tandem/config.toml"],
    ["~ in --config", { configPath: "~/t.toml", env: { HOME: "/h" } }, "/h/t.toml"],
  ])("%s", (_name, opts, expected) => {
    expect(resolveConfigPath(opts)).toBe(expected);
  });

  it("loads the file named by $TANDEM_CONFIG and resolves paths against its directory", async () => {
    const config = await loadConfig({ env: { HOME: "/h", TANDEM_CONFIG: file } });
    expect(config.path).toBe(file);
    expect(config.accounts[0]!.right).toMatchObject({ path: "/h/Mail/work" });
  });

  it("a missing file is a ConfigError naming the path", async () => {
    const missing = join(dir, "nope.toml");
    await expect(loadConfig({ configPath: missing, env })).rejects.toThrow(ConfigError);
    await expect(loadConfig({ configPath: missing, env })).rejects.toThrow(
      `${missing}: config file not found`,
    );
  });

  it("a directory is a ConfigError", async () => {
    await expect(loadConfig({ configPath: dir, env })).rejects.toThrow(/is a directory/);
  });
});

describe("splitCommandLine", () => {
  it.each([
    ["pass show mail/work", ["pass", "show", "mail/work"]],
    ["  a\t b  ", ["a", "b"]],
    [`pass show 'My Mail/work'`, ["pass", "show", "My Mail/work"]],
    [`cmd "a \\"b\\" c" d`, ["cmd", 'a "b" c', "d"]],
    [`a\\ b c`, ["a b", "c"]],
    [`x '' y`, ["x", "", "y"]],
  ])("%s", (input, expected) => {
    expect(splitCommandLine(input)).toEqual(expected);
  });

  it.each(["a 'b", 'a "b', "a \\"])("rejects %s", (input) => {
    expect(() => splitCommandLine(input)).toThrow();
  });
});
