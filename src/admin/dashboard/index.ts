import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { EdgeError } from "../../errors.ts";
import { log } from "../../log.ts";
import {
  ADMIN_COOKIE,
  ADMIN_COOKIE_PATH,
  ADMIN_COOKIE_TTL,
  adminDisabledReason,
  isAdminToken,
  isSameOrigin,
  issueAdminCookie,
  requireSameOriginAction,
  verifyAdminCookie,
} from "../auth.ts";
import type { AdminApp } from "../openapi.ts";
import { VERSION } from "../version.ts";
import { assetNamed } from "./assets.ts";
import { dashboardPage, disabledPage, signInPage } from "./page.ts";

export const DASHBOARD_PATH = "/__edge/";

const HTML_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  // The page differs with the sign-in cookie; nothing in between may keep it.
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // Not no-referrer: with it, browsers send `Origin: null` on form posts, and sign-in could not prove its origin.
  "referrer-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
};

/**
 * app.route("/__edge", admin) joins "/" into "/__edge", without the slash, and
 * Hono matches trailing slashes strictly: an empty path parameter is how the
 * sub-app matches "/__edge/".
 */
const ROOT_WITH_SLASH = "/:root{(?:)}";

/**
 * The operator dashboard: its page, assets, sign-in and sign-out. Registered
 * before requireAdmin(): the page itself shows the sign-in form to whoever is
 * not signed in, and all of its data comes from the protected API.
 */
export function registerDashboard(admin: AdminApp): void {
  admin.get("/", (c) => c.redirect(DASHBOARD_PATH, 308));

  admin.get(ROOT_WITH_SLASH, async (c) => {
    const token = c.get("config").adminToken;
    if (!token) return c.body(disabledPage(adminDisabledReason(c.get("config"))), 503, HTML_HEADERS);
    const cookie = getCookie(c, ADMIN_COOKIE);
    const signedIn = cookie !== undefined && (await verifyAdminCookie(token, cookie));
    return c.body(signedIn ? dashboardPage(VERSION) : signInPage(), 200, HTML_HEADERS);
  });

  admin.get("/assets/:name", (c) => {
    const asset = assetNamed(c.req.param("name"));
    if (!asset) throw new EdgeError("ERR_NOT_FOUND", "no such dashboard asset", { status: 404 });
    return c.body(asset.body, 200, {
      "content-type": asset.type,
      "cache-control": "public, max-age=31536000, immutable",
      "x-content-type-options": "nosniff",
    });
  });

  admin.post(
    "/login",
    bodyLimit({ maxSize: 4096, onError: (c) => c.body(signInPage("That request is too large."), 413, HTML_HEADERS) }),
    async (c) => {
      const token = c.get("config").adminToken;
      if (!token) return c.body(disabledPage(adminDisabledReason(c.get("config"))), 503, HTML_HEADERS);
      // Login CSRF: a form on another site must not sign this browser in.
      if (!isSameOrigin(c)) {
        log("warn", "admin_login_refused", { code: "ERR_ADMIN_CSRF" });
        return c.body(signInPage("Sign in from this page: cross-origin sign-in is refused."), 403, HTML_HEADERS);
      }
      const form = await c.req.parseBody();
      const presented = typeof form.token === "string" ? form.token.trim() : "";
      if (!(await isAdminToken(token, presented))) {
        log("warn", "admin_login_failed", { code: "ERR_ADMIN_UNAUTHORIZED" });
        return c.body(signInPage("That is not the admin token."), 401, HTML_HEADERS);
      }
      setCookie(c, ADMIN_COOKIE, await issueAdminCookie(token), {
        path: ADMIN_COOKIE_PATH,
        httpOnly: true,
        secure: true,
        sameSite: "Strict",
        maxAge: ADMIN_COOKIE_TTL,
      });
      log("info", "admin_login", { ttl: ADMIN_COOKIE_TTL });
      return c.redirect(DASHBOARD_PATH, 303);
    },
  );

  admin.post("/logout", (c) => {
    requireSameOriginAction(c);
    deleteCookie(c, ADMIN_COOKIE, { path: ADMIN_COOKIE_PATH, secure: true, httpOnly: true, sameSite: "Strict" });
    return c.body(null, 204);
  });
}
