import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { clientFingerprint, limitNewSessions } from "./abuse/index.ts";
import { adminRoutes } from "./admin/index.ts";
import type { AppEnv } from "./app-env.ts";
import { type EdgeConfig, LOCATION_HINTS, loadConfig } from "./config/index.ts";
import { EdgeError } from "./errors.ts";
import { log } from "./log.ts";
import { type ClientLocation, locationHintFor, type PoolView, poolStub, poolView } from "./origins/index.ts";
import {
  clientResponse,
  fetchOrigin,
  newSessionFor,
  type PresentedToken,
  parseDirectives,
  readPresentedToken,
  upstreamHeaders,
  upstreamUrl,
} from "./proxy/index.ts";
import { noOriginError, type Placement, Router, repin, retryableBody } from "./proxy/route.ts";
import { ObjectUnavailable, objectCaller, restoreSession } from "./replication/failover.ts";
import { commitChange, type LiveSession, type ObjectCall, resumeSession } from "./session/index.ts";
import { ForwardedSigner, verifyAffinityToken } from "./token/index.ts";

export const JWKS_PATH = "/.well-known/edge-session/jwks.json";

/** Per-isolate helpers that live as long as the (cached) config they were built from. */
interface Runtime {
  signer: ForwardedSigner;
  router: Router;
}
const runtimes = new WeakMap<EdgeConfig, Runtime>();
function runtimeFor(cfg: EdgeConfig): Runtime {
  let rt = runtimes.get(cfg);
  if (!rt) {
    rt = { signer: new ForwardedSigner(cfg.keys, cfg.issuer, cfg.forwardedAudience), router: new Router(cfg) };
    runtimes.set(cfg, rt);
  }
  return rt;
}

/** Everything one proxied request needs, gathered once. */
interface RequestScope {
  env: Env;
  cfg: EdgeConfig;
  rt: Runtime;
  request: Request;
  region: string;
  view: PoolView | undefined;
  waitUntil: (p: Promise<unknown>) => void;
  /** Calls a session object with the timeout, retry and (in development) injected faults. */
  call: ObjectCall;
  /** The client's binding digest when CLIENT_BINDING is on. */
  binding: string | undefined;
}

/**
 * Steps 1–3 of the request flow: token → verification → the session's Durable
 * Object. If that object cannot be reached, the session is restored from its
 * KV snapshot into a new object elsewhere (section 6 of the design).
 */
async function sessionFor(
  x: RequestScope,
  presented: PresentedToken,
): Promise<LiveSession | { refused: { code: string; message: string } | undefined }> {
  if (!presented.token) return { refused: undefined };
  const { cfg } = x;
  const verified = await verifyAffinityToken(
    { keys: cfg.keys, issuer: cfg.issuer, audience: cfg.affinityAudience },
    presented.token,
  );
  if (!verified.ok) return { refused: { code: verified.code, message: verified.message } };
  if (x.binding !== verified.claims.cb)
    return {
      refused: { code: "ERR_TOKEN_BINDING", message: "the token was issued to a different client (CLIENT_BINDING)" },
    };
  let resumed: Awaited<ReturnType<typeof resumeSession>>;
  try {
    resumed = await resumeSession(cfg, verified.claims, presented.token, x.region, x.call);
  } catch (e) {
    if (!(e instanceof ObjectUnavailable)) throw e;
    log("error", "session_object_unavailable", {
      sid: verified.claims.sid,
      code: e.code,
      message: e.message,
      epoch: e.at.ep,
      region: e.at.reg,
    });
    const restored = await restoreSession(
      x.env,
      cfg,
      verified.claims,
      presented.token,
      e,
      x.region,
      x.view?.faults ?? [],
      x.call,
      (detail) =>
        x.waitUntil(
          poolStub(x.env, cfg)
            .recordEvent("session_restored", verified.claims.oid, detail)
            .catch(() => {}),
        ),
    ).catch((err: unknown) => {
      if (err instanceof EdgeError) throw err;
      throw new EdgeError("ERR_SESSION_UNAVAILABLE", "the session could not be reached or restored", {
        status: 503,
        cause: err,
        headers: { "retry-after": "1" },
      });
    });
    if (restored.kind === "restored") return restored.session;
    return { refused: { code: restored.code, message: restored.message } };
  }
  if ("session" in resumed) return resumed.session;
  return { refused: { code: "ERR_SESSION_ENDED", message: `the session has ended (${resumed.ended})` } };
}

/** Step 4: the origin for this request — the session's own, or another if it must move (failover, drain, return home). */
async function place(x: RequestScope, s: LiveSession): Promise<{ session: LiveSession; placement: Placement }> {
  const decision = x.rt.router.decide(s, x.view, x.region);
  if ("stay" in decision) return { session: s, placement: { origin: decision.stay, fallback: false } };
  if (decision.to)
    return {
      session: await repin(x.env, x.cfg, s, decision.to, decision.move, x.waitUntil, x.call),
      placement: { origin: decision.to, fallback: false },
    };
  return { session: s, placement: fallbackOrFail(x.cfg, `session ${s.sid} must leave ${s.oid} (${decision.move})`) };
}

function fallbackOrFail(cfg: EdgeConfig, why: string): Placement {
  log("error", "no_origin", { why, fallback: cfg.pool.fallback?.id ?? null });
  if (cfg.pool.fallback) return { origin: { ...cfg.pool.fallback, weight: 0 }, fallback: true };
  throw noOriginError();
}

