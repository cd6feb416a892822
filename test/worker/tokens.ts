/** Token forging tools for tests: the real signing key (tests know it) and an attacker's. */
import { decodeJwt, exportJWK, generateKeyPair, importJWK, type JWK, type JWTPayload, SignJWT } from "jose";
import { inject } from "vitest";
import type { Echo } from "./harness.ts";
import { header } from "./harness.ts";

export const AFFINITY_TYP = "edge-affinity+jwt";
export const ISSUER = "edge-session";
export const AFFINITY_AUD = "edge-session:affinity";

export function b64url(input: string | Uint8Array): string {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

export function realSigningJwk(): JWK {
  const set = JSON.parse(inject("keys").mixed) as { keys: JWK[] };
  const first = set.keys[0];
  if (!first) throw new Error("no key");
  return first;
}

export function hsJwk(): JWK {
  const set = JSON.parse(inject("keys").mixed) as { keys: JWK[] };
  const hs = set.keys.find((k) => k.kty === "oct");
  if (!hs) throw new Error("no hs key");
  return hs;
}

export function forwardedOf(echo: Echo): JWTPayload & Record<string, unknown> {
  const value = header(echo, "x-edge-session");
  if (!value) throw new Error("origin received no X-Edge-Session header");
  return decodeJwt(value) as JWTPayload & Record<string, unknown>;
}

export interface ForgeOptions {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  iat?: number;
  exp?: number;
  key?: JWK;
  alg?: string;
}

/** Signs a token with the real key unless told otherwise: the claims decide what is wrong with it. */
export async function signWith(o: ForgeOptions = {}): Promise<string> {
  const jwk = o.key ?? realSigningJwk();
  const alg = o.alg ?? (jwk.kty === "oct" ? "HS256" : jwk.kty === "EC" ? "ES256" : "EdDSA");
  const now = Math.floor(Date.now() / 1000);
  const { kid, ...material } = jwk;
  const key = await importJWK(material, alg);
  return new SignJWT({ ...o.claims })
    .setProtectedHeader({ alg, kid, typ: AFFINITY_TYP, ...o.header })
    .setIssuedAt(o.iat ?? now)
    .setExpirationTime(o.exp ?? now + 600)
    .sign(key);
}

export function affinityClaims(sid: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sid,
    oid: "alpha",
    ep: 1,
    reg: "enam",
    ct: Math.floor(Date.now() / 1000),
    iss: ISSUER,
    aud: AFFINITY_AUD,
    ...extra,
  };
}

export async function attackerKey(): Promise<{ priv: JWK; pub: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return { priv: await exportJWK(privateKey), pub: await exportJWK(publicKey) };
}

export async function hmac(secret: Uint8Array, data: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return b64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(data))));
}

/** Signs arbitrary header and payload JSON with the real Ed25519 key, bypassing jose's own header checks. */
export async function signRaw(head: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  const { kid: _kid, ...material } = realSigningJwk();
  const key = (await importJWK(material, "EdDSA")) as CryptoKey;
  const input = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(payload))}`;
  const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", key, new TextEncoder().encode(input)));
  return `${input}.${b64url(sig)}`;
}
