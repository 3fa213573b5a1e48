// Resolves the secret of an IMAP login: a literal password, or the output of a command.
import { DriverError } from "../driver.js";

export interface SecretOptions {
  password?: string;
  passwordCommand?: string;
  /** Run passwordCommand through `/bin/sh -c` instead of splitting it into argv. */
  passwordShell?: boolean;
  oauth2TokenCommand?: string;
}

export type ResolvedSecret = { password: string } | { accessToken: string };

const COMMAND_TIMEOUT_MS = 60_000;
const MAX_STDERR_CHARS = 500;

/**
 * Splits a command line on whitespace; single or double quotes group words (no escapes, no
 * expansion). Unbalanced quotes are an error.
 */
export function splitCommand(line: string): string[] {
  const argv: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) argv.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) {
    throw new DriverError(`The password command has an unbalanced ${quote} quote`, {
      scope: "store",
      code: "EAUTHCMD",
    });
  }
  if (inWord) argv.push(word);
  return argv;
}

/**
 * Runs the command once and returns its trimmed standard output. On failure the message names
 * the program, its exit status and its standard error, never its standard output.
 */
export async function runSecretCommand(command: string, shell: boolean, what: string): Promise<string> {
  const argv = shell ? ["/bin/sh", "-c", command] : splitCommand(command);
  const [file, ...args] = argv;
  if (!file) {
    throw new DriverError(`The ${what} is empty`, { scope: "store", code: "EAUTHCMD" });
  }
  const program = shell ? "/bin/sh -c …" : file;
  // Loaded here, not at startup: most runs never start a command (lazy-builtins.ts).
  const { execFile } = await import("../../lazy-builtins.js");
  return await new Promise<string>((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 1024 * 1024, encoding: "utf8", windowsHide: true },
      (error, stdout, stderr) => {
        const errText = String(stderr ?? "")
          .trim()
          .slice(0, MAX_STDERR_CHARS);
        if (error) {
          const e = error as NodeJS.ErrnoException & {
            code?: string | number;
            signal?: string | null;
            killed?: boolean;
          };
          let status: string;
          if (typeof e.code === "number") status = `exit status ${e.code}`;
          else if (e.code === "ENOENT") status = "program not found";
          else if (e.killed && e.signal)
            status = `killed by ${e.signal} (timeout ${COMMAND_TIMEOUT_MS / 1000} s?)`;
          else if (e.signal) status = `killed by ${e.signal}`;
          else status = String(e.code ?? "failed");
          reject(
            new DriverError(
              `The ${what} (${program}) failed: ${status}${errText ? `; stderr: ${errText}` : "; no stderr"}`,
              { scope: "store", code: "EAUTHCMD", retryable: false },
            ),
          );
          return;
        }
        const out = String(stdout ?? "").trim();
        if (!out) {
          reject(
            new DriverError(
              `The ${what} (${program}) printed nothing (exit status 0)${errText ? `; stderr: ${errText}` : ""}`,
              { scope: "store", code: "EAUTHCMD", retryable: false },
            ),
          );
          return;
        }
        resolve(out);
      },
    );
  });
}

/** Resolves the login secret; a command is run exactly once. */
export async function resolveSecret(opts: SecretOptions): Promise<ResolvedSecret> {
  if (opts.oauth2TokenCommand) {
    return {
      accessToken: await runSecretCommand(
        opts.oauth2TokenCommand,
        !!opts.passwordShell,
        "OAuth2 token command",
      ),
    };
  }
  if (opts.passwordCommand) {
    return {
      password: await runSecretCommand(opts.passwordCommand, !!opts.passwordShell, "password command"),
    };
  }
  if (opts.password !== undefined) return { password: opts.password };
  throw new DriverError("No password, password command or OAuth2 token command is configured", {
    scope: "store",
    code: "EAUTHCMD",
  });
}
