import { parse, serialize } from "hono/utils/cookie";
import type { EdgeConfig } from "../config/index.ts";

export const TOKEN_HEADER = "x-edge-session-token";

/**
 * Browsers carry the token in the HttpOnly cookie; API clients in the
 * X-Edge-Session-Token header (send `X-Edge-Session-Token: new` to get a first
 * one). The two never mix: a header-mode request ignores the cookie, and a
 * cookie-mode response never exposes the token in a header that page scripts
 * could read.
 */
export type TokenMode = "cookie" | "header";

export interface PresentedToken {
  mode: TokenMode;
  token: string | undefined;
  /** Cookie mode: the token a login issued moments ago, kept apart from the main cookie (see successorCookie). */
  successor?: string;
}

/**
 * The cookie a login also sets, for ROTATION_GRACE_MS: a copy of the new token
 * under a name no other response writes. A response to a request that raced
 * the login may still replace the main cookie with a token of the pre-login
 * session; the browser then sends both, and the layer takes the successor.
 * It is no new credential: it holds exactly what the main cookie held.
 */
export function successorCookie(cookieName: string): string {
  return `${cookieName}.next`;
}

export function readPresentedToken(headers: Headers, cookieName: string): PresentedToken {
  const header = headers.get(TOKEN_HEADER);
  if (header !== null) {
    const token = header.trim();
    return { mode: "header", token: token && token.toLowerCase() !== "new" ? token : undefined };
  }
  const cookieHeader = headers.get("cookie");
  if (!cookieHeader) return { mode: "cookie", token: undefined };
  // Only the two cookies the layer reads are parsed (the successor is absent but for 30 s after a login).
  const name = successorCookie(cookieName);
  const successor = parse(cookieHeader, name)[name];
  return { mode: "cookie", token: parse(cookieHeader, cookieName)[cookieName], ...(successor ? { successor } : {}) };
}

/** `token` undefined clears the client's token (logout). */
export function writeToken(
  headers: Headers,
  mode: TokenMode,
  cfg: EdgeConfig,
  token: string | undefined,
  maxAge: number,
): void {
  if (mode === "header") {
    headers.set(TOKEN_HEADER, token ?? "");
    return;
  }
  const options = { httpOnly: true, secure: true, sameSite: "Lax", path: "/", maxAge: token ? maxAge : 0 } as const;
  headers.append("set-cookie", serialize(cfg.cookieName, token ?? "", options));
}

/** Cookie mode: after a login, the successor cookie (a copy of the new token, for the rotation grace); on logout, cleared. */
export function writeSuccessor(headers: Headers, cfg: EdgeConfig, token: string | undefined, maxAge: number): void {
  const options = { httpOnly: true, secure: true, sameSite: "Lax", path: "/", maxAge: token ? maxAge : 0 } as const;
  headers.append("set-cookie", serialize(successorCookie(cfg.cookieName), token ?? "", options));
}
