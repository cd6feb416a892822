import { type ReadCache, readCacheFor } from "../cache/index.ts";
import type { EdgeConfig } from "../config/index.ts";
import { LOCATION_HINTS } from "../config/index.ts";
import type { LongLivedKind } from "../connections/index.ts";
import { EdgeError, type ErrorCode, sessionUnavailable } from "../errors.ts";
import { log } from "../log.ts";
import { explainRestore, type Trace, timed } from "../observe/index.ts";
import {
  type ClientLocation,
  locationHintFor,
  type PoolView,
  poolStub,
  regionsDown,
  reportCounts,
  reportEnded,
} from "../origins/index.ts";
import { ObjectUnavailable, type RecoveryScope, recoverSession } from "../replication/failover.ts";
import { presentedFrom } from "../session/client.ts";
import {
  type CommitOutcome,
  type CountDelta,
  commitChange,
  type LiveSession,
  type ObjectCall,
  type Resumed,
  ROTATION_GRACE_MS,
  resumeSession,
  type SessionChange,
  startSession,
} from "../session/index.ts";
import { healthyRegions } from "../session/migration.ts";
import { type AffinityClaims, ForwardedSigner, verifyAffinityToken } from "../token/index.ts";
import { afterCommit } from "../users/index.ts";
import {
  fetchOrigin,
  isLogoutAll,
  type PresentedToken,
  parseDirectives,
  upstreamHeaders,
  upstreamUrl,
} from "./index.ts";
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
    rt = {
      signer: new ForwardedSigner(cfg.keys, cfg.issuer, cfg.forwardedAudience, cfg.limits.forwardedBytes),
      router: new Router(cfg),
    };
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
  /** The pool view as this isolate knows it now (a getter: re-read at each decision, never frozen at the start). */
  readonly view: PoolView | undefined;
  waitUntil: (p: Promise<unknown>) => void;
  /** Calls a session object with the timeout, retry and (in development) injected faults. */
  call: ObjectCall;
  /** The client's binding digest when CLIENT_BINDING is on. */
  binding: string | undefined;
  /** A WebSocket upgrade or an event-stream GET: a connection that stays open. */
  longLived: LongLivedKind | undefined;
  /** What this request did, for Server-Timing and X-Edge-Session-Status. */
  trace: Trace;
  /** Set when a strict learned id pins the request to its origin: the answer when that origin fails (no other origin is tried). */
  pinned?: (e: EdgeError) => Response;
}

/** A client with no usable session: why its token was refused, if it sent one. */
export interface NoSession {
  refused: { code: ErrorCode; message: string } | undefined;
  /** Its token was rotated by a login moments ago (a request that raced the login): keep the client's new token. */
  rotatedAt?: number;
}

/** Everything recovery needs from this request. */
function recoveryScope(x: RequestScope, oid: string): RecoveryScope {
  return {
    env: x.env,
    cfg: x.cfg,
    call: x.call,
    down: regionsDown(x.cfg, x.view?.faults ?? []),
    clientRegion: x.region,
    recordEvent: (detail) =>
      x.waitUntil(
        poolStub(x.env, x.cfg)
          .recordEvent("session_restored", oid, detail)
          .catch(() => {}),
      ),
  };
}

/** Live-session counts as the session objects decided them, passed on to the pool. */
function passCounts(x: RequestScope, counts: readonly (CountDelta | undefined)[]): void {
  for (const c of counts) x.waitUntil(reportCounts(x.env, x.cfg.pool.name, c));
}

/**
 * Steps 1–3 of the request flow: token → verification → the session's Durable
 * Object. If that object cannot be reached, the session is recovered: a newer
 * epoch is followed if one answers, else it is restored from its KV snapshot
 * into a new object elsewhere (section 6 of the design).
 */
