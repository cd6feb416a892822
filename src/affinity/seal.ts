/**
 * The sealed form of an origin-issued id: a compact JWE (`dir`, A256GCM) under
 * a key derived from SNAPSHOT_KEY. Sealing, not just signing: the plaintext
 * names which origin holds the id (its place in ORIGINS, behind which sits an
 * address) and which edge session it was issued under; the client learns
 * neither, and cannot alter either without failing the tag. The origin's own
 * id is inside too, so no lookup is needed to restore it on any isolate.
 */
import { base64url, CompactEncrypt, compactDecrypt } from "jose";

export interface SealKey {
  kid: string;
  key: Uint8Array;
}

/** What a sealed learned id carries. Short names: it travels in every request. */
export interface LearnedBinding {
  /** The rule it was issued for (`header:mcp-session-id`, `cookie:JSESSIONID`): not movable between rules. */
  n: string;
  /** The origin holding the id. */
  o: string;
  /** The origin's own id, restored before forwarding. */
  i: string;
  /** The edge session it was issued under, when the client keeps one. */
  s?: string;
  /** A cookie's attributes (Path, Domain, Secure, HttpOnly, SameSite), to re-issue it when it is re-bound. */
  a?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Far above any sealed id a sane origin id produces; refused before any crypto. */
export const MAX_SEALED_LENGTH = 4096;

/** HKDF-SHA-256 from the snapshot secret, with its own label: the two keys are independent. */
export async function sealKeyFrom(secret: Uint8Array<ArrayBuffer>): Promise<SealKey> {
  const base = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: encoder.encode("edge-session"),
      info: encoder.encode("learned-affinity/v1"),
    },
    base,
    256,
  );
  const key = new Uint8Array(bits);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", key));
  return { kid: base64url.encode(digest.slice(0, 6)), key };
}

export async function sealLearnedId(k: SealKey, binding: LearnedBinding): Promise<string> {
  return new CompactEncrypt(encoder.encode(JSON.stringify(binding)))
    .setProtectedHeader({ alg: "dir", enc: "A256GCM", kid: k.kid })
    .encrypt(k.key);
}

function isBinding(v: unknown, rule: string): v is LearnedBinding {
  if (typeof v !== "object" || v === null) return false;
  const b = v as Record<string, unknown>;
  return (
    b.n === rule &&
    typeof b.o === "string" &&
    typeof b.i === "string" &&
    (b.s === undefined || typeof b.s === "string") &&
    (b.a === undefined || typeof b.a === "string")
  );
}

/** The binding inside a sealed id, or undefined for anything this layer did not seal for `rule` under this key. */
export async function unsealLearnedId(k: SealKey, value: string, rule: string): Promise<LearnedBinding | undefined> {
  if (value.length > MAX_SEALED_LENGTH || value.split(".").length !== 5) return undefined;
  try {
    const { plaintext } = await compactDecrypt(value, k.key, {
      keyManagementAlgorithms: ["dir"],
      contentEncryptionAlgorithms: ["A256GCM"],
    });
    const parsed: unknown = JSON.parse(decoder.decode(plaintext));
    return isBinding(parsed, rule) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
