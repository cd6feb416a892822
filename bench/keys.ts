/** Signing key sets for the bench, made fresh on every run with jose (as `npm run keygen` does). */
import { exportJWK, generateKeyPair, generateSecret, type JWK } from "jose";
import type { SigningAlg } from "./options.ts";

export async function generateSigningKey(alg: SigningAlg): Promise<JWK> {
  const kid = `bench-${alg.toLowerCase()}-${crypto.randomUUID().slice(0, 6)}`;
  if (alg === "HS256") return { ...(await exportJWK(await generateSecret("HS256", { extractable: true }))), kid };
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
  });
  return { ...(await exportJWK(privateKey)), kid };
}

/** The value of SESSION_SIGNING_KEYS: a private JWK Set whose first key signs. */
export async function signingKeySet(alg: SigningAlg): Promise<string> {
  return JSON.stringify({ keys: [await generateSigningKey(alg)] });
}

/** A bearer token that passes the ADMIN_TOKEN rules (≥ 24 characters of A-Za-z0-9._~+/-). */
export function adminToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url");
}

/** SNAPSHOT_KEY: 32 random bytes, base64 (AES-256-GCM for the KV snapshots). */
export function snapshotKey(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
}
