/** The Maildir print worker's code, bundled on its own (see print-worker.mjs). */
export function printWorkerBundle(): Promise<string>;
