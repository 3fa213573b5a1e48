// node:readline/promises on its own, imported at a conflict's first question (see exec-file.ts
// in drivers/imap for why a module of ours).
export { createInterface } from "node:readline/promises";
