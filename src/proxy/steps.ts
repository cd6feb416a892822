import { type ReadCache, readCacheFor } from "../cache/index.ts";
import type { EdgeConfig } from "../config/index.ts";
import { LOCATION_HINTS } from "../config/index.ts";
import { EdgeError } from "../errors.ts";
import { log } from "../log.ts";
import { type ClientLocation, locationHintFor, type PoolView, poolStub, reportEnded } from "../origins/index.ts";
import { ObjectUnavailable, restoreSession } from "../replication/failover.ts";
import { presentedFrom } from "../session/client.ts";
import { commitChange, type LiveSession, type ObjectCall, resumeSession } from "../session/index.ts";
import { type AffinityClaims, ForwardedSigner, verifyAffinityToken } from "../token/index.ts";
import { fetchOrigin, type PresentedToken, parseDirectives, upstreamHeaders, upstreamUrl } from "./index.ts";
import { noOriginError, type Placement, Router, repin, retryableBody } from "./route.ts";

/**
 * The steps of the request path (src/app.ts reads them top-down): find the
 * session, place it on an origin, forward with retries, apply what the origin
 * asked. Each is a function of one request's scope.
 */

/** Per-isolate helpers that live as long as the (cached) config they were built from. */
export interface Runtime {
  signer: ForwardedSigner;
  router: Router;
}
const runtimes = new WeakMap<EdgeConfig, Runtime>();
export function runtimeFor(cfg: EdgeConfig): Runtime {
  let rt = runtimes.get(cfg);
  if (!rt) {
    rt = { signer: new ForwardedSigner(cfg.keys, cfg.issuer, cfg.forwardedAudience), router: new Router(cfg) };
    runtimes.set(cfg, rt);
  }
  return rt;
}

/** Everything one proxied request needs, gathered once. */
export interface RequestScope {
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
export async function sessionFor(
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
  const { claims } = verified;
  const cache = readCacheFor(cfg);
  const hit = cache.lookup(claims, x.view?.ended?.[claims.sid] !== undefined);
  if (hit) {
    if (hit.confirm) x.waitUntil(confirmInBackground(x, cache, claims, hit.session, presented.token));
    return { ...hit.session, presented: presentedFrom(claims, presented.token) };
  }
  const askedAt = Date.now();
  let resumed: Awaited<ReturnType<typeof resumeSession>>;
  try {
    resumed = await resumeSession(cfg, claims, presented.token, x.region, x.call);
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
    if (restored.kind === "restored") {
      cache.confirm(restored.session, askedAt);
      return restored.session;
    }
    return { refused: { code: restored.code, message: restored.message } };
  }
  if ("session" in resumed) {
    cache.confirm(resumed.session, askedAt);
    return resumed.session;
  }
  cache.evict(claims.sid);
  return { refused: { code: "ERR_SESSION_ENDED", message: `the session has ended (${resumed.ended})` } };
}

/**
 * Off the critical path (waitUntil): asks the object for the session a cached
 * copy answered, at most once per session per half cache period. This is the
 * object's touch, too: its idle timer and its automatic-migration counter see
 * the client's reads. Whatever it learns replaces the copy (or evicts it).
 * A failure leaves the copy to expire; the next request then asks the object
 * itself and restores the session if it must.
 */
async function confirmInBackground(
  x: RequestScope,
  cache: ReadCache,
  claims: AffinityClaims,
  held: LiveSession,
  raw: string,
): Promise<void> {
  const askedAt = Date.now();
  // From where the copy says the session lives, which may be ahead of the client's token.
  const at: AffinityClaims = { ...claims, ep: held.ep, reg: held.reg, oid: held.oid };
  if (held.jur === "eu") at.jur = held.jur;
  else delete at.jur;
  try {
    const resumed = await resumeSession(x.cfg, at, raw, x.region, x.call);
    if ("session" in resumed) cache.confirm(resumed.session, askedAt);
    else cache.evict(claims.sid);
  } catch (e) {
    log("warn", "read_cache_confirm_failed", { sid: claims.sid, message: String(e) });
  }
}

/** Step 4: the origin for this request — the session's own, or another if it must move (failover, drain, return home). */
export async function place(x: RequestScope, s: LiveSession): Promise<{ session: LiveSession; placement: Placement }> {
  const decision = x.rt.router.decide(s, x.view, x.region);
  if ("stay" in decision) return { session: s, placement: { origin: decision.stay, fallback: false } };
  if (decision.to)
    return {
      session: await repin(x.env, x.cfg, s, decision.to, decision.move, x.waitUntil, x.call),
      placement: { origin: decision.to, fallback: false },
    };
  return { session: s, placement: fallbackOrFail(x.cfg, `session ${s.sid} must leave ${s.oid} (${decision.move})`) };
}

export function fallbackOrFail(cfg: EdgeConfig, why: string): Placement {
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
export async function forward(
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
export async function applyOriginDirectives(
  x: RequestScope,
  session: LiveSession,
  upstream: Response,
): Promise<LiveSession | undefined> {
  const { change, problems } = parseDirectives(upstream.headers, x.cfg.limits);
  for (const p of problems)
    log("warn", "origin_directive_rejected", { code: p.code, message: p.message, sid: session.sid, oid: session.oid });
  const cache = readCacheFor(x.cfg);
  // A session started by this request stored nothing: its next request can be answered from memory.
  if (!session.presented) cache.confirm(session, Date.now());
  if (!change) return session;
  const askedAt = Date.now();
  try {
    const outcome = await commitChange(x.env, x.cfg, session, change, x.call);
    // This isolate sees its own change at once; the pool tells the others of an end.
    x.waitUntil(reportEnded(x.env, x.cfg, cache.afterCommit(session, outcome, askedAt)));
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
    // Not known to have happened: the copy here is dropped; a logout is reported all the same (fail closed).
    cache.afterCommit(session, undefined, askedAt);
    if (change.logout) x.waitUntil(reportEnded(x.env, x.cfg, [session.sid]));
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
export function clientRegion(request: Request, cfg: EdgeConfig): string {
  const override = request.headers.get("x-edge-dev-region");
  if (cfg.isDevelopment && override && (LOCATION_HINTS as readonly string[]).includes(override)) return override;
  return locationHintFor(request.cf as ClientLocation | undefined, cfg.defaultRegion);
}

/** With JURISDICTIONS=eu, sessions started from EU countries are created (and stay) in the EU jurisdiction. */
export function jurisdictionFor(request: Request, cfg: EdgeConfig): "eu" | undefined {
  if (cfg.jurisdictions !== "eu") return undefined;
  const cf = request.cf as { isEUCountry?: string } | undefined;
  const dev = cfg.isDevelopment && request.headers.get("x-edge-dev-eu") === "1";
  return cf?.isEUCountry === "1" || dev ? "eu" : undefined;
}
