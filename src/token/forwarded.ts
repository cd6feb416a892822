import { SignJWT } from "jose";
import type { KeyRing } from "./keys.ts";

/** RFC 8725 §3.11: a distinct `typ` (and `aud`) from the affinity token's. */
export const FORWARDED_TYP = "edge-session+jwt";
/** Seconds. Short: the header proves the session as of this request, nothing more. */
export const FORWARDED_TTL = 120;
/** A signed header is reused for the same session state for this long (seconds). */
const REUSE_FOR = 30;
const CACHE_ENTRIES = 2048;

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
  /** True when `data` was left out because it is larger than the configured limit. */
  data_omitted?: true;
  /** Origin the session was assigned to before a failover, and why it moved. */
  prev_oid?: string;
  reason?: string;
}

interface CacheEntry {
  jws: string;
  iat: number;
}

/**
 * Signing is the costliest step of a request that does not write, so the header
 * for a given session state (sid, version, origin, region) is signed once and
 * reused for up to REUSE_FOR seconds; origins always see at least
 * FORWARDED_TTL - REUSE_FOR seconds of validity left.
 */
export class ForwardedSigner {
  readonly #cache = new Map<string, CacheEntry>();

  constructor(
    readonly keys: KeyRing,
    readonly issuer: string,
    readonly audience: string,
  ) {}

  async sign(claims: ForwardedClaims, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    const key = [
      this.keys.signer.kid,
      claims.sid,
      claims.ver,
      claims.oid,
      claims.reg,
      claims.ep,
      claims.prev_oid ?? "",
    ].join("\u0000");
    const hit = this.#cache.get(key);
    if (hit && iat - hit.iat < REUSE_FOR && iat >= hit.iat) return hit.jws;
    const { signer } = this.keys;
    const jws = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: FORWARDED_TYP })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + FORWARDED_TTL)
      .sign(signer.signKey);
    if (this.#cache.size >= CACHE_ENTRIES) this.#cache.clear();
    this.#cache.set(key, { jws, iat });
    return jws;
  }
}
