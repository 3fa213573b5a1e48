// Imported first by main.ts, so that this runs before the rest of the bundle is evaluated.
import { prestartPrintWorker } from "./drivers/maildir/print-pool.js";

// File writes and fsyncs of concurrent copies run on libuv's pool; the default of 4 threads would
// cap them. Set before the pool's first use (it starts lazily).
process.env.UV_THREADPOOL_SIZE ??= "16";

// `tandem sync ...`: its first Maildir print batch finds the print worker already up. Any other
// command, or options before the command, start nothing (a spare worker is harmless, not free).
if (process.argv.slice(2).find((a) => !a.startsWith("-")) === "sync") prestartPrintWorker();
