import { VERSION } from "../../version.js";

/** `tandem 0.1.0 (linux-x64, node v20.20.2)`, or `(linux-x64, deno 2.9.6)` under Deno. */
export function versionLine(): string {
  const deno = (globalThis as { Deno?: { version?: { deno?: string } } }).Deno?.version?.deno;
  const runtime = deno ? `deno ${deno}` : `node ${process.version}`;
  return `tandem ${VERSION} (${process.platform}-${process.arch}, ${runtime})`;
}
