import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import type { AppEnv } from "../app-env.ts";
import { EdgeError } from "../errors.ts";

const unauthorized = (message: string) => ({ error: { code: "ERR_ADMIN_UNAUTHORIZED", message } });

/** Paths under /__edge/ that need no admin token. */
const PUBLIC = new Set(["/__edge/openapi.json"]);

/** `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time by Hono's bearerAuth. */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async function requireAdmin(c, next) {
    if (PUBLIC.has(c.req.path)) return next();
    const token = c.get("config").adminToken;
    if (!token)
      throw new EdgeError("ERR_ADMIN_DISABLED", "the operator API is disabled: ADMIN_TOKEN is not set", {
        status: 503,
        report: false,
      });
    return bearerAuth<AppEnv>({
      token,
      noAuthenticationHeader: { message: unauthorized("Authorization: Bearer <ADMIN_TOKEN> is required") },
      invalidAuthenticationHeader: { message: unauthorized("malformed Authorization header") },
      invalidToken: { message: unauthorized("invalid admin token") },
    })(c, next);
  };
}
