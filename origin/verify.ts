/**
 * Helpers for a Node origin behind edge-session.
 *
 * The layer forwards every request with `X-Edge-Session`: a compact JWS it signs
 * with a key published at `/.well-known/edge-session/jwks.json`. Verify it on
 * every request (never trust the claims without the signature), and change the
 * session by adding `X-Edge-Session-*` headers to your response; the layer
 * applies and strips them.
 *
 * Depends only on `jose`. Works with plain `node:http`, Express and Hono:
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { createEdgeSessionVerifier, login, setSession } from "./verify.ts";
 *
 * const verify = createEdgeSessionVerifier({
 *   jwksUrl: "https://edge.example.com/.well-known/edge-session/jwks.json",
 * });
 *
 * createServer(async (req, res) => {
 *   const session = await verify(req.headers["x-edge-session"]);
 *   if (!session) return void res.writeHead(401).end("no valid X-Edge-Session");
 *   const visits = typeof session.data?.visits === "number" ? session.data.visits : 0;
 *   res.writeHead(200, { ...setSession({ visits: visits + 1 }), "content-type": "text/plain" });
 *   res.end(session.sub ? `hello ${session.sub}` : "hello, anonymous");
 * }).listen(3000);
 *
 * // Express: const session = await verify(req.get("x-edge-session")); res.set(login("alice"));
 * // Hono:    const session = await verify(c.req.header("x-edge-session"));
 * //          for (const [k, v] of Object.entries(logout())) c.header(k, v);
 * ```
 *
 * @module
 */
import { createRemoteJWKSet, jwtVerify } from "jose";

/** The verified content of `X-Edge-Session`. */
export interface EdgeSession {
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
  /** The logged-in user, when there is one. */
  sub?: string;
  /** Claims the origin gave at login. */
  claims?: Record<string, unknown>;
  /** The session data (a JSON object), unless it was too large to forward. */
  data?: Record<string, unknown>;
  /** True when `data` was left out because it is over the layer's size limit. */
  data_omitted?: true;
  /** Set after a failover: the origin the session was on before, and why it moved. */
  prev_oid?: string;
  reason?: string;
  iss: string;
  aud: string | string[];
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
}

export interface EdgeSessionVerifierOptions {
  /** The layer's JWKS, e.g. `https://edge.example.com/.well-known/edge-session/jwks.json`. */
  jwksUrl: string | URL;
  /** Expected `iss`; the layer's TOKEN_ISSUER. */
  issuer?: string;
  /** Expected `aud`; the layer's FORWARDED_AUDIENCE. */
  audience?: string;
  /** Seconds of clock skew tolerated on `exp`/`iat`. */
  clockTolerance?: number;
  /** Called with the reason whenever a present header is refused (bad signature, expired, JWKS unreachable…). */
  onError?: (error: unknown) => void;
}

/** A request header as node:http (`req.headers[name]`), Express (`req.get`), Hono (`c.req.header`) or `Headers.get` give it. */
export type HeaderValue = string | string[] | null | undefined;

export type EdgeSessionVerifier = (headerValue: HeaderValue) => Promise<EdgeSession | null>;

/** Must match the layer's `typ`: it keeps the affinity token (another `typ`) from being accepted here. */
export const EDGE_SESSION_TYP = "edge-session+jwt";
/** The algorithms the layer signs with. An explicit list, never taken from the token (RFC 8725 §3.1). */
const ALGORITHMS = ["EdDSA", "ES256"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkShape(p: Record<string, unknown>): string | undefined {
  if (typeof p.sid !== "string" || typeof p.oid !== "string" || typeof p.reg !== "string") return "sid/oid/reg";
  if (!Number.isInteger(p.ver) || !Number.isInteger(p.ep)) return "ver/ep";
  if (p.sub !== undefined && typeof p.sub !== "string") return "sub";
  if (p.claims !== undefined && !isObject(p.claims)) return "claims";
  if (p.data !== undefined && !isObject(p.data)) return "data";
  return undefined;
}

/**
 * Returns a function that verifies an `X-Edge-Session` header value and resolves
 * to its claims, or to `null` when the header is absent or not valid. It never
 * throws for bad input; pass `onError` to see why a header was refused.
 *
 * Create it once and reuse it: the JWKS is fetched on first use, cached, and
 * fetched again when a token names a key id it has not seen (key rotation).
 */
export function createEdgeSessionVerifier(options: EdgeSessionVerifierOptions): EdgeSessionVerifier {
  const { issuer = "edge-session", audience = "edge-session:origin", clockTolerance = 5, onError } = options;
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl));

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
      return payload as unknown as EdgeSession;
    } catch (e) {
      onError?.(e);
      return null;
    }
  };
}

/**
 * JSON for a header value. Non-ASCII characters are written as \u escapes (the
 * same JSON once parsed): header values are byte strings, so node:http throws on
 * characters above U+00FF and Fetch's Headers refuses them.
 */
function headerJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Changes the session data with an RFC 7396 JSON Merge Patch: keys are merged
 * into the data, `null` deletes a key, and arrays are replaced whole (send the
 * full new array). With `ifVersion`, the layer only applies the patch if the
 * session is still at that version (pass the `ver` you read), so a concurrent
 * change is not overwritten; a refused patch is logged by the layer and the
 * session stays as it was.
 */
export function setSession(
  patch: Record<string, unknown>,
  options: { ifVersion?: number } = {},
): Record<string, string> {
  const headers: Record<string, string> = { "X-Edge-Session-Set": headerJson(patch) };
  if (options.ifVersion !== undefined) headers["X-Edge-Session-Set-If-Version"] = String(options.ifVersion);
  return headers;
}

/** Logs the session in as `sub`. The layer rotates the session id (and the client's token) and keeps the data. */
export function login(sub: string, claims?: Record<string, unknown>): Record<string, string> {
  return { "X-Edge-Session-Login": headerJson(claims === undefined ? { sub } : { sub, claims }) };
}

/** Ends the session on the layer (it can no longer be resumed) and clears the client's cookie or token. */
export function logout(): Record<string, string> {
  return { "X-Edge-Session-Logout": "1" };
}
