// The print worker's code, bundled on its own by scripts/build.mjs and run with `eval` (see
// print-pool.ts): says it is ready, then prints the folder directories it is sent from the first
// on, each it can claim (the main thread claims from the last one down), each answered when done.
import { parentPort } from "node:worker_threads";
import { printDirSync } from "./dir-print.js";

const port = parentPort;
if (port) {
  port.on("message", ({ dirs, claims }: { dirs: string[]; claims: Int32Array }) => {
    for (let i = 0; i < dirs.length; i++) {
      // 0 → 1: this worker's; anything else: the main thread has it.
      if (Atomics.compareExchange(claims, i, 0, 1) !== 0) break;
      port.postMessage({ i, print: printDirSync(dirs[i]!) });
    }
    port.postMessage({ done: true });
  });
  port.postMessage({ ready: true });
}