export async function sessionFor(x: RequestScope, presented: PresentedToken): Promise<LiveSession | NoSession> {
  if (!presented.token) return { refused: undefined };
  const { cfg } = x;
  const token = presented.token;
  const verified = await timed(x.trace, "token", () =>
    verifyAffinityToken({ keys: cfg.keys, issuer: cfg.issuer, audience: cfg.affinityAudience }, token),
  );
  if (!verified.ok) return { refused: { code: verified.code, message: verified.message } };
  if (x.binding !== verified.claims.cb)
    return {
      refused: { code: "ERR_TOKEN_BINDING", message: "the token was issued to a different client (CLIENT_BINDING)" },
    };
  const { claims } = verified;
  const shown = presentedFrom(claims, token);
  const cache = readCacheFor(cfg);
  const hit = cache.lookup(claims, x.view?.ended?.[claims.sid] !== undefined);
  if (hit) {
    if (hit.confirm) x.waitUntil(confirmInBackground(x, cache, claims, hit.session, token));
    return { ...hit.session, presented: shown };
  }
  const askedAt = Date.now();
  let resumed: Resumed;
  try {
    resumed = await resumeSession(cfg, claims, token, x.region, x.call);
  } catch (e) {
    if (!(e instanceof ObjectUnavailable)) throw e;
    logUnavailable(e);
    const recovered = await recoverSession(recoveryScope(x, claims.oid), e, shown);
    if (recovered.kind === "refused") return { refused: { code: recovered.code, message: recovered.message } };
    if (recovered.kind === "restored") {
      passCounts(x, [recovered.counts]);
      explainRestore(x.env, x.trace, recovered.session, e.at.region, e.code);
    }
    resumed =
      recovered.kind === "ended"
        ? { ended: recovered.reason, ...(recovered.at !== undefined ? { at: recovered.at } : {}) }
        : { session: { ...recovered.session, recovered: true } };
  }
  if ("session" in resumed) {
    cache.confirm(resumed.session, askedAt);
    return resumed.session;
  }
  cache.evict(claims.sid);
  const refused = { code: "ERR_SESSION_ENDED" as const, message: `the session has ended (${resumed.ended})` };
  if (resumed.ended === "rotated" && resumed.at !== undefined && Date.now() - resumed.at < ROTATION_GRACE_MS) {
    // A browser that raced its own login may have had its new cookie replaced; it still sends the
    // successor cookie the login set. That is the new session's own token, so it opens no more than
    // the main cookie did before the race; a pre-login token alone (fixation) opens nothing.
    if (presented.successor && presented.successor !== token) {
      const next = await sessionFor(x, { mode: presented.mode, token: presented.successor });
      // The main cookie is re-issued for it: the stale token is what the client presented.
      if ("sid" in next) return { ...next, presented: shown };
    }
    return { refused, rotatedAt: resumed.at };
  }
  return { refused };
}

function logUnavailable(e: ObjectUnavailable): void {
  log("error", "session_object_unavailable", {
    sid: e.at.sid,
    code: e.code,
    message: e.message,
    epoch: e.at.epoch,
    region: e.at.region,
  });
}

/**
 * Off the critical path (waitUntil): asks the object for the session a cached
 * copy answered, at most once per session per 80 % of the cache period. This is the
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
  const at: AffinityClaims = { ...claims, ep: held.epoch, reg: held.region, oid: held.origin };
  if (held.jurisdiction === "eu") at.jur = held.jurisdiction;
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
      session: await repin(x, s, decision.to, decision.move),
      placement: { origin: decision.to, fallback: false },
    };
  return { session: s, placement: fallbackOrFail(x.cfg, `session ${s.sid} must leave ${s.origin} (${decision.move})`) };
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
      if (x.pinned) return { upstream: x.pinned(e), session };
      const to = x.rt.router.pick(x.view, x.region, tried);
      if (!to) {
        if (!cfg.pool.fallback) throw noOriginError(e);
        placement = fallbackOrFail(cfg, `${origin.id} failed and no other origin can take the session`);
        continue;
      }
      session = await repin(x, session, to, "connect_failed");
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

/** What the origin asked, once applied: the session the client keeps (undefined: logged out), or why not. */
export type Applied =
  | { ok: true; session: LiveSession | undefined }
  /** The change is not durable: the client gets `error` instead of the origin's 2xx; `loggedOut`: clear its token. */
  | { ok: false; error: EdgeError; loggedOut: boolean };

