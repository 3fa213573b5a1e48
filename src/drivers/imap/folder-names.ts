// Folder names: the driver speaks `/`-separated UTF-8 names, the server its own delimiter and
// namespace prefix. imapflow already decodes and encodes modified UTF-7 (or uses UTF-8 when the
// server has UTF8=ACCEPT enabled), so names here are always Unicode.
import { DriverError } from "../driver.js";

export interface Namespace {
  /** Personal namespace prefix, e.g. "" (Dovecot) or "INBOX." (Courier, Cyrus). */
  prefix: string;
  /** Hierarchy delimiter; "" for a flat server. */
  delimiter: string;
}

/**
 * The driver name of a listed server path, or an error text when the name cannot be represented
 * (a segment contains `/` while the server delimiter is something else).
 */
export function nameFromServerPath(
  path: string,
  delimiter: string,
  ns: Namespace,
): string | { refused: string } {
  if (path.toUpperCase() === "INBOX") return "INBOX";
  let rest = path;
  if (ns.prefix && rest.startsWith(ns.prefix) && rest.length > ns.prefix.length) {
    rest = rest.slice(ns.prefix.length);
  }
  const segments = delimiter ? rest.split(delimiter) : [rest];
  if (delimiter !== "/" && segments.some((s) => s.includes("/"))) {
    return {
      refused: `the server folder "${path}" has a "/" in its name, which tandem uses as the hierarchy separator`,
    };
  }
  if (segments[0]?.toUpperCase() === "INBOX") segments[0] = "INBOX";
  return segments.join("/");
}

/** The server path of a driver name. Refuses names the server could not store as given. */
export function serverPathFromName(name: string, ns: Namespace): string {
  const bad = (why: string): never => {
    throw new DriverError(`Cannot use folder name "${name}" on this server: ${why}`, {
      scope: "folder",
      code: "EBADNAME",
    });
  };
  if (!name) bad("the name is empty");
  if (name.toUpperCase() === "INBOX") return "INBOX";
  const segments = name.split("/");
  if (segments.some((s) => s === "")) bad("it has an empty path segment");
  if (/[\r\n\0]/.test(name)) bad("it contains a control character");
  if (ns.delimiter && ns.delimiter !== "/" && segments.some((s) => s.includes(ns.delimiter))) {
    bad(`a segment contains the server's hierarchy delimiter "${ns.delimiter}"`);
  }
  if (!ns.delimiter && segments.length > 1) bad("the server has no folder hierarchy");
  if (segments[0]?.toUpperCase() === "INBOX") segments[0] = "INBOX";
  const joined = segments.join(ns.delimiter || "/");
  if (segments[0] === "INBOX") return joined;
  return ns.prefix && !joined.startsWith(ns.prefix) ? ns.prefix + joined : joined;
}
