/** Key sets for tests, generated fresh in Node with jose (the same library the layer uses). */
import { exportJWK, generateKeyPair, type JWK } from "jose";

export interface TestKeys {
  /** Ed25519 signs; ES256 and HS256 also verify. */
  mixed: string;
  es256: string;
  hs256: string;
  /** A second Ed25519 key under the same kid as mixed's first key: "another key under the same kid". */
  impostor: string;
  /** The public JWK of mixed's signer, for forging HS256-with-public-key tokens. */
  edPublic: JWK;
}

async function pair(alg: "EdDSA" | "ES256", kid: string): Promise<{ priv: JWK; pub: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
  });
  return { priv: { ...(await exportJWK(privateKey)), kid }, pub: { ...(await exportJWK(publicKey)), kid } };
}

function secret(kid: string): JWK {
  const k = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  return { kty: "oct", k, kid };
}

export async function generateTestKeys(): Promise<TestKeys> {
  const ed = await pair("EdDSA", "ed-1");
  const es = await pair("ES256", "es-1");
  const hs = secret("hs-1");
  const impostor = await pair("EdDSA", "ed-1");
  return {
    mixed: JSON.stringify({ keys: [ed.priv, es.priv, hs] }),
    es256: JSON.stringify({ keys: [es.priv] }),
    hs256: JSON.stringify({ keys: [hs] }),
    impostor: JSON.stringify({ keys: [impostor.priv] }),
    edPublic: ed.pub,
  };
}
