#!/usr/bin/env node
/**
 * `npm run demo`: a real sync between two Maildirs made from the sample messages in
 * scripts/demo/mail — no server needed. Runs the built binary (dist/tandem), changes both sides
 * the way a mail client would, syncs again, verifies, and shows both sides.
 * `--keep` leaves the demo directory in place for a look around.
 */
import { spawnSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const mail = join(root, "scripts", "demo", "mail");
const bin = join(root, "dist", "tandem");
const keep = process.argv.includes("--keep");
const dir = mkdtempSync(join(tmpdir(), "tandem-demo-"));
const left = join(dir, "left");
const right = join(dir, "right");
let n = 0;

function deliver(maildir, file, flags = "") {
  for (const sub of ["cur", "new", "tmp"]) mkdirSync(join(maildir, sub), { recursive: true });
  const name = `${1_793_000_000 + ++n}.demo${n}.localhost`;
  const target = flags ? join(maildir, "cur", `${name}:2,${flags}`) : join(maildir, "new", name);
  writeFileSync(target, readFileSync(join(mail, file)));
  const when = Date.now() / 1000 - 86_400 * (10 - n);
  utimesSync(target, when, when);
}

function tandem(...args) {
  console.log(`\n$ tandem ${args.join(" ")}`);
  const r = spawnSync(bin, [...args, "--config", join(dir, "config.toml")], { stdio: "inherit" });
  console.log(`(exit status ${r.status})`);
  return r.status;
}

function show(label, maildir) {
  console.log(`\n${label} (${maildir}):`);
  for (const sub of ["new", "cur"]) {
    for (const f of readdirSync(join(maildir, sub)).sort()) {
      const text = readFileSync(join(maildir, sub, f), "utf8");
      const subject = /^Subject: (.*)$/m.exec(text)?.[1]?.trim() ?? "(no subject)";
      const flags = f.includes(":2,") ? f.slice(f.indexOf(":2,") + 3) : "";
      console.log(`  ${sub}/  ${flags.padEnd(3)} ${subject}`);
    }
  }
}

function findFile(maildir, subject) {
  for (const sub of ["new", "cur"]) {
    for (const f of readdirSync(join(maildir, sub))) {
      if (readFileSync(join(maildir, sub, f), "utf8").includes(`Subject: ${subject}`))
        return join(maildir, sub, f);
    }
  }
  throw new Error(`demo: no message "${subject}" in ${maildir}`);
}

writeFileSync(
  join(dir, "config.toml"),
  `# Written by the demo: two local Maildirs, kept in step both ways.
[defaults]
stateDir = ${JSON.stringify(join(dir, "state"))}

[accounts.demo]
conflict = "keep"

[accounts.demo.left]
type = "maildir"
path = ${JSON.stringify(left)}

[accounts.demo.right]
type = "maildir"
path = ${JSON.stringify(right)}
`,
);
for (const f of ["01-welcome.eml", "02-bare-lf.eml", "03-eight-bit.eml", "04-no-message-id.eml"])
  deliver(left, f);
deliver(left, "05-attachment.eml", "S");
deliver(right, "06-from-the-right.eml", "F");
// The same message already on both sides: paired by content, not copied twice.
deliver(right, "01-welcome.eml");

console.log(`tandem demo in ${dir}`);
show("left before", left);
show("right before", right);
let status = tandem("sync", "demo");

console.log(
  "\nNow a mail client changes both sides: reads a message on the left, deletes one and receives one on the right.",
);
const read = findFile(left, "Bare LF line endings");
renameSync(read, join(left, "cur", `${read.split("/").pop().split(":2,")[0]}:2,S`));
unlinkSync(findFile(right, "No Message-ID here"));
deliver(right, "07-later.eml");

status ||= tandem("sync", "demo");
status ||= tandem("verify", "demo");
tandem("status", "demo");
show("left after", left);
show("right after", right);
if (keep) console.log(`\nLeft in place: ${dir}`);
else rmSync(dir, { recursive: true, force: true });
process.exit(status);
