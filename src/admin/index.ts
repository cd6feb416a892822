import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { bearerAuth } from "hono/bearer-auth";
import type { AppEnv } from "../app-env.ts";
import { EdgeError } from "../errors.ts";
import { invalidatePoolView, poolStub } from "../origins/index.ts";
import { drainView, originsView } from "./origins.ts";
import { DrainRequestSchema, DrainSchema, ErrorSchema, OriginIdParam, OriginsSchema, StatusSchema } from "./schemas.ts";

export const VERSION = "0.1.0";

const unauthorized = (message: string) => ({ error: { code: "ERR_ADMIN_UNAUTHORIZED", message } });
const json = <T>(schema: T, description: string) => ({ content: { "application/json": { schema } }, description });
const errors = {
  400: json(ErrorSchema, "Invalid input; the message names the field"),
  401: json(ErrorSchema, "Missing or wrong admin token"),
  404: json(ErrorSchema, "No such origin or session"),
};
const security = [{ bearer: [] }];

const statusRoute = createRoute({
  method: "get",
  path: "/status",
  summary: "Version, origins and signing keys",
  security,
  responses: { 200: json(StatusSchema, "Status"), 401: errors[401] },
});

const originsRoute = createRoute({
  method: "get",
  path: "/origins",
  summary: "Origins with health, ejection, live sessions and drain progress",
  security,
  responses: { 200: json(OriginsSchema, "The pool"), 401: errors[401] },
});

const drainRoute = createRoute({
  method: "post",
  path: "/origins/{id}/drain",
  summary: "Drain an origin: no new sessions; its sessions move after the deadline",
  security,
  request: {
    params: OriginIdParam,
    body: { content: { "application/json": { schema: DrainRequestSchema } }, required: false },
  },
  responses: { 200: json(DrainSchema, "The drain"), ...errors },
});

const undrainRoute = createRoute({
  method: "post",
  path: "/origins/{id}/undrain",
  summary: "Cancel a drain",
  security,
  request: { params: OriginIdParam },
  responses: { 200: json(OriginsSchema, "The pool after the change"), ...errors },
});

function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".") || "body";
}

/** The operator API. Every route but the OpenAPI document needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
export function adminRoutes(): OpenAPIHono<AppEnv> {
  const admin = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const issue = result.error.issues[0];
      const where = issue ? issuePath(issue.path) : "body";
      throw new EdgeError("ERR_INVALID_REQUEST", `${where}: ${issue?.message ?? "invalid"}`, { status: 400 });
    },
  });
  admin.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  admin.doc31("/openapi.json", { openapi: "3.1.0", info: { title: "edge-session operator API", version: VERSION } });

  admin.use(async function requireAdminToken(c, next) {
    if (c.req.path.endsWith("/openapi.json")) return next();
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

  admin.openapi(statusRoute, (c) => {
    const cfg = c.get("config");
    return c.json(
      {
        version: VERSION,
        environment: cfg.environment,
        origins: cfg.origins.map((o) => ({ id: o.id, url: o.url, region: o.region ?? null, weight: o.weight })),
        keys: {
          signing: cfg.keys.signer.kid,
          kids: [...cfg.keys.byKid.values()].map((k) => ({ kid: k.kid, alg: k.alg, published: Boolean(k.publicJwk) })),
          generated: cfg.keys.generated,
        },
      },
      200,
    );
  });

  admin.openapi(originsRoute, async (c) => {
    const cfg = c.get("config");
    const view = await poolStub(c.env, cfg).view(cfg.origins);
    return c.json({ origins: originsView(cfg, view) }, 200);
  });

  admin.openapi(drainRoute, async (c) => {
    const cfg = c.get("config");
    const { id } = c.req.valid("param");
    if (!cfg.origins.some((o) => o.id === id))
      throw new EdgeError("ERR_UNKNOWN_ORIGIN", `no origin "${id}" in ORIGINS`, { status: 404 });
    const body = c.req.valid("json") ?? {};
    const deadline = body.deadline
      ? Date.parse(body.deadline)
      : body.in !== undefined
        ? Date.now() + body.in * 1000
        : null;
    const pool = poolStub(c.env, cfg);
    await pool.view(cfg.origins);
    const drain = await pool.drain(id, deadline);
    if (!drain) throw new EdgeError("ERR_UNKNOWN_ORIGIN", `no origin "${id}" in the pool`, { status: 404 });
    invalidatePoolView(cfg);
    return c.json(drainView(drain), 200);
  });

  admin.openapi(undrainRoute, async (c) => {
    const cfg = c.get("config");
    const { id } = c.req.valid("param");
    if (!cfg.origins.some((o) => o.id === id))
      throw new EdgeError("ERR_UNKNOWN_ORIGIN", `no origin "${id}" in ORIGINS`, { status: 404 });
    const pool = poolStub(c.env, cfg);
    await pool.undrain(id);
    invalidatePoolView(cfg);
    return c.json({ origins: originsView(cfg, await pool.view(cfg.origins)) }, 200);
  });

  return admin;
}
