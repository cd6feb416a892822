import type { EdgeConfig } from "../config/index.ts";
import { log } from "../log.ts";
import { type LiveSession, startSession } from "../session/index.ts";
import { JURISDICTION_REGIONS } from "../session/migration.ts";
import { type ForwardedClaims, type ForwardedSigner, issueAffinityToken } from "../token/index.ts";
import { cleanResponseHeaders, isWebSocketUpgrade, upstreamRequestHeaders } from "./headers.ts";
import { type TokenMode, writeToken } from "./transport.ts";

export { parseDirectives } from "./directives.ts";
export { isWebSocketUpgrade } from "./headers.ts";
export { type PresentedToken, readPresentedToken, type TokenMode } from "./transport.ts";
export { fetchOrigin, upstreamUrl } from "./upstream.ts";

/** Claims of the forwarded X-Edge-Session header for this request. */
export function forwardedClaims(cfg: EdgeConfig, s: LiveSession): ForwardedClaims {
  const claims: ForwardedClaims = { sid: s.sid, ver: s.ver, oid: s.oid, reg: s.reg, ep: s.ep };
  if (s.sub !== undefined) claims.sub = s.sub;
  if (s.claims !== undefined) claims.claims = s.claims;
  if (s.jur !== undefined) claims.jur = s.jur;
  if (s.moved) {
    claims.prev_oid = s.moved.from;
    claims.reason = s.moved.reason;
  }
  if (s.dataBytes <= cfg.limits.forwardedDataBytes) claims.data = s.data;
  else claims.data_omitted = true;
  return claims;
}

export async function upstreamHeaders(
  cfg: EdgeConfig,
  signer: ForwardedSigner,
  request: Request,
  s: LiveSession,
): Promise<Headers> {
  const url = new URL(request.url);
  return upstreamRequestHeaders(request.headers, {
    cookieName: cfg.cookieName,
    sessionHeader: await signer.sign(forwardedClaims(cfg, s)),
    forwarded: {
      clientIp: request.headers.get("cf-connecting-ip") ?? undefined,
      host: url.host,
      proto: url.protocol.replace(":", ""),
    },
    webSocket: isWebSocketUpgrade(request.headers),
  });
}

/** Seconds until the session's token must expire: the idle timeout, capped by the absolute lifetime. */
function tokenExpiry(cfg: EdgeConfig, s: LiveSession, nowSec: number): number {
  return Math.min(nowSec + cfg.idleTimeout, s.ct + cfg.absoluteTimeout);
}

/**
 * A token is re-issued when it names something else, or once past half its life (sliding expiry).
 * With the read cache on, a token also names the state version its holder has seen: it is re-issued
 * whenever the client is answered with another version (after its own write, or when it is shown a
 * newer one), so its next read, through any isolate, is never older (monotonic reads). In strict mode
 * the object answers every read, so a version change alone does not cost a signature and a Set-Cookie.
 */
function needsNewToken(cfg: EdgeConfig, s: LiveSession, nowSec: number): boolean {
  const p = s.presented;
  if (!p) return true;
  if (p.sid !== s.sid || p.oid !== s.oid || p.ep !== s.ep || p.reg !== s.reg || p.jur !== s.jur || p.cb !== s.cb)
    return true;
  if (cfg.readCacheSeconds > 0 && p.ver !== s.ver) return true;
  return nowSec >= p.iat + (p.exp - p.iat) / 2;
}

export async function sessionTokenFor(
  cfg: EdgeConfig,
  s: LiveSession,
  now = Date.now(),
): Promise<{ token: string; maxAge: number }> {
  const nowSec = Math.floor(now / 1000);
  if (s.presented && !needsNewToken(cfg, s, nowSec))
    return { token: s.presented.raw, maxAge: s.presented.exp - nowSec };
  const exp = tokenExpiry(cfg, s, nowSec);
  const token = await issueAffinityToken(
    { keys: cfg.keys, issuer: cfg.issuer, audience: cfg.affinityAudience },
    {
      sid: s.sid,
      oid: s.oid,
      ep: s.ep,
      ver: s.ver,
      reg: s.reg,
      ct: s.ct,
      exp,
      ...(s.jur === "eu" ? { jur: s.jur } : {}),
      ...(s.cb ? { cb: s.cb } : {}),
    },
    now,
  );
  return { token, maxAge: exp - nowSec };
}

/**
 * The client's response: the origin's status, headers and streamed body, less
 * anything hop-by-hop or meant for the layer, plus the session token when it is
 * new or due for a refresh (cookie mode), or always (header mode).
 */
export async function clientResponse(
  cfg: EdgeConfig,
  upstream: Response,
  mode: TokenMode,
  session: LiveSession | undefined,
): Promise<Response> {
  const headers = new Headers(upstream.headers);
  cleanResponseHeaders(headers, cfg.cookieName);
  if (!session) writeToken(headers, mode, cfg, undefined, 0);
  else if (mode === "header" || !session.presented || needsNewToken(cfg, session, Math.floor(Date.now() / 1000))) {
    const { token, maxAge } = await sessionTokenFor(cfg, session);
    writeToken(headers, mode, cfg, token, maxAge);
  }
  if (upstream.status === 101 && upstream.webSocket)
    return new Response(null, { status: 101, webSocket: upstream.webSocket, headers });
  return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers });
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