/**
 * Step 6: what the origin asked of the session, applied durably. A response
 * that carries a change is answered 2xx only once the change is committed;
 * otherwise the client gets a typed error (a version conflict, an ended
 * session, or 503 with Retry-After). A logout that cannot be recorded still
 * clears the client's token (fail closed).
 */
export async function applyOriginDirectives(
  x: RequestScope,
  session: LiveSession,
  upstream: Response,
): Promise<Applied> {
  const { change, problems } = parseDirectives(upstream.headers, x.cfg.limits);
  for (const p of problems)
    log("warn", "origin_directive_rejected", {
      code: p.code,
      message: p.message,
      sid: session.sid,
      oid: session.origin,
    });
  const cache = readCacheFor(x.cfg);
  // A session started by this request stored nothing: its next request can be answered from memory.
  if (!session.presented && !session.ephemeral) cache.confirm(session, Date.now());
  if (!change) return { ok: true, session };
  const askedAt = Date.now();
  let outcome: CommitOutcome;
  try {
    outcome = await commitDurably(x, session, change);
    // This isolate sees its own change at once; the pool tells the others of an end.
    x.waitUntil(reportEnded(x.env, x.cfg, cache.afterCommit(session, outcome, askedAt)));
  } catch (e) {
    if (!(e instanceof EdgeError)) throw e;
    // Not known to have happened: the copy here is dropped; a logout is reported all the same (fail closed).
    cache.afterCommit(session, undefined, askedAt);
    if (change.logout) x.waitUntil(reportEnded(x.env, x.cfg, [session.sid]));
    log("error", "session_commit_failed", { code: e.code, sid: session.sid, message: e.message });
    await failClosed(x, session, change, upstream);
    return { ok: false, error: e, loggedOut: change.logout === true };
  }
  // The per-user index: a login registers, a logout unregisters, `Logout: all` ends the user's other sessions.
  const logoutAll = isLogoutAll(upstream.headers);
  switch (outcome.kind) {
    case "updated":
      passCounts(x, [outcome.counts]);
      return { ok: true, session: outcome.session };
    case "rotated":
      passCounts(x, outcome.counts);
      await afterCommit(x, session, outcome, logoutAll);
      return { ok: true, session: { ...outcome.session, rotated: true } };
    case "logged-out":
      passCounts(x, [outcome.counts]);
      await afterCommit(x, session, outcome, logoutAll);
      return { ok: true, session: undefined };
    case "refused":
      // The origin's own mistake (a document over the limits): logged; the session stays as it was.
      log("warn", "origin_directive_rejected", {
        code: outcome.code,
        message: outcome.message,
        sid: session.sid,
        oid: session.origin,
      });
      return { ok: true, session };
    case "conflict":
      return {
        ok: false,
        loggedOut: false,
        error: new EdgeError(
          "ERR_VERSION_CONFLICT",
          `the session changed meanwhile (now at version ${outcome.version}); try again`,
          {
            status: 409,
            report: false,
          },
        ),
      };
    case "ended":
      // Ended already: a logout has nothing left to do here. Anything else was not applied anywhere.
      if (change.logout) {
        await afterCommit(x, session, { kind: "logged-out" }, logoutAll);
        return { ok: true, session: undefined };
      }
      return {
        ok: false,
        // A login that rotated it moments ago left the client a new token: keep that one.
        loggedOut: outcome.reason !== "rotated",
        error: new EdgeError(
          "ERR_SESSION_ENDED",
          outcome.reason === "rotated"
            ? "a login replaced this session moments ago; send the request again with the new token"
            : `the session ended (${outcome.reason}) before the change could be applied`,
          { status: 409, report: false },
        ),
      };
    case "unavailable":
      await failClosed(x, session, change, upstream);
      log("error", "session_commit_failed", {
        code: "ERR_SESSION_UNAVAILABLE",
        sid: session.sid,
        message: outcome.message,
      });
      return { ok: false, error: sessionUnavailable(outcome.message), loggedOut: change.logout === true };
  }
}

/**
 * A `Logout: all` whose own session could not be ended still ends the user's
 * other sessions: after a password change, the rest must not stay open because
 * this one was out of reach.
 */
async function failClosed(x: RequestScope, session: LiveSession, change: SessionChange, upstream: Response) {
  if (change.logout && isLogoutAll(upstream.headers)) await afterCommit(x, session, { kind: "logged-out" }, true);
}

