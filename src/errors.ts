import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * Every error the layer raises on purpose has a stable string code, so tests,
 * logs and clients can match on it rather than on a message (panva/jose style).
 */
export class EdgeError extends Error {
  readonly code: string;
  readonly status: ContentfulStatusCode;
  /** Whether an operator should hear about it (5xx-class problems), not just the client. */
  readonly report: boolean;
  readonly headers: Record<string, string>;

  constructor(
    code: string,
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
 * The session could not be read or changed durably right now (its object unreachable, a
 * migration not finished in time, too many forward pointers): a typed 503 the client can retry.
 */
export function sessionUnavailable(message: string, cause?: unknown): EdgeError {
  return new EdgeError("ERR_SESSION_UNAVAILABLE", message, {
    status: 503,
    headers: { "retry-after": "1" },
    ...(cause !== undefined ? { cause } : {}),
  });
}
