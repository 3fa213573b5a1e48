import { type CAC, type Command, cac } from "cac";
import { registerConfigCheck } from "./commands/config-check.js";
import { type CliContext, isHidden, type RegisterCommand } from "./commands/context.js";
import { registerSelftest } from "./commands/selftest.js";
import { registerStatus } from "./commands/status.js";
import { registerSync } from "./commands/sync.js";
import { registerVerify } from "./commands/verify.js";
import { versionLine } from "./commands/version.js";
import { EXIT } from "./exit.js";

/**
 * Every command, one file each under ./commands/. To add one: write `commands/<name>.ts` exporting a
 * `RegisterCommand` whose action returns an exit code, and add it here. Order is the order in --help.
 */
const COMMANDS: RegisterCommand[] = [
  registerSync,
  registerVerify,
  registerStatus,
  registerConfigCheck,
  registerSelftest,
];

/** Streams given the EPIPE guard below (once each, however often runCli() runs in a process). */
const guarded = new WeakSet<NodeJS.WriteStream>();

const defaultContext = (): CliContext => {
  // A reader that went away (`tandem sync | head`) must not crash a run that is writing mail:
  // what it would have read is dropped, and the exit status still tells how the run went.
  // Whatever other listeners the stream has (a worker thread's output piped into it adds one).
  for (const stream of [process.stdout, process.stderr]) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") throw err;
    });
  }
  return {
    env: process.env,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
};

/** Runs the command line `argv` (without node and script) and returns the exit status. Never exits. */
export async function runCli(argv: string[], context: Partial<CliContext> = {}): Promise<number> {
  const ctx: CliContext = { ...defaultContext(), ...context };
  const cli = cac("tandem");
  cli.option("--config <file>", "Config file (default: $TANDEM_CONFIG, else ~/.config/tandem/config.toml)");
  cli.option("-h, --help", "Display this message");
  cli.option("-v, --version", "Display version number");
  cli.globalCommand.helpCallback = (sections) => [
    {
      body: `${versionLine()}\nTwo-way mail synchronizer: IMAP and Maildir, both ways, verified after every run`,
    },
    ...sections.slice(1),
  ];
  for (const register of COMMANDS) register(cli, ctx);

  const usageError = (message: string): number => {
    ctx.err(`tandem: ${message}\nRun "tandem --help" for usage.\n`);
    return EXIT.usage;
  };

  try {
    cli.parse(["node", "tandem", ...joinMultiWordCommands(argv, cli.commands)], { run: false });
    if (cli.options.version) {
      ctx.out(`${versionLine()}\n`);
      return EXIT.ok;
    }
    if (cli.options.help) {
      outputHelp(cli);
      return EXIT.ok;
    }
    const command = cli.matchedCommand;
    if (!command) {
      const unknown = Object.keys(cli.options).find(
        (name) => name !== "--" && !cli.globalCommand.hasOption(name),
      );
      if (unknown) return usageError(`unknown option ${unknown.length > 1 ? "--" : "-"}${unknown}`);
      const word = cli.args[0];
      if (word === undefined) {
        outputHelp(cli);
        return EXIT.usage;
      }
      const starts = cli.commands
        .filter((c) => !isHidden(c) && c.name.startsWith(`${word} `))
        .map((c) => c.name);
      return usageError(
        `unknown command "${word}"${starts.length ? ` (did you mean ${starts.map((s) => `"${s}"`).join(" or ")}?)` : ""}`,
      );
    }
    const result: unknown = await cli.runMatchedCommand();
    return typeof result === "number" ? result : EXIT.ok;
  } catch (err) {
    // cac reports unknown options, missing option values and extra arguments as CACError.
    if (err instanceof Error && err.name === "CACError") return usageError(lowerFirst(err.message));
    throw err;
  }
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** Global help without hidden commands; a matched command's own help otherwise. */
function outputHelp(cli: CAC): void {
  if (cli.matchedCommand) {
    cli.outputHelp();
    return;
  }
  const all = cli.commands;
  cli.commands = all.filter((c) => !isHidden(c));
  try {
    cli.outputHelp();
  } finally {
    cli.commands = all;
  }
}

/**
 * cac matches a command on a single argument, so `config check` arrives as two. Join the first
 * place the words of a multi-word command appear in a row (before `--`) into one argument.
 */
function joinMultiWordCommands(argv: string[], commands: Command[]): string[] {
  const end = argv.includes("--") ? argv.indexOf("--") : argv.length;
  for (let i = 0; i < end; i++) {
    if (argv[i]!.startsWith("-")) continue;
    for (const command of commands) {
      const words = command.name.split(" ");
      if (words.length > 1 && i + words.length <= end && words.every((w, j) => argv[i + j] === w)) {
        return [...argv.slice(0, i), command.name, ...argv.slice(i + words.length)];
      }
    }
  }
  return argv;
}