/**
 * Step 5: forward, streaming. A failure before any response byte (refused,
 * reset, timed out) ejects toward outlier detection and moves the session to
 * another origin; idempotent requests are retried there within MAX_RETRIES,
 * others are answered 502/504 and never sent twice.
 */
async function forward(
  x: RequestScope,
  s: LiveSession,
  first: Placement,
): Promise<{ upstream: Response; session: LiveSession }> {
  const { cfg, request } = x;
  const { body, retryable } = await retryableBody(request, cfg);
  const tried = new Set<string>();
  let session = s;
  let placement = first;
  for (let attempt = 0; ; attempt++) {
    const { origin } = placement;
    tried.add(origin.id);
    const headers = await upstreamHeaders(cfg, x.rt.signer, request, session);
    try {
      await injectedOriginFault(x, origin.id);
      const upstream = await fetchOrigin(origin.id, upstreamUrl(origin.url, request.url), {
        method: request.method,
        headers,
        body: body instanceof ArrayBuffer ? body.slice(0) : body,
        timeoutMs: cfg.pool.originTimeout * 1000,
      });
      if (!placement.fallback) x.rt.router.observe(x.env, origin.id, upstream.status < 500, x.view, x.waitUntil);
      return { upstream, session };
    } catch (e) {
      if (!(e instanceof EdgeError) || placement.fallback) throw e;
      x.rt.router.observe(x.env, origin.id, false, x.view, x.waitUntil);
      log("warn", "origin_attempt_failed", {
        code: e.code,
        oid: origin.id,
        sid: session.sid,
        attempt,
        method: request.method,
      });
      const to = x.rt.router.pick(x.view, x.region, tried);
      if (!to) {
        if (!cfg.pool.fallback) throw noOriginError(e);
        placement = fallbackOrFail(cfg, `${origin.id} failed and no other origin can take the session`);
        continue;
      }
      session = await repin(x.env, cfg, session, to, "connect_failed", x.waitUntil, x.call);
      placement = { origin: to, fallback: false };
      if (!retryable || attempt >= cfg.pool.maxRetries) return { upstream: e.toResponse(), session };
    }
  }
}

/** Development and tests only: an origin marked down fails like a refused connection; slow waits first. */
async function injectedOriginFault(x: RequestScope, oid: string): Promise<void> {
  if (!x.cfg.faultInjection) return;
  const fault = x.view?.faults.find((f) => f.target === `origin:${oid}`);
  if (fault?.mode === "down")
    throw new EdgeError("ERR_ORIGIN_UNREACHABLE", `origin ${oid} could not be reached (injected fault)`, {
      status: 502,
    });
  if (fault?.mode === "slow") await new Promise((r) => setTimeout(r, fault.ms ?? 1000));
}

/** Step 6: what the origin asked of the session, applied; returns the session the client keeps (undefined: logged out). */
async function applyOriginDirectives(
  x: RequestScope,
  session: LiveSession,
  upstream: Response,
): Promise<LiveSession | undefined> {
  const { change, problems } = parseDirectives(upstream.headers, x.cfg.limits);
  for (const p of problems)
    log("warn", "origin_directive_rejected", { code: p.code, message: p.message, sid: session.sid, oid: session.oid });
  if (!change) return session;
  try {
    const outcome = await commitChange(x.env, x.cfg, session, change, x.call);
    if (outcome.kind === "unchanged") {
      log("warn", "origin_directive_rejected", {
        code: outcome.code,
        message: outcome.message,
        sid: session.sid,
        oid: session.oid,
      });
      return session;
    }
    // Live counts: a session is counted when it is first stored. A login rotation stores a new
    // session in place of the old one, so it counts only if the old one was never stored (version 0).
    const delta =
      outcome.kind === "logged-out"
        ? -1
        : (outcome.kind === "updated" && outcome.created) || (outcome.kind === "rotated" && session.ver === 0)
          ? 1
          : 0;
    if (delta) {
      const counted = outcome.kind === "logged-out" ? session : outcome.session;
      x.waitUntil(
        poolStub(x.env, x.cfg)
          .adjustSessions({ [counted.oid]: delta }, { [counted.reg]: delta })
          .catch(() => {}),
      );
    }
    return outcome.kind === "logged-out" ? undefined : outcome.session;
  } catch (e) {
    log("error", "session_commit_failed", { code: "ERR_SESSION_UNAVAILABLE", sid: session.sid, message: String(e) });
    // A logout that could not be recorded still logs the client out: its token is cleared (fail closed).
    // Anything else: the origin has answered, and its response is served with the session as it was.
    return change.logout ? undefined : session;
  }
}

/**
 * The client's region, from `request.cf`. In development only, the
 * X-Edge-Dev-Region header (a location hint) stands in for it, so a developer
 * can pretend to be elsewhere under `wrangler dev`.
 */
function clientRegion(request: Request, cfg: EdgeConfig): string {
  const override = request.headers.get("x-edge-dev-region");
  if (cfg.isDevelopment && override && (LOCATION_HINTS as readonly string[]).includes(override)) return override;
  return locationHintFor(request.cf as ClientLocation | undefined, cfg.defaultRegion);
}

/** With JURISDICTIONS=eu, sessions started from EU countries are created (and stay) in the EU jurisdiction. */
function jurisdictionFor(request: Request, cfg: EdgeConfig): "eu" | undefined {
  if (cfg.jurisdictions !== "eu") return undefined;
  const cf = request.cf as { isEUCountry?: string } | undefined;
  const dev = cfg.isDevelopment && request.headers.get("x-edge-dev-eu") === "1";
  return cf?.isEUCountry === "1" || dev ? "eu" : undefined;
}

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
