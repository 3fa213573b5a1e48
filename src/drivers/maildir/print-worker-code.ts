/**
 * Placeholder for the print worker's code (print-worker.ts bundled on its own). scripts/build.mjs
 * replaces this whole module in the bundles with one that returns that code as a string; from
 * source (vitest, tsc) there is none, unless a test sets it. Keep the exports in step with the
 * plugin in scripts/build.mjs.
 */
let code: string | undefined;

export function printWorkerCode(): string | undefined {
  return code;
}

/** For tests running from source: the worker's code, bundled by the test. */
export function setPrintWorkerCode(c: string | undefined): void {
  code = c;
}
