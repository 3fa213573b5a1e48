// Every fs failure of the Maildir driver leaves through fsError: a DriverError that names the path,
// says how far it reaches (scope) and keeps the original error as `cause`.
import { DriverError, type ErrorScope } from "../driver.js";

/** Failures of the disk or file system itself: no later message or folder will do better. */
const STORE_WIDE_ON_WRITE = new Set(["ENOSPC", "EDQUOT", "EIO", "EROFS"]);
/** Transient conditions where the same call may succeed a moment later. */
const RETRYABLE = new Set(["EMFILE", "ENFILE", "EAGAIN", "EBUSY", "EINTR"]);

const REASONS: Record<string, string> = {
  ENOENT: "it does not exist",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EIO: "input/output error",
  EROFS: "read-only file system",
  EISDIR: "it is a directory",
  ENOTDIR: "a path component is not a directory",
  ENOTEMPTY: "it is not empty",
  EEXIST: "it already exists",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the name is too long",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
};

export function errnoOf(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoOf(err);
  return code !== undefined && codes.includes(code);
}

export interface FsErrorContext {
  /** What was attempted, as in `Cannot <action> "<path>"`, e.g. "write message file". */
  action: string;
  path: string;
  scope: ErrorScope;
  /** Writes widen disk-level failures (ENOSPC, EIO, …) to the whole store. */
  writing?: boolean;
}

export function fsError(err: unknown, ctx: FsErrorContext): DriverError {
  if (err instanceof DriverError) return err;
  const code = errnoOf(err) ?? "EDRIVER";
  const detail = REASONS[code] ?? (err instanceof Error ? err.message : String(err));
  const reason = code === "EDRIVER" ? detail : `${detail} (${code})`;
  const scope = ctx.writing && STORE_WIDE_ON_WRITE.has(code) ? "store" : ctx.scope;
  return new DriverError(`Cannot ${ctx.action} "${ctx.path}": ${reason}`, {
    scope,
    retryable: RETRYABLE.has(code),
    code,
    cause: err,
  });
}

export function closedError(label: string): DriverError {
  return new DriverError(`Cannot use ${label}: the store was closed`, { scope: "store", code: "ECLOSED" });
}
