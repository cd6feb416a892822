import { type JWTPayload, jwtVerify, SignJWT } from "jose";
import { LRUCache } from "lru-cache";
import type { KeyRing } from "./keys.ts";

/** RFC 8725 §3.11: a distinct `typ` (and `aud`) from the affinity token's. */
export const FORWARDED_TYP = "edge-session+jwt";
/** Seconds. Short: the header proves the session as of this request, nothing more. */
export const FORWARDED_TTL = 120;
/** A signed header is reused for the same session state for this long (seconds). */
const REUSE_FOR = 30;
/** Signed headers kept per isolate: as many sessions as the read cache holds, bounded by bytes too. */
const CACHE_ENTRIES = 10_000;
const CACHE_BYTES = 8 * 1024 * 1024;
/** Seconds of clock skew tolerated when the layer checks a forwarded header an origin hands back. */
const CLOCK_TOLERANCE = 5;

export interface ForwardedClaims {
  sid: string;
  ver: number;
  oid: string;
  reg: string;
  ep: number;
  jur?: string;
  sub?: string;
  claims?: Record<string, unknown>;
  data?: Record<string, unknown>;
  /** True when `data` was left out because the header would be over its bound. */
  data_omitted?: true;
  /** True when the login `claims` were left out for the same reason (only ever after `data`). */
  claims_omitted?: true;
  /** Origin the session was assigned to before a failover, and why it moved. */
  prev_oid?: string;
  reason?: string;
}

interface CacheEntry {
  jws: string;
  iat: number;
}

const encoder = new TextEncoder();
/** Length of base64url without padding for `n` bytes (RFC 4648 §5). */
const b64Length = (n: number) => Math.ceil((n * 4) / 3);
/** Signature lengths, base64url: Ed25519 and P-256 (r‖s) are 64 bytes, HMAC-SHA256 32. */
const SIGNATURE_CHARS = { EdDSA: b64Length(64), ES256: b64Length(64), HS256: b64Length(32) } as const;
/** `,"data":` — what the data claim adds to the payload besides the document itself. */
const DATA_MEMBER_BYTES = encoder.encode(',"data":').byteLength;

/**
 * Which claims fit in `maxBytes` of header value, by the exact size of the
 * compact JWS (header.payload.signature, base64url). Data goes first, then the
 * login claims; sid, sub and the rest always stay, so an origin can always tell
 * whose session this is and a logout always reaches it. Pure: the size of the
 * document comes from the record (`dataBytes`), so a large document is not
 * serialized again on every request just to be measured.
 */
export function fitForwarded(
  claims: ForwardedClaims,
  dataBytes: number,
  sizeOf: (payload: ForwardedClaims, extraBytes: number) => number,
  maxBytes: number,
): ForwardedClaims {
  const { data, ...rest } = claims;
  if (data !== undefined && sizeOf(rest, DATA_MEMBER_BYTES + dataBytes) <= maxBytes) return claims;
  const withoutData: ForwardedClaims =
    data !== undefined || claims.data_omitted ? { ...rest, data_omitted: true } : rest;
  if (withoutData.claims === undefined || sizeOf(withoutData, 0) <= maxBytes) return withoutData;
  const { claims: _claims, ...bare } = withoutData;
  return { ...bare, claims_omitted: true };
}

export type ForwardedVerification =
  | { ok: true; claims: ForwardedClaims & { iat: number; exp: number } }
  | { ok: false; message: string };

/**
 * Signing is the costliest step of a request that does not write, so the header
 * for a given session state (sid, version, origin, region) is signed once and
 * reused for up to REUSE_FOR seconds; origins always see at least
 * FORWARDED_TTL - REUSE_FOR seconds of validity left.
 */