/**
 * Commits a change, and when the session's object cannot take it, moves on: a
 * session that stored nothing yet starts in a healthy region instead; an
 * existing one is recovered (a newer epoch followed, or restored) and the change
 * applied there. Throws a typed 503 when neither works.
 */
async function commitDurably(x: RequestScope, session: LiveSession, change: SessionChange): Promise<CommitOutcome> {
  if (session.ephemeral)
    return change.logout ? { kind: "logged-out" } : { kind: "ended", reason: "rotated", at: Date.now() };
  const rotationRegions = (s: LiveSession) => homeRegions(x, s.region, s.jurisdiction);
  let failure: ObjectUnavailable;
  try {
    return await commitChange(x.cfg, session, change, x.call, rotationRegions(session));
  } catch (e) {
    if (!(e instanceof ObjectUnavailable)) throw e;
    logUnavailable(e);
    failure = e;
  }
  let target: LiveSession;
  if (!session.presented && session.version === 0) {
    // No token names it yet and nothing is stored: the same session can start anywhere; a new id keeps it simple.
    const reg = homeRegions(x, x.region, session.jurisdiction, [failure.at.region])[0];
    if (!reg) throw sessionUnavailable("no region can store the session now; try again", failure);
    const { sid, epoch: ep, region: home, createdSec: ct } = startSession(session.origin, reg, session.jurisdiction);
    target = { ...session, sid, epoch: ep, region: home, createdSec: ct };
  } else {
    const recovered = await recoverSession(recoveryScope(x, session.origin), failure, session.presented);
    if (recovered.kind === "ended")
      return { kind: "ended", reason: recovered.reason, ...(recovered.at !== undefined ? { at: recovered.at } : {}) };
    if (recovered.kind === "refused")
      throw sessionUnavailable(`the session could not be restored (${recovered.code}); try again`);
    if (recovered.kind === "restored") passCounts(x, [recovered.counts]);
    target = { ...recovered.session, ...(session.moved ? { moved: session.moved } : {}) };
  }
  try {
    return await commitChange(x.cfg, target, change, x.call, rotationRegions(target));
  } catch (e) {
    if (e instanceof ObjectUnavailable) throw sessionUnavailable("the session could not be stored now; try again", e);
    throw e;
  }
}

/**
 * The client's region, from `request.cf`. In development only, the
 * X-Edge-Dev-Region header (a location hint) stands in for it, so a developer
 * can pretend to be elsewhere under `wrangler dev`.
 */
export function clientRegion(request: Request, cfg: EdgeConfig): string {
  const override = cfg.isDevelopment ? request.headers.get("x-edge-dev-region") : null;
  if (override && (LOCATION_HINTS as readonly string[]).includes(override)) return override;
  return locationHintFor(request.cf as ClientLocation | undefined, cfg.defaultRegion);
}

/**
 * Where a new session lives: the client's region, else the nearest allowed one
 * not known to be down (the pool's faults, and regions whose objects this
 * isolate just failed to reach). Its first write must land somewhere alive.
 */
export function homeRegion(x: RequestScope, jur: string | undefined): string {
  return homeRegions(x, x.region, jur)[0] ?? x.region;
}

/** Regions a session may be placed in, best first from `preferred`, less those known to be down or excluded. */
function homeRegions(
  x: RequestScope,
  preferred: string,
  jur: string | undefined,
  exclude: readonly string[] = [],
): string[] {
  const down = regionsDown(x.cfg, x.view?.faults ?? []);
  return healthyRegions(preferred, jur, (r) => down.has(r) || exclude.includes(r));
}

/** With JURISDICTIONS=eu, sessions started from EU countries are created (and stay) in the EU jurisdiction. */
export function jurisdictionFor(request: Request, cfg: EdgeConfig): "eu" | undefined {
  if (cfg.jurisdictions !== "eu") return undefined;
  const cf = request.cf as { isEUCountry?: string } | undefined;
  const dev = cfg.isDevelopment && request.headers.get("x-edge-dev-eu") === "1";
  return cf?.isEUCountry === "1" || dev ? "eu" : undefined;
}
