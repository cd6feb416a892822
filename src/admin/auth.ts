import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { getCookie } from "hono/cookie";
import { base64url } from "jose";
import type { AppEnv } from "../app-env.ts";
import { EdgeError } from "../errors.ts";

const unauthorized = (message: string) => ({ error: { code: "ERR_ADMIN_UNAUTHORIZED", message } });

/** Paths under /__edge/ that need no admin token. */
const PUBLIC = new Set(["/__edge/openapi.json"]);

/**
 * The dashboard's sign-in cookie. Not `__Host-`: that prefix forces `Path=/`,
 * and the proxy passes every cookie but the affinity one to the origins, which
 * would then receive a live admin credential. `__Secure-` with `Path=/__edge/`
 * keeps it on the operator paths; its value is a MAC, so a cookie tossed in by
 * a sibling subdomain or an origin's Set-Cookie can only sign the operator out.
 */
export const ADMIN_COOKIE = "__Secure-edge-admin";
export const ADMIN_COOKIE_PATH = "/__edge/";
/** Seconds a sign-in lasts. The cookie is stateless: signing out deletes it from the browser only. */
export const ADMIN_COOKIE_TTL = 8 * 3600;
/** The header cookie-authenticated changes must carry: a cross-origin page cannot send it without a CORS preflight, which is never granted. */
export const CSRF_HEADER = "x-edge-admin";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
// Domain separation: a MAC made for the cookie is good for nothing else keyed by ADMIN_TOKEN.
const COOKIE_LABEL = "edge-session/admin-cookie/v1|";
const utf8 = (s: string) => new TextEncoder().encode(s);

/** Why the operator API is off; which rule the token breaks stays in the log (config_admin_invalid). */
export function adminDisabledReason(cfg: { adminTokenInvalid: boolean }): string {
  return cfg.adminTokenInvalid
    ? "ADMIN_TOKEN is set but invalid (see the config_admin_invalid log line); proxying is unaffected"
    : "ADMIN_TOKEN is not set";
}

/** The configured admin token; 503 when the operator API is disabled. */
export function adminTokenOf(c: Context<AppEnv>): string {
  const cfg = c.get("config");
  if (!cfg.adminToken)
    throw new EdgeError("ERR_ADMIN_DISABLED", `the operator API is disabled: ${adminDisabledReason(cfg)}`, {
      status: 503,
      report: false,
    });
  return cfg.adminToken;
}

let cachedKey: { token: string; key: Promise<CryptoKey> } | undefined;
function cookieKey(token: string): Promise<CryptoKey> {
  if (cachedKey?.token !== token) {
    const key = crypto.subtle.importKey("raw", utf8(token), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    cachedKey = { token, key };
  }
  return cachedKey.key;
}

/** `<exp>.<HMAC-SHA256(ADMIN_TOKEN, label|exp)>`: proves a sign-in until exp without carrying the token. */
export async function issueAdminCookie(token: string, now = Date.now()): Promise<string> {
  const exp = String(Math.floor(now / 1000) + ADMIN_COOKIE_TTL);
  const mac = await crypto.subtle.sign("HMAC", await cookieKey(token), utf8(COOKIE_LABEL + exp));
  return `${exp}.${base64url.encode(new Uint8Array(mac))}`;
}

/** Constant-time check (subtle.verify compares MACs in constant time); a new ADMIN_TOKEN voids every cookie. */
export async function verifyAdminCookie(token: string, value: string, now = Date.now()): Promise<boolean> {
  const m = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!m?.[1] || !m[2]) return false;
  const exp = Number(m[1]) * 1000;
  if (exp <= now || exp > now + (ADMIN_COOKIE_TTL + 60) * 1000) return false;
  return crypto.subtle.verify("HMAC", await cookieKey(token), base64url.decode(m[2]), utf8(COOKIE_LABEL + m[1]));
}

/** Whether `presented` is the admin token, compared in constant time over SHA-256 digests (equal lengths). */
export async function isAdminToken(token: string, presented: string): Promise<boolean> {
  const digest = (s: string) => crypto.subtle.digest("SHA-256", utf8(s));
  const [a, b] = await Promise.all([digest(token), digest(presented)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * A browser request from one of our own pages: `Sec-Fetch-Site: same-origin`
 * when the browser sends it, and an `Origin` equal to ours when it sends that.
 * A request with neither is refused: every browser that keeps our cookie sends
 * at least `Origin` on a POST.
 */
export function isSameOrigin(c: Context<AppEnv>): boolean {
  const site = c.req.header("sec-fetch-site");
  const origin = c.req.header("origin");
  if (site === undefined && origin === undefined) return false;
  if (site !== undefined && site !== "same-origin") return false;
  return origin === undefined || origin === new URL(c.req.url).origin;
}

/** The CSRF rule for cookie-authenticated changes: the custom header and a same-origin request. */
export function requireSameOriginAction(c: Context<AppEnv>): void {
  if (c.req.header(CSRF_HEADER) !== "1")
    throw new EdgeError("ERR_ADMIN_CSRF", `changes signed in by cookie need the ${CSRF_HEADER}: 1 header`, {
      status: 403,
    });
  if (!isSameOrigin(c))
    throw new EdgeError("ERR_ADMIN_CSRF", "changes signed in by cookie must come from the dashboard's own origin", {
      status: 403,
    });
}

/**
 * `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time by Hono's
 * bearerAuth), or, without an Authorization header, the dashboard's sign-in
 * cookie; a change made with the cookie must also pass the CSRF rule.
 */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async function requireAdmin(c, next) {
    if (PUBLIC.has(c.req.path)) return next();
    const token = adminTokenOf(c);
    const cookie = c.req.header("authorization") === undefined ? getCookie(c, ADMIN_COOKIE) : undefined;
    if (cookie !== undefined) {
      if (!(await verifyAdminCookie(token, cookie)))
        throw new EdgeError("ERR_ADMIN_UNAUTHORIZED", "the sign-in cookie is invalid or has expired: sign in again", {
          status: 401,
        });
      if (!SAFE_METHODS.has(c.req.method)) requireSameOriginAction(c);
      return next();
    }
    return bearerAuth<AppEnv>({
      token,
      noAuthenticationHeader: {
        message: unauthorized("Authorization: Bearer <ADMIN_TOKEN> is required (or sign in at /__edge/)"),
      },
      // Hono answers a malformed header with 400; for the operator it is one more way of not being signed in.
      invalidAuthenticationHeader: {
        message: () =>
          Response.json(unauthorized("malformed Authorization header: expected Bearer <ADMIN_TOKEN>"), { status: 401 }),
      },
      invalidToken: { message: unauthorized("invalid admin token") },
    })(c, next);
  };
}
