import { runCli } from "./cli/cli.js";

// File writes and fsyncs of concurrent copies run on libuv's pool; the default of 4 threads would
// cap them. Set before the pool's first use (it starts lazily).
process.env.UV_THREADPOOL_SIZE ??= "16";

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `tandem: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
