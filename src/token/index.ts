import { base64url } from "jose";

export {
  AFFINITY_TYP,
  type AffinityClaims,
  type AffinityVerification,
  issueAffinityToken,
  MAX_TOKEN_LENGTH,
  SESSION_ID,
  type TokenContext,
  type TokenRejection,
  verifyAffinityToken,
} from "./affinity.ts";
export { FORWARDED_TTL, FORWARDED_TYP, type ForwardedClaims, ForwardedSigner } from "./forwarded.ts";
export { buildKeyRing, generateDevelopmentKeys, type KeyRing, type SigningAlgorithm, type SigningKey } from "./keys.ts";

/** 144 random bits, base64url (RFC 8725 does not ask this; OWASP asks for at least 64 bits of entropy). */
export function newSessionId(): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(18)));
}
