// Imported first by main.ts, so that this runs before the rest of the bundle is evaluated.
import { prestartPrintWorker } from "./drivers/maildir/print-pool.js";

// File writes and fsyncs of concurrent copies run on libuv's pool; the default of 4 threads would
// cap them. Set before the pool's first use (it starts lazily).
process.env.UV_THREADPOOL_SIZE ??= "16";

// `tandem sync ...`: its first Maildir print batch finds the print worker already up. Not for the
// options that keep a run off the proof path, which has the only batch (engine/sync-account.ts,
// mayProve()), nor for any other command; options before the command start nothing either. A
// worker started in vain costs memory until it is ended (print-pool.ts, SPARE_MS).
const args = process.argv.slice(2);
const offProof = ["--maxage", "--dry-run", "--resync", "--folder"];
if (
  args.find((a) => !a.startsWith("-")) === "sync" &&
  !args.some((a) => offProof.some((o) => a === o || a.startsWith(`${o}=`)))
)
  prestartPrintWorker();
