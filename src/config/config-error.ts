/** One thing wrong with a config file. `message` never contains a password. */
export interface ConfigProblem {
  /** Dotted key path, e.g. `accounts.work.left.port`. */
  key?: string;
  line?: number;
  column?: number;
  message: string;
}

/**
 * A config file that cannot be used. The message has one line per problem, compiler style:
 * `config.toml:12: accounts.work.left.port: expected a number from 1 to 65535, got "abc"`.
 * `key`, `line` and `column` describe the first problem.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly file: string;
  key?: string;
  line?: number;
  column?: number;
  readonly problems: ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[]) {
    super(problems.map((p) => formatProblem(file, p)).join("\n"));
    this.file = file;
    this.problems = problems;
    const first = problems[0];
    if (first?.key !== undefined) this.key = first.key;
    if (first?.line !== undefined) this.line = first.line;
    if (first?.column !== undefined) this.column = first.column;
  }
}

function formatProblem(file: string, p: ConfigProblem): string {
  let where = file;
  if (p.line !== undefined) where += `:${p.line}`;
  if (p.line !== undefined && p.column !== undefined) where += `:${p.column}`;
  return `${where}: ${p.key ? `${p.key}: ` : ""}${p.message}`;
}
