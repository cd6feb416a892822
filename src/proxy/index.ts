import type { EdgeConfig } from "../config/index.ts";
import type { EdgeError } from "../errors.ts";
import { log } from "../log.ts";
import { type LiveSession, ROTATION_GRACE_MS, startSession } from "../session/index.ts";
import { JURISDICTION_REGIONS } from "../session/migration.ts";
import { type ForwardedClaims, type ForwardedSigner, issueAffinityToken } from "../token/index.ts";
import {
  cleanResponseHeaders,
  type HeaderPairs,
  isWebSocketUpgrade,
  ORIGIN_AUTH_HEADER,
  upstreamRequestHeaders,
} from "./headers.ts";
import { type TokenMode, writeSuccessor, writeToken } from "./transport.ts";
import { urlParts } from "./upstream.ts";

export { isLogoutAll, parseDirectives } from "./directives.ts";
export { isWebSocketUpgrade } from "./headers.ts";
export { type PresentedToken, readPresentedToken, type TokenMode } from "./transport.ts";
export { fetchOrigin, upstreamUrl } from "./upstream.ts";

/** Claims of the forwarded X-Edge-Session header for this request. */
export function forwardedClaims(cfg: EdgeConfig, s: LiveSession): ForwardedClaims {
  const claims: ForwardedClaims = { sid: s.sid, ver: s.version, oid: s.origin, reg: s.region, ep: s.epoch };
  if (s.sub !== undefined) claims.sub = s.sub;
  if (s.claims !== undefined) claims.claims = s.claims;
  if (s.jurisdiction !== undefined) claims.jur = s.jurisdiction;
  if (s.moved) {
    claims.prev_oid = s.moved.from;
    claims.reason = s.moved.reason;
  }
  // FORWARDED_MAX_BYTES (the signer) decides what fits; the deprecated data-only cap still applies first.
  if (s.dataBytes <= cfg.limits.forwardedDataBytes) claims.data = s.data;
  else claims.data_omitted = true;
  return claims;
}

export async function upstreamHeaders(
  cfg: EdgeConfig,
  signer: ForwardedSigner,
  request: Request,
  s: LiveSession,
): Promise<HeaderPairs> {
  const { host, proto } = urlParts(request.url);
  const headers = upstreamRequestHeaders(request.headers, {
    cookieName: cfg.cookieName,
    sessionHeader: await signer.sign(forwardedClaims(cfg, s), Date.now(), s.dataBytes),
    forwarded: { clientIp: request.headers.get("cf-connecting-ip") ?? undefined, host, proto },
    webSocket: isWebSocketUpgrade(request.headers),
  });
  if (cfg.originAuth) headers.push([ORIGIN_AUTH_HEADER, cfg.originAuth]);
  return headers;
}

/** Seconds until the session's token must expire: the idle timeout, capped by the absolute lifetime. */
function tokenExpiry(cfg: EdgeConfig, s: LiveSession, nowSec: number): number {
  return Math.min(nowSec + cfg.idleTimeout, s.createdSec + cfg.absoluteTimeout);
}

/**
 * A token is re-issued when it names something else, or once past half its life (sliding expiry).
 * With the read cache on, a token also names the state version its holder has seen: it is re-issued
 * whenever the client is answered with another version (after its own write, or when it is shown a
 * newer one), so its next read, through any isolate, is never older (monotonic reads). In strict mode
 * the object answers every read, so a version change alone does not cost a signature and a Set-Cookie.
 */
function needsNewToken(cfg: EdgeConfig, s: LiveSession, nowSec: number, mode: TokenMode): boolean {
  const p = s.presented;
  if (!p) return true;
  if (p.sid !== s.sid || p.cb !== s.cb) return true;
  const moved = p.oid !== s.origin || p.ep !== s.epoch || p.reg !== s.region || p.jur !== s.jurisdiction;
  // An API client keeps whichever token arrived last and has no second slot (browsers have the
  // successor cookie). Once a session is stored, its object holds its origin and forwards to its
  // new home: a token that merely names the old ones still works (one forward pointer, which lives
  // as long as the token does), and the next write, refresh or recovery brings it up to date. Past
  // one pointer it is re-issued all the same: a chain of them would cost a call each.
  const pointers = s.epoch - p.ep;
  if (moved && (mode === "cookie" || s.version === 0 || s.recovered || pointers > 1)) return true;
  if (cfg.readCacheSeconds > 0 && p.ver !== s.version) return true;
  return nowSec >= p.iat + (p.exp - p.iat) / 2;
}

