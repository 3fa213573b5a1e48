// node:child_process on its own, imported where a command is run: most runs start none, and a
// static import would load the module at every start (~4 ms). A module of ours rather than
// `import("node:child_process")`: the bundler turns this into a lazy require, which Node's
// single-executable build runs (it has no callback for a dynamic import of a built-in).
export { execFile } from "node:child_process";
