import { CompactSign, compactVerify, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import type { SigningJwk } from "../config/schema.ts";

export type SigningAlgorithm = "EdDSA" | "ES256" | "HS256";

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  signKey: CryptoKey | Uint8Array;
  verifyKey: CryptoKey | Uint8Array;
  /** Public members only; absent for HS256, whose key is a shared secret and is never published. */
  publicJwk?: JWK;
}

export interface KeyRing {
  /** The first key of the set signs; every key in the set verifies. */
  signer: SigningKey;
  byKid: ReadonlyMap<string, SigningKey>;
  /** RFC 8725 §3.1: verification accepts exactly the algorithms of the configured keys. */
  algorithms: SigningAlgorithm[];
  jwks: { keys: JWK[] };
  /** True when the key set was generated because none was configured (development only). */
  generated: boolean;
}

function algorithmOf(jwk: SigningJwk): SigningAlgorithm {
  if (jwk.kty === "OKP") return "EdDSA";
  if (jwk.kty === "EC") return "ES256";
  return "HS256";
}

function publicMembers(jwk: SigningJwk, alg: SigningAlgorithm): JWK | undefined {
  const base = { kid: jwk.kid, alg, use: "sig" };
  if (jwk.kty === "OKP") return { kty: "OKP", crv: jwk.crv, x: jwk.x, ...base };
  if (jwk.kty === "EC") return { kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y, ...base };
  return undefined;
}

async function importSigningKey(jwk: SigningJwk): Promise<SigningKey> {
  const alg = algorithmOf(jwk);
  const { kid: _kid, alg: _alg, use: _use, key_ops: _ops, ...material } = jwk as SigningJwk & Record<string, unknown>;
  const signKey = await importJWK(material as JWK, alg);
  const publicJwk = publicMembers(jwk, alg);
  const verifyKey = publicJwk ? await importJWK({ ...publicJwk }, alg) : signKey;
  return { kid: jwk.kid, alg, signKey, verifyKey, ...(publicJwk ? { publicJwk } : {}) };
}

/**
 * Signs and verifies a test message with each key. A private key whose public
 * part does not match (a copy-paste error, or a small-order Ed25519 point that
 * would verify forged signatures) is refused at load, instead of being found
 * out when every token the layer issues fails to verify.
 */
async function selfTest(k: SigningKey): Promise<void> {
  const jws = await new CompactSign(new TextEncoder().encode("edge-session key self-test"))
    .setProtectedHeader({ alg: k.alg })
    .sign(k.signKey);
  // A genuine signature by d never verifies under another x, small-order points included.
  try {
    await compactVerify(jws, k.verifyKey, { algorithms: [k.alg] });
  } catch {
    throw new Error(`key "${k.kid}": its public part does not match its private part`);
  }
}

export async function buildKeyRing(keys: SigningJwk[], generated = false): Promise<KeyRing> {
  const imported = await Promise.all(keys.map(importSigningKey));
  await Promise.all(imported.map(selfTest));
  const [signer] = imported;
  if (!signer) throw new Error("a key ring needs at least one key");
  return {
    signer,
    byKid: new Map(imported.map((k) => [k.kid, k])),
    algorithms: [...new Set(imported.map((k) => k.alg))],
    jwks: { keys: imported.flatMap((k) => (k.publicJwk ? [k.publicJwk] : [])) },
    generated,
  };
}

/** A throwaway Ed25519 key for `ENVIRONMENT=development` when no key set is configured. */
export async function generateDevelopmentKeys(): Promise<SigningJwk[]> {
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = `dev-${crypto.randomUUID().slice(0, 8)}`;
  return [{ kty: "OKP", crv: "Ed25519", kid, x: jwk.x ?? "", d: jwk.d ?? "" }];
}