export async function sessionTokenFor(
  cfg: EdgeConfig,
  s: LiveSession,
  now = Date.now(),
): Promise<{ token: string; maxAge: number }> {
  const nowSec = Math.floor(now / 1000);
  if (s.presented && !needsNewToken(cfg, s, nowSec, "cookie"))
    return { token: s.presented.raw, maxAge: s.presented.exp - nowSec };
  const exp = tokenExpiry(cfg, s, nowSec);
  const token = await issueAffinityToken(
    { keys: cfg.keys, issuer: cfg.issuer, audience: cfg.affinityAudience },
    {
      sid: s.sid,
      oid: s.origin,
      ep: s.epoch,
      ver: s.version,
      reg: s.region,
      ct: s.createdSec,
      exp,
      ...(s.jurisdiction === "eu" ? { jur: s.jurisdiction } : {}),
      ...(s.cb ? { cb: s.cb } : {}),
    },
    now,
  );
  return { token, maxAge: exp - nowSec };
}

/**
 * The client's response: the origin's status, headers and streamed body, less
 * anything hop-by-hop or meant for the layer, plus the session token when it is
 * new, changed or due for a refresh (in either mode).
 */
export async function clientResponse(
  cfg: EdgeConfig,
  upstream: Response,
  mode: TokenMode,
  session: LiveSession | undefined,
): Promise<Response> {
  // The runtime copies the origin's headers (they are immutable on a fetched response); the copy is pruned in place.
  const response =
    upstream.status === 101 && upstream.webSocket
      ? new Response(null, { status: 101, webSocket: upstream.webSocket, headers: upstream.headers })
      : new Response(upstream.body, {
          status: upstream.status,
          statusText: upstream.statusText,
          headers: upstream.headers,
        });
  const { headers } = response;
  cleanResponseHeaders(headers, cfg.cookieName);
  if (!session) {
    writeToken(headers, mode, cfg, undefined, 0);
    if (mode === "cookie") writeSuccessor(headers, cfg, undefined, 0);
  } else if (session.ephemeral) {
    // The client raced its own login: its new token stands; this response must not replace it.
  } else if (!session.presented || needsNewToken(cfg, session, Math.floor(Date.now() / 1000), mode)) {
    // Only a token that changed is sent, in either mode: a response to a request that raced another
    // (a login, a migration) must not hand back the older token it came with, over the newer one.
    const { token, maxAge } = await sessionTokenFor(cfg, session);
    writeToken(headers, mode, cfg, token, maxAge);
    if (mode === "cookie" && session.rotated)
      writeSuccessor(headers, cfg, token, Math.min(maxAge, Math.ceil(ROTATION_GRACE_MS / 1000)));
  }
  return response;
}

/** The layer's own error instead of the origin's answer; `clearToken`: the client is logged out all the same. */
export function errorResponse(cfg: EdgeConfig, error: EdgeError, mode: TokenMode, clearToken: boolean): Response {
  const res = error.toResponse();
  if (clearToken) {
    writeToken(res.headers, mode, cfg, undefined, 0);
    if (mode === "cookie") writeSuccessor(res.headers, cfg, undefined, 0);
  }
  return res;
}

/** A session for a client with no usable token; logged so refused tokens are visible. */
export function newSessionFor(
  oid: string,
  reg: string,
  refused?: { code: string; message: string },
  jur?: "eu",
): LiveSession {
  // A pinned session's home must be inside its jurisdiction.
  const home = jur && !JURISDICTION_REGIONS[jur]?.includes(reg) ? (JURISDICTION_REGIONS[jur]?.[0] ?? reg) : reg;
  const s = startSession(oid, home, jur);
  if (refused) log("info", "token_rejected", { code: refused.code, message: refused.message, new_sid: s.sid });
  return s;
}
