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
