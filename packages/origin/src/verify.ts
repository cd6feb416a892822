import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";
import { isJsonObject, type JsonObject } from "./encode.js";

/** The verified content of `X-Edge-Session`. */
export interface EdgeSessionClaims {
  /** Session id. Changes on login (rotation), so do not use it as a user id. */
  sid: string;
  /** State version: bumps on every change the layer applies. */
  ver: number;
  /** The origin this session is pinned to. */
  oid: string;
  /** Home region of the session (a Durable Object location hint). */
  reg: string;
  /** Epoch of the session's home; bumps on migration or failover. */
  ep: number;
  jur?: string;
  /** The logged-in user, when there is one. */
  sub?: string;
  /** Claims the origin gave at login (absent with `claims_omitted`). */
  claims?: JsonObject;
  /** The session data, unless it did not fit in the header (`data_omitted`). */
  data?: JsonObject;
  /** The header had no room for `data`: read it from the layer's document endpoint. */
  data_omitted?: true;
  /** The header had no room for `claims` either. */
  claims_omitted?: true;
  /** Set after a failover: the origin the session was on before, and why it moved. */
  prev_oid?: string;
  reason?: string;
  iss: string;
  aud: string | string[];
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
}

/** A request header as node:http (`req.headers[name]`), Express (`req.get`), Hono (`c.req.header`) or `Headers.get` give it. */
export type HeaderValue = string | string[] | null | undefined;

export interface VerifierOptions {
  /**
   * The layer's base URL, e.g. `https://edge.example.com`: the JWKS and the
   * document endpoint are found under `/.well-known/edge-session/`.
   */
  layerUrl?: string | URL;
  /** The layer's JWKS, when it is not at `<layerUrl>/.well-known/edge-session/jwks.json`. */
  jwksUrl?: string | URL;
  /** Expected `iss`: the layer's TOKEN_ISSUER. */
  issuer?: string;
  /** Expected `aud`: the layer's FORWARDED_AUDIENCE. */
  audience?: string;
  /** Seconds of clock skew tolerated on `exp`/`iat`. */
  clockTolerance?: number;
  /** Called with the reason whenever a present header is refused (bad signature, expired, JWKS unreachable…). */
  onError?: (error: unknown) => void;
  /**
   * The key set cache (jose's createRemoteJWKSet): `cooldownMs` is the least time between two fetches, also
   * when a header names an unknown kid (default 30 s); `maxAgeMs` how long a fetched set is kept (default 10 min).
   */
  jwksCache?: { cooldownMs?: number; maxAgeMs?: number };
}

/** Must match the layer's `typ`: it keeps the affinity token (another `typ`) from being accepted here. */
export const EDGE_SESSION_TYP = "edge-session+jwt";
/** The algorithms the layer signs with. An explicit list, never taken from the token (RFC 8725 §3.1). */
export const ALGORITHMS = ["EdDSA", "ES256"];
export const WELL_KNOWN = "/.well-known/edge-session/";

function checkShape(p: JWTPayload): string | undefined {
  if (typeof p.sid !== "string" || typeof p.oid !== "string" || typeof p.reg !== "string") return "sid/oid/reg";
  if (!Number.isInteger(p.ver) || !Number.isInteger(p.ep)) return "ver/ep";
  if (p.sub !== undefined && typeof p.sub !== "string") return "sub";
  if (p.claims !== undefined && !isJsonObject(p.claims)) return "claims";
  if (p.data !== undefined && !isJsonObject(p.data)) return "data";
  return undefined;
}

export function endpoints(options: VerifierOptions): { jwks: URL; document: URL } {
  const jwks = options.jwksUrl
    ? new URL(options.jwksUrl)
    : options.layerUrl
      ? new URL(`${WELL_KNOWN}jwks.json`, options.layerUrl)
      : undefined;
  if (!jwks) throw new TypeError("edge-session-origin: give layerUrl (or jwksUrl)");
  // The document endpoint sits beside the JWKS.
  return { jwks, document: new URL("document", jwks) };
}

export type Verifier = (headerValue: HeaderValue) => Promise<EdgeSessionClaims | null>;

/**
 * Returns a function that verifies an `X-Edge-Session` header value and resolves
 * to its claims, or to `null` when the header is absent or not valid. It never
 * throws for bad input; pass `onError` to see why a header was refused.
 *
 * Create it once and reuse it: jose's remote key set fetches the JWKS on first
 * use, caches it, and fetches again (at most every 30 s) when a token names a
 * key id it has not seen: a rotation needs nothing from the origin.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const { issuer = "edge-session", audience = "edge-session:origin", clockTolerance = 5, onError } = options;
  const jwks = createRemoteJWKSet(endpoints(options).jwks, {
    ...(options.jwksCache?.cooldownMs !== undefined ? { cooldownDuration: options.jwksCache.cooldownMs } : {}),
    ...(options.jwksCache?.maxAgeMs !== undefined ? { cacheMaxAge: options.jwksCache.maxAgeMs } : {}),
  });

  return async (headerValue) => {
    // A repeated header arrives as an array (or joined with ", "): never pick one.
    if (typeof headerValue !== "string" || headerValue === "") return null;
    try {
      const { payload } = await jwtVerify(headerValue, jwks, {
        algorithms: ALGORITHMS,
        typ: EDGE_SESSION_TYP,
        issuer,
        audience,
        clockTolerance,
        requiredClaims: ["iat", "exp"],
      });
      const problem = checkShape(payload);
      if (problem) throw new TypeError(`X-Edge-Session has invalid claims (${problem})`);
      return payload as unknown as EdgeSessionClaims;
    } catch (e) {
      onError?.(e);
      return null;
    }
  };
}
