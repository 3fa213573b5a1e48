// Turns what imapflow and the network throw into DriverErrors with a scope and retryability.
import { DriverError, type ErrorScope } from "../driver.js";

/** The fields imapflow (and Node's socket layer) put on the errors they raise. */
interface RawError {
  message?: string;
  code?: string;
  authenticationFailed?: boolean;
  tlsFailed?: boolean;
  serverResponseCode?: string;
  responseText?: string;
  responseStatus?: string;
  mailboxMissing?: boolean;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "GREETING_TIMEOUT",
  "UPGRADE_TIMEOUT",
  "ETIMEOUT",
  "NoConnection",
  "EConnectionClosed",
  "ClosedAfterConnectText",
  "ClosedAfterConnectTLS",
  "StateLogout",
]);

/** Node/OpenSSL codes that mean "the peer's certificate is not trusted". */
const CERT_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REVOKED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_SIGNATURE_FAILURE",
]);

function raw(err: unknown): RawError {
  return typeof err === "object" && err !== null ? (err as RawError) : { message: String(err) };
}

export function isNetworkError(err: unknown): boolean {
  const e = raw(err);
  return !!e.code && NETWORK_CODES.has(e.code);
}

export interface ConnectContext {
  user: string;
  host: string;
  port: number;
  tls: "implicit" | "starttls" | "none";
}

/** Maps a failure of connect/login. Never includes a secret: only codes and server texts. */
export function connectError(err: unknown, ctx: ConnectContext): DriverError {
  if (err instanceof DriverError) return err;
  const e = raw(err);
  const where = `${ctx.host}:${ctx.port}`;
  if (e.authenticationFailed) {
    return new DriverError(
      `Cannot log in as ${ctx.user}@${ctx.host}: the server rejected the credentials; check user and password (or the output of passwordCommand / oauth2TokenCommand)`,
      {
        scope: "store",
        code: "EAUTH",
        retryable: false,
        cause: err,
      },
    );
  }
  if (e.code && CERT_CODES.has(e.code)) {
    return new DriverError(
      `The TLS certificate of ${where} is not trusted (${e.code}); if the server uses a private CA, set tlsCaFile to that CA's certificate`,
      { scope: "store", code: "ETLS", retryable: false, cause: err },
    );
  }
  if (e.tlsFailed || e.code === "STARTTLS_INJECTION") {
    const text = /does not support STARTTLS/i.test(e.message ?? "")
      ? `${where} does not offer STARTTLS, which tls = "starttls" requires; use tls = "implicit" on the server's TLS port, or tls = "none" only if a plaintext connection is really intended`
      : `TLS with ${where} failed: ${e.message ?? "unknown error"}${e.code ? ` (${e.code})` : ""}`;
    return new DriverError(text, { scope: "store", code: "ETLS", retryable: false, cause: err });
  }
  if (e.code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number/i.test(e.message ?? "")) {
    return new DriverError(
      `TLS with ${where} failed: the port does not speak TLS (${e.code ?? "wrong version number"}); check that tls = "${ctx.tls}" matches the port (993 is usually "implicit", 143 "starttls")`,
      { scope: "store", code: "ETLS", retryable: false, cause: err },
    );
  }
  if (e.code?.startsWith("ERR_SSL_") || e.code?.startsWith("ERR_TLS_")) {
    return new DriverError(`TLS with ${where} failed (${e.code})`, {
      scope: "store",
      code: "ETLS",
      retryable: false,
      cause: err,
    });
  }
  if (isNetworkError(err) || !e.code) {
    const reason = e.code === "ECONNREFUSED" ? "connection refused" : (e.message ?? "unknown error");
    return new DriverError(`Cannot connect to ${where}: ${reason}${e.code ? ` (${e.code})` : ""}`, {
      scope: "store",
      code: "ECONNECT",
      retryable: true,
      cause: err,
    });
  }
  return new DriverError(`Cannot connect to ${where}: ${e.message ?? "unknown error"} (${e.code})`, {
    scope: "store",
    code: "ECONNECT",
    retryable: true,
    cause: err,
  });
}

/**
 * Maps a failure of a command. A lost connection is store-scoped and retryable; a NO/BAD answer
 * gets the given scope.
 */
export function commandError(err: unknown, what: string, scope: ErrorScope, code = "EIMAP"): DriverError {
  if (err instanceof DriverError) return err;
  const e = raw(err);
  if (isNetworkError(err)) {
    return new DriverError(`${what}: the connection to the server was lost (${e.code})`, {
      scope: "store",
      code: "ECONNLOST",
      retryable: true,
      cause: err,
    });
  }
  const server = e.responseText
    ? `${e.responseStatus ?? "NO"} ${e.responseText}`
    : (e.message ?? String(err));
  return new DriverError(`${what}: ${server}`, { scope, code, retryable: false, cause: err });
}
