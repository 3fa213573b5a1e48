import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/cli.js";
import { EXIT } from "../../src/cli/exit.js";
import { VERSION } from "../../src/version.js";

const dir = mkdtempSync(join(tmpdir(), "tandem-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = join(dir, "good.toml");
writeFileSync(
  good,
  `[accounts.work.left]
type = "maildir"
path = "a"
[accounts.work.right]
type = "maildir"
path = "b"
[accounts.home.left]
type = "maildir"
path = "c"
[accounts.home.right]
type = "maildir"
path = "d"
`,
);
const bad = join(dir, "bad.toml");
writeFileSync(bad, '[accounts.work.left]\ntype = "imap"\nport = "abc"\n');

async function run(argv: string[], env: NodeJS.ProcessEnv = { HOME: dir }) {
  let out = "";
  let err = "";
  const code = await runCli(argv, { env, out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

describe("tandem CLI (in process)", () => {
  it("--version", async () => {
    const r = await run(["--version"]);
    expect(r).toEqual({
      code: EXIT.ok,
      out: `tandem ${VERSION} (${process.platform}-${process.arch}, node ${process.version})\n`,
      err: "",
    });
  });

  it("config check --config FILE: OK", async () => {
    const r = await run(["config", "check", "--config", good]);
    expect(r).toEqual({ code: EXIT.ok, out: `config OK: ${good} (2 accounts: work, home)\n`, err: "" });
  });

  it("config check: options may come first; $TANDEM_CONFIG is used", async () => {
    expect((await run(["--config", good, "config", "check"])).code).toBe(EXIT.ok);
    expect((await run(["config", "check"], { HOME: dir, TANDEM_CONFIG: good })).code).toBe(EXIT.ok);
  });

  it("config check: a bad file exits 2 with the ConfigError on stderr", async () => {
    const r = await run(["config", "check", "--config", bad]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.out).toBe("");
    expect(r.err).toContain(
      `${bad}:3: accounts.work.left.port: expected a number from 1 to 65535, got "abc"\n`,
    );
  });

  it("config check: a missing file exits 2", async () => {
    const r = await run(["config", "check"]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toContain(join(dir, ".config/tandem/config.toml"));
  });

  it.each([
    [["bogus"], /unknown command "bogus"/],
    [["config"], /unknown command "config" \(did you mean "config check"\?\)/],
    [["--bogus"], /unknown option --bogus/],
    [["config", "check", "--bogus"], /unknown option `--bogus`/],
    [["config", "check", "extra"], /unused args/i],
    [["config", "check", "--config"], /value is missing/],
  ])("usage error %j exits 2", async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toMatch(message);
  });
});
