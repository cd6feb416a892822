import { errors, type JWTHeaderParameters, jwtVerify, SignJWT } from "jose";
import { LRUCache } from "lru-cache";
import { z } from "zod";
import type { KeyRing, SigningKey } from "./keys.ts";

/** RFC 8725 §3.11: explicit typing, so an affinity token and a forwarded header can never stand in for each other. */
export const AFFINITY_TYP = "edge-affinity+jwt";
/** Far above any token we issue (~400 bytes); refuse larger ones before parsing them. */
export const MAX_TOKEN_LENGTH = 2048;
/** Seconds of clock skew tolerated on exp/nbf/iat. */
const CLOCK_TOLERANCE = 5;

export const SESSION_ID = /^[A-Za-z0-9_-]{22,64}$/;

const AffinityClaimsSchema = z.object({
  sid: z.string().regex(SESSION_ID),
  oid: z.string().min(1).max(64),
  ep: z.number().int().min(1),
  /**
   * The session's state version the holder has seen (a lower bound, like a D1 bookmark): a per-isolate
   * copy at this version or newer may answer its reads. Tokens issued before the claim existed read as 0.
   */
  ver: z.number().int().nonnegative().default(0),
  reg: z.string().min(1).max(16),
  /** Session start (seconds), so the absolute lifetime survives token refreshes. */
  ct: z.number().int().nonnegative(),
  /** Jurisdiction the session is pinned to (e.g. "eu"), when it is. */
  jur: z.enum(["eu"]).optional(),
  /** Client binding: a digest of the coarse client fingerprint (CLIENT_BINDING), when binding is on. */
  cb: z.string().max(64).optional(),
  iat: z.number(),
  exp: z.number(),
});

export interface AffinityClaims {
  sid: string;
  oid: string;
  ep: number;
  ver: number;
  reg: string;
  ct: number;
  jur?: "eu";
  cb?: string;
  iat: number;
  exp: number;
}

export type TokenRejection =
  | "ERR_TOKEN_TOO_LARGE"
  | "ERR_TOKEN_MALFORMED"
  | "ERR_TOKEN_ALG"
  | "ERR_TOKEN_UNSUPPORTED"
  | "ERR_TOKEN_KID"
  | "ERR_TOKEN_SIGNATURE"
  | "ERR_TOKEN_EXPIRED"
  | "ERR_TOKEN_CLAIMS"
  | "ERR_TOKEN_BINDING";

export type AffinityVerification =
  | { ok: true; claims: AffinityClaims }
  | { ok: false; code: TokenRejection; message: string };

export interface TokenContext {
  keys: KeyRing;
  issuer: string;
  audience: string;
}

export async function issueAffinityToken(
  ctx: TokenContext,
  claims: Omit<AffinityClaims, "iat">,
  now = Date.now(),
): Promise<string> {
  const { signer } = ctx.keys;
  const body = {
    sid: claims.sid,
    oid: claims.oid,
    ep: claims.ep,
    ver: claims.ver,
    reg: claims.reg,
    ct: claims.ct,
    ...(claims.jur ? { jur: claims.jur } : {}),
    ...(claims.cb ? { cb: claims.cb } : {}),
  };
  return new SignJWT(body)
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: AFFINITY_TYP })
    .setIssuer(ctx.issuer)
    .setAudience(ctx.audience)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(claims.exp)
    .sign(signer.signKey);
}

/** An empty signature is the canonical encoding of no bytes: jose then refuses it on its real grounds (alg, signature). */
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * One token, one spelling. jose decodes segments leniently (whitespace, "="
 * padding and unused trailing bits are all accepted), so several strings would
 * verify as the same token. Base64url without padding has unused bits only in
 * its last character; they must be zero (RFC 4648 §3.5), and a length of 1 mod 4
 * is never valid.
 */
function isCanonicalCompact(token: string): boolean {
  if (!COMPACT.test(token)) return false;
  return token.split(".").every((segment) => {
    const rest = segment.length % 4;
    if (rest === 1) return false;
    if (rest === 0) return true;
    const last = B64URL.indexOf(segment.charAt(segment.length - 1));
    const unused = rest === 2 ? 0b1111 : 0b11;
    return (last & unused) === 0;
  });
}

class KidError extends Error {}

function keyFor(keys: KeyRing, header: JWTHeaderParameters): SigningKey["verifyKey"] {
  const key = typeof header.kid === "string" ? keys.byKid.get(header.kid) : undefined;
  if (!key) throw new KidError(`unknown kid ${JSON.stringify(header.kid ?? null).slice(0, 80)}`);
  // The key decides the algorithm, never the token (RFC 8725 §2.1, §3.1).
  if (header.alg !== key.alg) throw new errors.JOSEAlgNotAllowed(`alg ${header.alg} does not match key ${key.kid}`);
  return key.verifyKey;
}

