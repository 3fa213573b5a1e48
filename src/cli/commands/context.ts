import type { CAC, Command } from "cac";

/** What a command may touch besides its options: the environment and the two output streams. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  /** Writes to standard output as is (add your own "\n"). */
  out(text: string): void;
  /** Writes to standard error as is (add your own "\n"). */
  err(text: string): void;
}

/**
 * A command file exports one of these. It registers its command on `cli`; the action returns an
 * exit code (`EXIT.*` from ../exit.js), which `runCli` returns. Multi-word names such as
 * `config check` are allowed. Global options (`--config <file>`) arrive in the options object.
 */
export type RegisterCommand = (cli: CAC, ctx: CliContext) => Command;

/** Options every command receives. */
export interface GlobalOptions {
  /** `--config FILE`; undefined when not given. */
  config?: string;
}

/** `--config` as one string (the last one wins when given twice). */
export function configOption(options: { config?: unknown }): string | undefined {
  const value = Array.isArray(options.config) ? options.config.at(-1) : options.config;
  return typeof value === "string" && value !== "" ? value : undefined;
}

const hiddenCommands = new WeakSet<Command>();

/** Keeps a command out of `--help` (it still runs). */
export function hidden(command: Command): Command {
  hiddenCommands.add(command);
  return command;
}

export function isHidden(command: Command): boolean {
  return hiddenCommands.has(command);
}
