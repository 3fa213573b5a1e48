import { spawn } from "node:child_process";

export interface CommandResult {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Runs a command to its end without blocking the event loop (so concurrent tests overlap), in a
 * small environment (PATH and HOME only), killed after `timeoutMs`.
 */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd: string; home: string; timeoutMs: number },
): Promise<CommandResult> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: opts.home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, out, err });
    });
  });
}
