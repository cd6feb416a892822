import { Hono } from "hono";
import { getPath } from "hono/utils/url";
import { clientFingerprint, limitNewSessions } from "./abuse/index.ts";
import { ADMIN_BASE, adminRoutes, fromHttpException, HTTPException } from "./admin/index.ts";
import type { AppEnv } from "./app-env.ts";
import { ConfigError, type EdgeConfig, loadConfig } from "./config/index.ts";
import { holdLongLived, longLivedRequest } from "./connections/index.ts";
import { EdgeError, sessionUnavailable } from "./errors.ts";
import { log } from "./log.ts";
import { explainResponse, explainSession, Trace, timed } from "./observe/index.ts";
import { currentPoolView, poolView } from "./origins/index.ts";
import { DOCUMENT_PATH, sessionDocument } from "./proxy/document.ts";
import { clientResponse, errorResponse, newSessionFor, readPresentedToken } from "./proxy/index.ts";
import {
  followLearnedId,
  learnedGone,
  learnedIdsOf,
  learnedOrigin,
  routeByLearnedIds,
  sealLearnedIds,
  withOriginIds,
} from "./proxy/learned.ts";
import { keepLongLivedOffDrains, stuckOnDrain } from "./proxy/long-lived.ts";
import type { Placement } from "./proxy/route.ts";
import {
  applyOriginDirectives,
  clientRegion,
  fallbackOrFail,
  forward,
  homeRegion,
  jurisdictionFor,
  place,
  type RequestScope,
  runtimeFor,
  sessionFor,
} from "./proxy/steps.ts";
import { ObjectUnavailable, objectCaller } from "./replication/failover.ts";
import type { LiveSession } from "./session/index.ts";

export const JWKS_PATH = "/.well-known/edge-session/jwks.json";

/**
 * The request path, top-down (DESIGN.md §1): token → session → origin →
 * forward → the origin's directives → the client's response. The steps live in
 * src/proxy/steps.ts.
 */
async function proxy(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  cfg: EdgeConfig,
  trace: Trace,
): Promise<Response> {
  const started = await poolView(env, cfg);
  const x: RequestScope = {
    env,
    cfg,
    rt: runtimeFor(cfg),
    request,
    region: clientRegion(request, cfg),
    // Read again at every decision: an operator change made in this isolate mid-request counts at once.
    get view() {
      return currentPoolView(cfg) ?? started;
    },
    waitUntil: (p) => ctx.waitUntil(p),
    call: objectCaller(env, cfg, () => x.view?.faults ?? []),
    binding: await clientFingerprint(request, cfg),
    longLived: longLivedRequest(request.method, request.headers),
    trace,
  };

  const presented = readPresentedToken(request.headers, cfg.cookieName);
  const learnedIds = await learnedIdsOf(x);
  const found = await timed(trace, "session", () => sessionFor(x, presented));
  const learned = routeByLearnedIds(x, learnedIds, "sid" in found ? found.sid : undefined);
  if (learned.kind === "gone") return learnedGone(learned);
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
    // Not new visitors: a request that raced a login with the pre-login token, and a cookie-less client
    // (MCP) that shows a learned id this layer sealed.
    if (found.rotatedAt === undefined && learned.kind !== "bound") await limitNewSessions(env, request);
    const origin = learnedOrigin(x, learned) ?? x.rt.router.pick(x.view, x.region);
    placement = origin ? { origin, fallback: false } : fallbackOrFail(cfg, "no origin can take new sessions");
    const jur = jurisdictionFor(request, cfg);
    session = newSessionFor(origin?.id ?? placement.origin.id, homeRegion(x, jur), found.refused, jur);
    if (found.rotatedAt !== undefined) session = { ...session, ephemeral: true };
  }
  explainSession(env, trace, session, "sid" in found ? undefined : found.refused);
  ({ session, placement } = await followLearnedId(x, learned, session, placement));
  ({ session, placement } = await keepLongLivedOffDrains(x, learned, session, placement));

  if (x.binding) session = { ...session, cb: x.binding };
  const forwarded = await timed(trace, "origin", () => forward(withOriginIds(x, learned), session, placement));
  const applied = await timed(trace, "session", () => applyOriginDirectives(x, forwarded.session, forwarded.upstream));
  if (!applied.ok) {
    // Not durable, so not acknowledged: the origin's answer is dropped, the client told to retry.
    await forwarded.upstream.body?.cancel().catch(() => {});
    return errorResponse(cfg, applied.error, presented.mode, applied.loggedOut);
  }
  // Whatever session the client keeps (a rotated one included), its token carries this client's binding.
  const kept = applied.session && x.binding ? { ...applied.session, cb: x.binding } : applied.session;
  const upstream = await sealLearnedIds(x, learned, forwarded.upstream, forwarded.session.origin, kept, "sid" in found);
  const response = await clientResponse(cfg, upstream, presented.mode, kept);
  return holdLongLived(
    env,
    cfg,
    request.method,
    forwarded.session.origin,
    response,
    stuckOnDrain(x, learned, placement),
  );
}

