import { createRoute } from "@hono/zod-openapi";
import { EdgeError } from "../errors.ts";
import { poolStub, refreshPoolView } from "../origins/index.ts";
import { type AdminApp, errors, json, security } from "./openapi.ts";
import { drainView, originsView, statsView } from "./origins.ts";
import {
  DrainChangeSchema,
  DrainRequestSchema,
  OriginIdParam,
  OriginsChangeSchema,
  OriginsSchema,
  StatsSchema,
  StatusSchema,
} from "./schemas.ts";
import { VERSION } from "./version.ts";

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

const statsRoute = createRoute({
  method: "get",
  path: "/stats",
  summary: "Live sessions per origin and per region, and recent pool events (drains, ejections, health, re-pins)",
  security,
  responses: { 200: json(StatsSchema, "Stats"), 401: errors[401] },
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
  responses: { 200: json(DrainChangeSchema, "The drain"), 400: errors[400], 401: errors[401], 404: errors[404] },
});

const undrainRoute = createRoute({
  method: "post",
  path: "/origins/{id}/undrain",
  summary: "Cancel a drain",
  security,
  request: { params: OriginIdParam },
  responses: { 200: json(OriginsChangeSchema, "The pool after the change"), 401: errors[401], 404: errors[404] },
});

function requireOrigin(origins: { id: string }[], id: string): void {
  if (!origins.some((o) => o.id === id))
    throw new EdgeError("ERR_UNKNOWN_ORIGIN", `no origin "${id}" in ORIGINS`, { status: 404 });
}

export function registerPoolRoutes(admin: AdminApp): void {
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

  admin.openapi(statsRoute, async (c) => {
    const cfg = c.get("config");
    const view = await poolStub(c.env, cfg).view(cfg.origins);
    return c.json(statsView(cfg, view), 200);
  });

  admin.openapi(drainRoute, async (c) => {
    const cfg = c.get("config");
    const { id } = c.req.valid("param");
    requireOrigin(cfg.origins, id);
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
    await refreshPoolView(c.env, cfg);
    return c.json({ ...drainView(drain), propagatesWithinSeconds: cfg.pool.cacheSeconds }, 200);
  });

  admin.openapi(undrainRoute, async (c) => {
    const cfg = c.get("config");
    const { id } = c.req.valid("param");
    requireOrigin(cfg.origins, id);
    const pool = poolStub(c.env, cfg);
    await pool.undrain(id);
    const view = await refreshPoolView(c.env, cfg);
    return c.json({ origins: originsView(cfg, view), propagatesWithinSeconds: cfg.pool.cacheSeconds }, 200);
  });
}
