import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import type { AppEnv } from "../app-env.ts";
import { EdgeError } from "../errors.ts";

export const VERSION = "0.1.0";

const unauthorized = (message: string) => ({ error: { code: "ERR_ADMIN_UNAUTHORIZED", message } });

/** The operator API. Every route needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
export function adminRoutes(): Hono<AppEnv> {
  const admin = new Hono<AppEnv>();

  admin.use(async function requireAdminToken(c, next) {
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
  });

  admin.get("/status", (c) => {
    const cfg = c.get("config");
    return c.json({
      version: VERSION,
      environment: cfg.environment,
      origins: cfg.origins.map((o) => ({ id: o.id, url: o.url, region: o.region ?? null, weight: o.weight })),
      keys: {
        signing: cfg.keys.signer.kid,
        kids: [...cfg.keys.byKid.values()].map((k) => ({ kid: k.kid, alg: k.alg, published: Boolean(k.publicJwk) })),
        generated: cfg.keys.generated,
      },
    });
  });

  return admin;
}
