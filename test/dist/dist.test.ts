/**
 * The three shipped forms, as built by scripts/build.mjs (npm test builds first; this builds if dist/
 * is missing). Each must run with nothing beside it: no node_modules, no .wasm file, no environment.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VERSION } from "../../src/version.js";

const root = resolve(import.meta.dirname, "../..");
const dist = join(root, "dist");
const cjs = join(dist, "tandem.cjs");
const mjs = join(dist, "tandem.mjs");
const deno = join(root, "node_modules", ".bin", "deno");
const platform = `${process.platform}-${process.arch}`;

let tmp: string;
let exe: string;
let cwd: string;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The environment minus anything that could let a bundle find packages or a config. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ["NODE_PATH", "NODE_OPTIONS", "TANDEM_CONFIG", "TANDEM_STATE_DIR"]) delete env[key];
  return env;
}

beforeAll(() => {
  if (![cjs, mjs, join(dist, "tandem")].every((f) => existsSync(f))) {
    const r = spawnSync(process.execPath, [join(root, "scripts", "build.mjs")], {
      cwd: root,
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
  }
  tmp = mkdtempSync(join(tmpdir(), "tandem-dist-"));
  // The executable alone in a directory of its own; commands run from another empty directory.
  const bin = join(tmp, "bin");
  cwd = join(tmp, "cwd");
  mkdirSync(bin);
  mkdirSync(cwd);
  exe = join(bin, "tandem");
  copyFileSync(join(dist, "tandem"), exe);
  chmodSync(exe, 0o755);
  writeFileSync(
    join(tmp, "good.toml"),
    '[accounts.work.left]\ntype = "maildir"\npath = "a"\n[accounts.work.right]\ntype = "maildir"\npath = "b"\n',
  );
  writeFileSync(join(tmp, "bad.toml"), '[accounts.work.left]\ntype = "imap"\nport = "abc"\n');
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("dist/tandem (single executable)", () => {
  it("--version with an empty environment, from an empty directory", () => {
    expect(run(exe, ["--version"])).toEqual({
      code: 0,
      out: `tandem ${VERSION} (${platform}, node ${process.version})\n`,
      err: "",
    });
  });

  it("selftest: the embedded sql.js WebAssembly loads", () => {
    expect(run(exe, ["selftest"])).toEqual({ code: 0, out: "selftest ok\n", err: "" });
  });

  it("--help lists config check but not the hidden selftest", () => {
    const r = run(exe, ["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("config check");
    expect(r.out).not.toContain("selftest");
  });

  it("config check: exit 0 on a good file, 2 on a bad one", () => {
    const good = join(tmp, "good.toml");
    expect(run(exe, ["config", "check", "--config", good])).toEqual({
      code: 0,
      out: `config OK: ${good} (1 account: work)\n`,
      err: "",
    });
    const r = run(exe, ["config", "check", "--config", join(tmp, "bad.toml")]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      'bad.toml:3: accounts.work.left.port: expected a number from 1 to 65535, got "abc"',
    );
  });

  it("an unknown command exits 2", () => {
    expect(run(exe, ["frobnicate"]).code).toBe(2);
  });

  it("a password command runs (node:child_process, loaded only then), and its failure is named", () => {
    // The command fails before any connection is made: no server is needed. A module the
    // executable cannot load at that point would end in "internal error" instead.
    const config = join(tmp, "pwcmd.toml");
    writeFileSync(
      config,
      `[defaults]\nstateDir = "${join(tmp, "state")}"\n[accounts.work.left]\ntype = "imap"\nhost = "127.0.0.1"\nuser = "u"\npasswordCommand = "false"\n[accounts.work.right]\ntype = "maildir"\npath = "${join(tmp, "m")}"\n`,
    );
    const r = run(exe, ["sync", "--config", config]);
    expect(r.err).toContain("The password command (false) failed: exit status 1");
    expect(r.err).not.toContain("internal error");
  });
});

describe("dist/tandem.cjs (node)", () => {
  it("--version from an empty directory without NODE_PATH", () => {
    expect(run(process.execPath, [cjs, "--version"], cleanEnv())).toEqual({
      code: 0,
      out: `tandem ${VERSION} (${platform}, node ${process.version})\n`,
      err: "",
    });
  });

  it("selftest", () => {
    expect(run(process.execPath, [cjs, "selftest"], cleanEnv()).out).toBe("selftest ok\n");
  });
});

describe("dist/tandem.mjs (deno)", () => {
  it("--version", () => {
    const r = run(deno, ["run", "-A", mjs, "--version"], cleanEnv());
    expect(r.err).toBe("");
    expect(r.out).toMatch(
      new RegExp(`^tandem ${VERSION.replaceAll(".", "\\.")} \\(${platform}, deno 2\\.\\d+\\.\\d+\\)\\n$`),
    );
    expect(r.code).toBe(0);
  });

  it("selftest", () => {
    expect(run(deno, ["run", "-A", mjs, "selftest"], cleanEnv())).toEqual({
      code: 0,
      out: "selftest ok\n",
      err: "",
    });
  });

  it("config check with a bad file exits 2", () => {
    expect(
      run(deno, ["run", "-A", mjs, "config", "check", "--config", join(tmp, "bad.toml")], cleanEnv()).code,
    ).toBe(2);
  });
});
