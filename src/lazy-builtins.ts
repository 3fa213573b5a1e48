// Built-in modules most runs never use, imported where they are needed (a password or token
// command, a conflict's question) instead of at every start (~4 ms for node:child_process).
// A module of ours rather than `import("node:child_process")`: the bundler turns an import of
// this file into a lazy require, which Node's single-executable build runs (it has no callback
// for a dynamic import of a built-in). The ES module bundle (Deno) still loads both at its start.
export { execFile } from "node:child_process";
export { createInterface } from "node:readline/promises";
