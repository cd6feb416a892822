import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * Every ERR_* code the layer answers or logs: one vocabulary, each documented
 * in the README's Errors section (a test holds the two together). A code that
 * is not listed here does not compile as an EdgeError.
 */
export const ERROR_CODES = [
  // Answered to clients.
  "ERR_CONFIG",
  "ERR_INTERNAL",
  "ERR_NOT_FOUND",
  "ERR_SESSION_RATE_LIMITED",
  "ERR_SESSION_UNAVAILABLE",
  "ERR_SESSION_ENDED",
  "ERR_NO_ORIGIN",
  "ERR_ORIGIN_UNREACHABLE",
  "ERR_ORIGIN_TIMEOUT",
  "ERR_LEARNED_SESSION_GONE",
  "ERR_DOCUMENT_UNAUTHORIZED",
  // Token refusals (logged as token_rejected; the status in strict mode).
  "ERR_TOKEN_TOO_LARGE",
  "ERR_TOKEN_MALFORMED",
  "ERR_TOKEN_ALG",
  "ERR_TOKEN_UNSUPPORTED",
  "ERR_TOKEN_KID",
  "ERR_TOKEN_SIGNATURE",
  "ERR_TOKEN_EXPIRED",
  "ERR_TOKEN_CLAIMS",
  "ERR_TOKEN_BINDING",
  // The operator API.
  "ERR_ADMIN_UNAUTHORIZED",
  "ERR_ADMIN_DISABLED",
  "ERR_ADMIN_CSRF",
  "ERR_INVALID_REQUEST",
  "ERR_PAYLOAD_TOO_LARGE",
  "ERR_UNSUPPORTED_MEDIA_TYPE",
  "ERR_UNKNOWN_ORIGIN",
  "ERR_UNKNOWN_SESSION",
  "ERR_ALREADY_THERE",
  "ERR_SESSION_MOVED",
  "ERR_JURISDICTION",
  "ERR_NOT_MIGRATING",
  "ERR_MIGRATION_ABORTED",
  "ERR_FAULT_INJECTION_DISABLED",
  // An origin's directives refused (logged as origin_directive_rejected; the client is not told).
  "ERR_SET_TOO_LARGE",
  "ERR_SET_INVALID_JSON",
  "ERR_SET_NOT_OBJECT",
  "ERR_SET_TOO_DEEP",
  "ERR_SET_IF_VERSION_INVALID",
  "ERR_LOGIN_TOO_LARGE",
  "ERR_LOGIN_INVALID",
  "ERR_LOGIN_CLAIMS_TOO_LARGE",
  "ERR_LOGIN_TOO_DEEP",
  "ERR_VERSION_CONFLICT",
  "ERR_SESSION_TOO_LARGE",
  "ERR_SESSION_TOO_MANY_KEYS",
  "ERR_SESSION_TOO_DEEP",
  // Why a session object could not be reached (logged as session_object_unavailable).
  "ERR_SESSION_TIMEOUT",
  "ERR_SESSION_OBJECT_FAILED",
  "ERR_FAULT_INJECTED",
  // A snapshot refused on restore (logged as snapshot_refused).
  "ERR_SNAPSHOT_MALFORMED",
  "ERR_SNAPSHOT_FORMAT",
  "ERR_SNAPSHOT_CORRUPT",
  "ERR_SNAPSHOT_WRONG_KEY",
  "ERR_SNAPSHOT_MISMATCH",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Every error the layer raises on purpose has a stable string code, so tests,
 * logs and clients can match on it rather than on a message (panva/jose style).
 */
export class EdgeError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  /** Whether an operator should hear about it (5xx-class problems), not just the client. */
  readonly report: boolean;
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      status?: ContentfulStatusCode;
      report?: boolean;
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "EdgeError";
    this.code = code;
    this.status = options.status ?? 500;
    this.report = options.report ?? this.status >= 500;
    this.headers = options.headers ?? {};
  }

  toResponse(): Response {
    return new Response(JSON.stringify({ error: { code: this.code, message: this.message } }), {
      status: this.status,
      headers: { "content-type": "application/json; charset=utf-8", ...this.headers },
    });
  }
}

/**
 * A session that exists but cannot be reached right now (its object is down or
 * slow, its forward pointers run past the hop limit, its store is unreachable):
 * a 503 the client may retry, never a 500 and never a silent success.
 */
export function sessionUnavailable(message: string, cause?: unknown, retryAfterSeconds = 1): EdgeError {
  return new EdgeError("ERR_SESSION_UNAVAILABLE", message, {
    status: 503,
    headers: { "retry-after": String(retryAfterSeconds) },
    ...(cause !== undefined ? { cause } : {}),
  });
}
