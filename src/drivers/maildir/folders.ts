// Folder names ↔ directories, for both layouts, and the name-safety rules.
//
// Invariant: every directory this module hands out lies inside the Maildir root. Names are checked
// component by component and the resolved path is checked again against the root.
//
//   layout      INBOX      folder "A/B"
//   maildir++   <root>     <root>/.A.B      (Dovecot; `.` separates, so a component cannot hold one)
//   fs          <root>     <root>/A/B       (cur, new, tmp cannot be component names)
import type { Dirent } from "node:fs";
import { readdir } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { DriverError, type FolderInfo } from "../driver.js";
import { isErrno } from "./errors.js";

export type Layout = "maildir++" | "fs";
export const INBOX = "INBOX";
export const MAILDIR_SUBDIRS = ["cur", "new", "tmp"] as const;

function badName(name: string, why: string): DriverError {
  return new DriverError(`Cannot use folder ${JSON.stringify(name)}: ${why}`, {
    scope: "folder",
    code: "EBADNAME",
  });
}

/** Splits a folder name into path components, refusing anything unsafe for `layout`. */
export function folderComponents(name: string, layout: Layout): string[] {
  if (name === "") throw badName(name, "the name is empty");
  if (name.startsWith("/")) throw badName(name, "it would escape the Maildir root");
  // C0 and C1 control characters, including NUL, CR and LF.
  if (/[\x00-\x1f\x7f-\x9f]/.test(name)) throw badName(name, "it contains a control character");
  if (name.includes("\\")) throw badName(name, "it contains a backslash");
  const parts = name.split("/");
  for (const part of parts) {
    if (part === "." || part === "..") throw badName(name, "it would escape the Maildir root");
    if (part === "") throw badName(name, "it has an empty component");
    if (part.startsWith(".")) throw badName(name, `its component "${part}" starts with "."`);
    if (layout === "maildir++" && part.includes(".")) {
      throw badName(name, `"." separates folders in the Maildir++ layout and cannot be part of "${part}"`);
    }
    if (layout === "fs" && (MAILDIR_SUBDIRS as readonly string[]).includes(part)) {
      throw badName(name, `"${part}" is a Maildir subdirectory name`);
    }
  }
  return parts;
}

/** The directory of folder `name` under `root` (absolute, resolved). */
export function folderDir(root: string, layout: Layout, name: string): string {
  if (name === INBOX) return root;
  const parts = folderComponents(name, layout);
  const dir = layout === "maildir++" ? join(root, `.${parts.join(".")}`) : join(root, ...parts);
  const rel = relative(root, resolve(dir));
  if (rel === "" || rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel)) {
    throw badName(name, "it would escape the Maildir root");
  }
  return resolve(dir);
}

/** Names of `name`'s ancestors, outermost first (`A/B/C` → `A`, `A/B`). */
export function parentNames(name: string): string[] {
  const parts = name.split("/");
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, "ENOENT", "ENOTDIR")) return [];
    throw err;
  }
}

/** A directory is a Maildir folder when it has at least one of cur/, new/, tmp/. */
export async function isMaildir(dir: string): Promise<boolean> {
  const names = new Set((await entries(dir)).filter((e) => e.isDirectory()).map((e) => e.name));
  return MAILDIR_SUBDIRS.some((s) => names.has(s));
}

function validName(name: string, layout: Layout): boolean {
  try {
    folderComponents(name, layout);
    return true;
  } catch {
    return false;
  }
}

const MAX_DEPTH = 64;

/**
 * Every folder under `root`, INBOX first, then by name. Ancestors that are not folders themselves
 * are reported as `noselect`. Directories whose names we could not use are skipped with a warning.
 */
export async function scanFolders(
  root: string,
  layout: Layout,
  warn: (msg: string) => void,
): Promise<FolderInfo[]> {
  const found = new Set<string>();
  if (layout === "maildir++") {
    for (const e of await entries(root)) {
      if (!e.isDirectory() || !e.name.startsWith(".") || e.name === "." || e.name === "..") continue;
      if (!(await isMaildir(join(root, e.name)))) continue;
      const name = e.name.slice(1).split(".").join("/");
      if (name === INBOX || !validName(name, layout)) {
        warn(`Skipping directory "${join(root, e.name)}": it does not map to a usable folder name`);
        continue;
      }
      found.add(name);
    }
  } else {
    const walk = async (dir: string, prefix: string[]): Promise<void> => {
      if (prefix.length >= MAX_DEPTH) return;
      for (const e of await entries(dir)) {
        // Symbolic links are not followed: they could lead outside the root or into a loop.
        if (!e.isDirectory() || e.name.startsWith(".")) continue;
        if ((MAILDIR_SUBDIRS as readonly string[]).includes(e.name)) continue;
        const path = join(dir, e.name);
        const parts = [...prefix, e.name];
        const name = parts.join("/");
        if (!validName(name, layout)) {
          warn(`Skipping directory "${path}": it does not map to a usable folder name`);
          continue;
        }
        if (await isMaildir(path)) {
          if (name === INBOX) warn(`Skipping directory "${path}": INBOX is the Maildir root itself`);
          else found.add(name);
        }
        await walk(path, parts);
      }
    };
    await walk(root, []);
  }
  const out: FolderInfo[] = [];
  if (await isMaildir(root)) out.push({ name: INBOX });
  const parents = new Set<string>();
  for (const name of found) {
    for (const p of parentNames(name)) if (!found.has(p) && p !== INBOX) parents.add(p);
  }
  const rest = [...found].map((name) => ({ name }) as FolderInfo);
  for (const p of parents) rest.push({ name: p, noselect: true });
  rest.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [...out, ...rest];
}
