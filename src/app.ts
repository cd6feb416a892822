import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { clientFingerprint, limitNewSessions } from "./abuse/index.ts";
import { adminRoutes } from "./admin/index.ts";
import type { AppEnv } from "./app-env.ts";
import { loadConfig } from "./config/index.ts";
import { EdgeError } from "./errors.ts";
import { log } from "./log.ts";
import { poolView } from "./origins/index.ts";
import { DOCUMENT_PATH, sessionDocument } from "./proxy/document.ts";
import { clientResponse, newSessionFor, readPresentedToken } from "./proxy/index.ts";
import type { Placement } from "./proxy/route.ts";
import {
  applyOriginDirectives,
  clientRegion,
  fallbackOrFail,
  forward,
  jurisdictionFor,
  place,
  type RequestScope,
  runtimeFor,
  sessionFor,
} from "./proxy/steps.ts";
import { objectCaller } from "./replication/failover.ts";
import type { LiveSession } from "./session/index.ts";

export const JWKS_PATH = "/.well-known/edge-session/jwks.json";

/**
 * The request path, top-down (DESIGN.md §1): token → session → origin →
 * forward → the origin's directives → the client's response. The steps live in
 * src/proxy/steps.ts.
 */
async function proxy(c: Context<AppEnv>): Promise<Response> {
  const cfg = c.get("config");
  const request = c.req.raw;
  const view = await poolView(c.env, cfg);
  const x: RequestScope = {
    env: c.env,
    cfg,
    rt: runtimeFor(cfg),
    request,
    region: clientRegion(request, cfg),
    view,
    waitUntil: (p) => c.executionCtx.waitUntil(p),
    call: objectCaller(c.env, cfg, view?.faults ?? []),
    binding: await clientFingerprint(request, cfg),
  };

  const presented = readPresentedToken(request.headers, cfg.cookieName);
  const found = await sessionFor(x, presented);
  let session: LiveSession;
  let placement: Placement;
  if ("sid" in found) {
    ({ session, placement } = await place(x, found));
  } else {
    if (found.refused && cfg.strictTokens)
      throw new EdgeError(found.refused.code, `session token refused: ${found.refused.message}`, {
        status: 401,
        report: false,
      });
    await limitNewSessions(c.env, request);
    const origin = x.rt.router.pick(x.view, x.region);
    placement = origin ? { origin, fallback: false } : fallbackOrFail(cfg, "no origin can take new sessions");
    session = newSessionFor(origin?.id ?? placement.origin.id, x.region, found.refused, jurisdictionFor(request, cfg));
  }

  if (x.binding) session = { ...session, cb: x.binding };
  const forwarded = await forward(x, session, placement);
  const applied = await applyOriginDirectives(x, forwarded.session, forwarded.upstream);
  // Whatever session the client keeps (a rotated one included), its token carries this client's binding.
  const kept = applied && x.binding ? { ...applied, cb: x.binding } : applied;
  return clientResponse(cfg, forwarded.upstream, presented.mode, kept);
}

function onError(err: Error, c: Context<AppEnv>): Response {
  if (err instanceof EdgeError) {
    if (err.report)
      log("error", "request_failed", {
        code: err.code,
        message: err.message,
        cause: String(err.cause ?? ""),
        path: c.req.path,
      });
    return err.toResponse();
  }
  if (err instanceof HTTPException) return err.getResponse();
  log("error", "request_crashed", { code: "ERR_INTERNAL", message: err.message, stack: err.stack, path: c.req.path });
  return new EdgeError("ERR_INTERNAL", "internal error").toResponse();
}

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(async function config(c, next) {
    c.set("config", await loadConfig(c.env));
    await next();
  });
  // Origins cache the key set; five minutes, so a key published before it signs is seen in time (see docs/keys.md).
  app.get(JWKS_PATH, (c) => c.json(c.get("config").keys.jwks, 200, { "cache-control": "public, max-age=300" }));
  // For origins, not clients: the full document behind a forwarded header that had to leave it out.
  app.get(DOCUMENT_PATH, async (c) => {
    const cfg = c.get("config");
    const doc = await sessionDocument(c.env, cfg, runtimeFor(cfg).signer, c.req.raw);
    return c.json(doc, 200, { "cache-control": "no-store" });
  });
  app.route("/__edge", adminRoutes());
  // The layer's own prefixes never reach an origin: a mistyped operator path (with its admin
  // token or cookie) must be a 404 here, not a request forwarded upstream.
  for (const reserved of ["/__edge", "/__edge/*", "/.well-known/edge-session/*"])
    app.all(reserved, (c) => {
      throw new EdgeError("ERR_NOT_FOUND", `no such path: ${c.req.path}`, { status: 404, report: false });
    });
  app.all("*", proxy);
  app.onError(onError);
  return app;
}
