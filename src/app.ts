import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { adminRoutes } from "./admin/index.ts";
import type { AppEnv } from "./app-env.ts";
import { type EdgeConfig, loadConfig } from "./config/index.ts";
import { EdgeError } from "./errors.ts";
import { log } from "./log.ts";
import { assignedOrigin, type ClientLocation, locationHintFor, WeightedRoundRobin } from "./origins/index.ts";
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
import { commitChange, type LiveSession, resumeSession } from "./session/index.ts";
import { ForwardedSigner, verifyAffinityToken } from "./token/index.ts";

export const JWKS_PATH = "/.well-known/edge-session/jwks.json";

/** Per-isolate helpers that live as long as the (cached) config they were built from. */
interface Runtime {
  signer: ForwardedSigner;
  newSessions: WeightedRoundRobin;
}
const runtimes = new WeakMap<EdgeConfig, Runtime>();
function runtimeFor(cfg: EdgeConfig): Runtime {
  let rt = runtimes.get(cfg);
  if (!rt) {
    rt = {
      signer: new ForwardedSigner(cfg.keys, cfg.issuer, cfg.forwardedAudience),
      newSessions: new WeightedRoundRobin(),
    };
    runtimes.set(cfg, rt);
  }
  return rt;
}

function pickNewOrigin(cfg: EdgeConfig): string {
  const origin = runtimeFor(cfg).newSessions.next(cfg.origins);
  if (!origin)
    throw new EdgeError("ERR_NO_ORIGIN", "no origin can take new sessions", {
      status: 503,
      headers: { "retry-after": "5" },
    });
  return origin.id;
}

/** Steps 1–3 of the request flow: token → verification → the session's Durable Object. */
async function sessionFor(env: Env, cfg: EdgeConfig, presented: PresentedToken, reg: string): Promise<LiveSession> {
  if (!presented.token) return newSessionFor(pickNewOrigin(cfg), reg);
  const verified = await verifyAffinityToken(
    { keys: cfg.keys, issuer: cfg.issuer, audience: cfg.affinityAudience },
    presented.token,
  );
  let refused: { code: string; message: string } | undefined = verified.ok
    ? undefined
    : { code: verified.code, message: verified.message };
  if (verified.ok) {
    const resumed = await resumeSession(env, cfg, verified.claims, presented.token).catch((e: unknown) => {
      throw new EdgeError("ERR_SESSION_UNAVAILABLE", "the session store could not be reached", {
        status: 503,
        cause: e,
        headers: { "retry-after": "1" },
      });
    });
    if ("session" in resumed) return resumed.session;
    refused = { code: "ERR_SESSION_ENDED", message: `the session has ended (${resumed.ended})` };
  }
  if (refused && cfg.strictTokens)
    throw new EdgeError(refused.code, `session token refused: ${refused.message}`, { status: 401, report: false });
  return newSessionFor(pickNewOrigin(cfg), reg, refused);
}

/** Step 6: what the origin asked of the session, applied; returns the session the client keeps (undefined: logged out). */
async function applyOriginDirectives(
  env: Env,
  cfg: EdgeConfig,
  session: LiveSession,
  upstream: Response,
): Promise<LiveSession | undefined> {
  const { change, problems } = parseDirectives(upstream.headers, cfg.limits);
  for (const p of problems)
    log("warn", "origin_directive_rejected", { code: p.code, message: p.message, sid: session.sid, oid: session.oid });
  if (!change) return session;
  try {
    const outcome = await commitChange(env, cfg, session, change);
    if (outcome.kind === "logged-out") return undefined;
    if (outcome.kind === "unchanged") {
      log("warn", "origin_directive_rejected", {
        code: outcome.code,
        message: outcome.message,
        sid: session.sid,
        oid: session.oid,
      });
      return session;
    }
    return outcome.session;
  } catch (e) {
    // The origin has answered; its response is still served, with the session as it was.
    log("error", "session_commit_failed", { code: "ERR_SESSION_UNAVAILABLE", sid: session.sid, message: String(e) });
    return session;
  }
}

async function proxy(c: Context<AppEnv>): Promise<Response> {
  const cfg = c.get("config");
  const request = c.req.raw;
  const reg = locationHintFor(request.cf as ClientLocation | undefined, cfg.defaultRegion);

  const presented = readPresentedToken(request.headers, cfg.cookieName);
  let session = await sessionFor(c.env, cfg, presented, reg);

  let origin = assignedOrigin(cfg.origins, session.oid);
  if (!origin) {
    // Its origin left the pool: reassign, keeping the session's state.
    const next = pickNewOrigin(cfg);
    log("warn", "session_reassigned", { sid: session.sid, from: session.oid, to: next, reason: "origin_removed" });
    session = { ...session, oid: next };
    if (session.ver > 0) session = (await applyAssignment(c.env, cfg, session)) ?? session;
    origin = assignedOrigin(cfg.origins, next);
  }
  if (!origin)
    throw new EdgeError("ERR_NO_ORIGIN", "no origin is available", { status: 503, headers: { "retry-after": "5" } });

  const headers = await upstreamHeaders(cfg, runtimeFor(cfg).signer, request, session);
  const upstream = await fetchOrigin(origin.id, upstreamUrl(origin.url, request.url), request, headers);
  const kept = await applyOriginDirectives(c.env, cfg, session, upstream);
  return clientResponse(cfg, upstream, presented.mode, kept);
}

async function applyAssignment(env: Env, cfg: EdgeConfig, session: LiveSession): Promise<LiveSession | undefined> {
  const outcome = await commitChange(env, cfg, session, { assign: session.oid });
  return outcome.kind === "updated" ? outcome.session : undefined;
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
  app.all("*", proxy);
  app.onError(onError);
  return app;
}