/** Every failure as the client sees it: a typed JSON error; a 500 only for a bug, and logged. */
function errorAnswer(err: unknown, path: string): Response {
  if (err instanceof HTTPException) return errorAnswer(fromHttpException(err), path);
  if (err instanceof EdgeError) {
    if (err.report)
      log("error", "request_failed", {
        code: err.code,
        // The client's body says only ERR_CONFIG; the log says what is wrong.
        message: err instanceof ConfigError ? err.detail : err.message,
        cause: String(err.cause ?? ""),
        path,
      });
    return err.toResponse();
  }
  // A session object that could not be reached, wherever it escaped from: a typed 503, never a 500.
  if (err instanceof ObjectUnavailable)
    return errorAnswer(sessionUnavailable(`the session could not be reached (${err.code}); try again`, err), path);
  const e = err instanceof Error ? err : new Error(String(err));
  log("error", "request_crashed", { code: "ERR_INTERNAL", message: e.message, stack: e.stack, path });
  return new EdgeError("ERR_INTERNAL", "internal error").toResponse();
}

/**
 * The layer's own paths (the key set, the document endpoint, the operator API),
 * served by Hono. Its prefixes never reach an origin: a mistyped operator path
 * (with its admin token or cookie) is a 404 here, not a request forwarded upstream.
 */
function layerApp(): Hono<AppEnv> {
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
  app.route(ADMIN_BASE, adminRoutes());
  app.all("*", (c) => {
    throw new EdgeError("ERR_NOT_FOUND", `no such path: ${c.req.path}`, { status: 404, report: false });
  });
  app.onError((err, c) => errorAnswer(err, c.req.path));
  return app;
}

const LAYER_PREFIXES = [ADMIN_BASE, "/.well-known/edge-session"];
const LAYER_FOLDERS = LAYER_PREFIXES.map((p) => `${p}/`);

/** Whether a path (as Hono reads it: percent-decoded) is the layer's own rather than an origin's. */
function isLayerPath(path: string): boolean {
  return LAYER_PREFIXES.includes(path) || LAYER_FOLDERS.some((p) => path.startsWith(p));
}

/**
 * A proxied request, explained (Server-Timing; X-Edge-Session-Status when
 * configured), errors included. It does not go through Hono: a router and a
 * context per request are measurable on the path every client request takes.
 */
async function proxied(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  let cfg: EdgeConfig;
  try {
    cfg = await loadConfig(env);
  } catch (e) {
    return errorAnswer(e, getPath(request));
  }
  const trace = new Trace();
  let response: Response;
  try {
    response = await proxy(request, env, ctx, cfg, trace);
  } catch (e) {
    response = errorAnswer(e, getPath(request));
  }
  return explainResponse(response, trace, cfg.sessionStatusHeader);
}

export interface App {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>;
}

export function createApp(): App {
  const layer = layerApp();
  return {
    fetch: async (request, env, ctx) =>
      isLayerPath(getPath(request)) ? layer.fetch(request, env, ctx) : proxied(request, env, ctx),
  };
}