export class ForwardedSigner {
  readonly #cache = new LRUCache<string, CacheEntry>({
    max: CACHE_ENTRIES,
    maxSize: CACHE_BYTES,
    sizeCalculation: (e) => e.jws.length + 64,
  });

  constructor(
    readonly keys: KeyRing,
    readonly issuer: string,
    readonly audience: string,
    /** The whole header value (the compact JWS) never exceeds this many bytes: FORWARDED_MAX_BYTES. */
    readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Bytes of the compact JWS these claims (plus `extraBytes` of payload) would be signed into. */
  #sizeOf(iat: number, claims: ForwardedClaims, extraBytes: number): number {
    const { signer } = this.keys;
    const header = { alg: signer.alg, kid: signer.kid, typ: FORWARDED_TYP };
    const payload = { ...claims, iss: this.issuer, aud: this.audience, iat, exp: iat + FORWARDED_TTL };
    const headerBytes = encoder.encode(JSON.stringify(header)).byteLength;
    const payloadBytes = encoder.encode(JSON.stringify(payload)).byteLength + extraBytes;
    return b64Length(headerBytes) + 1 + b64Length(payloadBytes) + 1 + SIGNATURE_CHARS[signer.alg];
  }

  /** `dataBytes`: the size of `claims.data` as JSON, when the caller knows it (the record does). */
  async sign(claims: ForwardedClaims, now = Date.now(), dataBytes?: number): Promise<string> {
    const iat = Math.floor(now / 1000);
    const key = `${this.keys.signer.kid}\u0000${claims.sid}\u0000${claims.ver}\u0000${claims.oid}\u0000${claims.reg}\u0000${claims.ep}\u0000${claims.prev_oid ?? ""}`;
    const hit = this.#cache.get(key);
    if (hit && iat - hit.iat < REUSE_FOR && iat >= hit.iat) return hit.jws;
    const measured = dataBytes ?? (claims.data ? encoder.encode(JSON.stringify(claims.data)).byteLength : 0);
    let fitted = fitForwarded(claims, measured, (c, extra) => this.#sizeOf(iat, c, extra), this.maxBytes);
    let jws = await this.#signNow(fitted, iat);
    // The size is computed, not guessed; should a caller's dataBytes ever be off, the bound still holds.
    if (jws.length > this.maxBytes && fitted.data !== undefined) {
      fitted = fitForwarded(claims, Number.POSITIVE_INFINITY, (c, extra) => this.#sizeOf(iat, c, extra), this.maxBytes);
      jws = await this.#signNow(fitted, iat);
    }
    this.#cache.set(key, { jws, iat });
    return jws;
  }

  #signNow(claims: ForwardedClaims, iat: number): Promise<string> {
    const { signer } = this.keys;
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: FORWARDED_TYP })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + FORWARDED_TTL)
      .sign(signer.signKey);
  }

  /**
   * Checks a forwarded header an origin presents back to the layer (the
   * document endpoint): our keys only, our typ, issuer and audience, not
   * expired. Never throws.
   */
  async verify(token: string, now = Date.now()): Promise<ForwardedVerification> {
    if (token.length > 64 * 1024) return { ok: false, message: "header too large" };
    try {
      const { payload } = await jwtVerify(
        token,
        (header) => {
          const key = typeof header.kid === "string" ? this.keys.byKid.get(header.kid) : undefined;
          if (!key || key.alg !== header.alg) throw new Error("unknown kid or alg");
          return key.verifyKey;
        },
        {
          algorithms: this.keys.algorithms,
          issuer: this.issuer,
          audience: this.audience,
          typ: FORWARDED_TYP,
          clockTolerance: CLOCK_TOLERANCE,
          currentDate: new Date(now),
          requiredClaims: ["iat", "exp", "sid", "ver", "oid", "reg", "ep"],
        },
      );
      if (!isForwardedPayload(payload)) return { ok: false, message: "claims have the wrong shape" };
      return { ok: true, claims: payload as unknown as ForwardedClaims & { iat: number; exp: number } };
    } catch (e) {
      return { ok: false, message: e instanceof Error ? e.message : String(e) };
    }
  }
}

function isForwardedPayload(p: JWTPayload): boolean {
  return (
    typeof p.sid === "string" &&
    typeof p.oid === "string" &&
    typeof p.reg === "string" &&
    Number.isInteger(p.ver) &&
    Number.isInteger(p.ep) &&
    (p.jur === undefined || typeof p.jur === "string")
  );
}
