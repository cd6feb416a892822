/** Every refusal of the package, with a stable code (and the HTTP status an origin would answer with). */
export type EdgeSessionErrorCode =
  /** The request carries no valid X-Edge-Session (absent, forged, expired, another deployment's). */
  | "ERR_EDGE_SESSION_REQUIRED"
  /** The header left the document out and the layer would not or could not give it: nothing to read or write over. */
  | "ERR_DOCUMENT_UNAVAILABLE"
  /** The session changed since this request's header was signed: reading or writing it now would be blind. */
  | "ERR_DOCUMENT_STALE"
  /** The merge patch (or login), encoded, is larger than the layer accepts (MAX_PATCH_BYTES). */
  | "ERR_PATCH_TOO_LARGE"
  /** Not a JSON object, or not JSON at all (a function, a bigint, a cycle). */
  | "ERR_PATCH_INVALID"
  /** set() or login() after logout() in the same response: logout always wins at the layer. */
  | "ERR_LOGGED_OUT"
  /** The response headers have already been sent: a change can no longer reach the layer. */
  | "ERR_HEADERS_SENT";

const STATUS: Record<EdgeSessionErrorCode, number> = {
  ERR_EDGE_SESSION_REQUIRED: 401,
  ERR_DOCUMENT_UNAVAILABLE: 503,
  ERR_DOCUMENT_STALE: 409,
  ERR_PATCH_TOO_LARGE: 500,
  ERR_PATCH_INVALID: 500,
  ERR_LOGGED_OUT: 500,
  ERR_HEADERS_SENT: 500,
};

export class EdgeSessionError extends Error {
  readonly code: EdgeSessionErrorCode;
  /** What to answer the client with; Express and Fastify read `status` / `statusCode` from an error. */
  readonly status: number;
  readonly statusCode: number;
  /** Express's default error handler shows `message` for 4xx only when this is true. */
  readonly expose: boolean;

  constructor(code: EdgeSessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EdgeSessionError";
    this.code = code;
    this.status = STATUS[code];
    this.statusCode = this.status;
    this.expose = this.status < 500;
  }

  /** The body every edge-session error has: `{"error":{"code","message"}}`. */
  toJSON(): { error: { code: EdgeSessionErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