function rejection(e: unknown): { code: TokenRejection; message: string } {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof KidError) return { code: "ERR_TOKEN_KID", message };
  if (e instanceof errors.JWTExpired) return { code: "ERR_TOKEN_EXPIRED", message };
  if (e instanceof errors.JWTClaimValidationFailed) return { code: "ERR_TOKEN_CLAIMS", message };
  if (e instanceof errors.JWSSignatureVerificationFailed) return { code: "ERR_TOKEN_SIGNATURE", message };
  if (e instanceof errors.JOSEAlgNotAllowed) return { code: "ERR_TOKEN_ALG", message };
  // e.g. a `crit` extension we do not understand (RFC 7515 §4.1.11: must be refused).
  if (e instanceof errors.JOSENotSupported) return { code: "ERR_TOKEN_UNSUPPORTED", message };
  return { code: "ERR_TOKEN_MALFORMED", message };
}

/**
 * Tokens this isolate has already verified, per key ring, kept until they
 * expire. The key is the exact token string, whose signature was checked, so a
 * hit proves what a fresh verification would. A new key set is a new ring and
 * starts empty. The time checks (exp, nbf) are repeated on every hit.
 */
interface Verified {
  claims: AffinityClaims & { nbf?: number };
  /** The checks that do not depend on time, beside the key ring. */
  issuer: string;
  audience: string;
}
const verified = new WeakMap<KeyRing, LRUCache<string, Verified>>();
const VERIFIED_MAX = 10_000;

function cachedClaims(ctx: TokenContext, token: string, now: number): AffinityClaims | undefined {
  const hit = verified.get(ctx.keys)?.get(token);
  if (!hit || hit.issuer !== ctx.issuer || hit.audience !== ctx.audience) return undefined;
  const { claims } = hit;
  const sec = now / 1000;
  if (claims.exp + CLOCK_TOLERANCE <= sec || (claims.nbf ?? 0) - CLOCK_TOLERANCE > sec) return undefined;
  return claims;
}

function remember(ctx: TokenContext, token: string, claims: AffinityClaims & { nbf?: number }): void {
  let map = verified.get(ctx.keys);
  if (!map) {
    map = new LRUCache({ max: VERIFIED_MAX });
    verified.set(ctx.keys, map);
  }
  map.set(token, { claims, issuer: ctx.issuer, audience: ctx.audience });
}

/**
 * Verifies an affinity token per RFC 8725: algorithm allow-list taken from the
 * key set, key chosen by `kid` only from our own set (embedded `jwk`/`jku`/`x5u`
 * are never followed), `typ`, `iss`, `aud`, `exp`, `nbf`, unknown `crit` refused.
 * Never throws: a refusal is a value with a stable code.
 */
export async function verifyAffinityToken(
  ctx: TokenContext,
  token: string,
  now = Date.now(),
): Promise<AffinityVerification> {
  if (token.length > MAX_TOKEN_LENGTH)
    return { ok: false, code: "ERR_TOKEN_TOO_LARGE", message: `token longer than ${MAX_TOKEN_LENGTH} characters` };
  // The exact string verified before: it passed every check below but the time ones, which cachedClaims repeats.
  const hit = cachedClaims(ctx, token, now);
  if (hit) return { ok: true, claims: hit };
  if (!isCanonicalCompact(token))
    return { ok: false, code: "ERR_TOKEN_MALFORMED", message: "not a canonical compact JWS (RFC 7515 §3.1, §2)" };
  try {
    const { payload } = await jwtVerify(token, (header) => keyFor(ctx.keys, header), {
      algorithms: ctx.keys.algorithms,
      issuer: ctx.issuer,
      audience: ctx.audience,
      typ: AFFINITY_TYP,
      clockTolerance: CLOCK_TOLERANCE,
      currentDate: new Date(now),
      requiredClaims: ["iat", "exp", "sid", "oid", "ep", "reg", "ct"],
    });
    const claims = AffinityClaimsSchema.safeParse(payload);
    if (!claims.success) return { ok: false, code: "ERR_TOKEN_CLAIMS", message: "claims have the wrong shape" };
    remember(ctx, token, { ...claims.data, ...(typeof payload.nbf === "number" ? { nbf: payload.nbf } : {}) });
    return { ok: true, claims: claims.data };
  } catch (e) {
    return { ok: false, ...rejection(e) };
  }
}
