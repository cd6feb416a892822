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
}

export function readPresentedToken(headers: Headers, cookieName: string): PresentedToken {
  const header = headers.get(TOKEN_HEADER);
  if (header !== null) {
    const token = header.trim();
    return { mode: "header", token: token && token.toLowerCase() !== "new" ? token : undefined };
  }
  const cookieHeader = headers.get("cookie");
  return { mode: "cookie", token: cookieHeader ? parse(cookieHeader, cookieName)[cookieName] : undefined };
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
