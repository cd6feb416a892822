import { HTTPException } from "hono/http-exception";
import { EdgeError, type ErrorCode } from "../errors.ts";

/**
 * Hono's own refusals (a malformed JSON body, an unsupported media type, a
 * body over a limit) are HTTPExceptions whose default body is plain text. The
 * operator API promises JSON with a documented code for every error, so they
 * are mapped here, in one place, by status.
 */
const CODES: Record<number, ErrorCode> = {
  400: "ERR_INVALID_REQUEST",
  401: "ERR_ADMIN_UNAUTHORIZED",
  413: "ERR_PAYLOAD_TOO_LARGE",
  415: "ERR_UNSUPPORTED_MEDIA_TYPE",
};

const MESSAGES: Record<number, string> = {
  400: "malformed request",
  401: "unauthorized",
  413: "the request body is too large",
  415: "unsupported media type: send Content-Type: application/json",
};

export function fromHttpException(err: HTTPException): EdgeError {
  const status = err.status;
  const code = CODES[status] ?? (status >= 500 ? "ERR_INTERNAL" : "ERR_INVALID_REQUEST");
  // Hono's messages ("Malformed JSON in request body") are fine to show; its 415 says only "Unsupported Media Type".
  const message = status === 415 || !err.message ? (MESSAGES[status] ?? "request refused") : err.message;
  const headers: Record<string, string> = {};
  const challenge = err.res?.headers.get("www-authenticate");
  if (challenge) headers["www-authenticate"] = challenge;
  return new EdgeError(code, message, { status, report: status >= 500, headers, cause: err });
}

export { HTTPException };
