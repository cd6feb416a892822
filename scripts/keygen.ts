/**
 * Prints a private JWK Set for SESSION_SIGNING_KEYS.
 *
 *   npm run keygen                      # one Ed25519 key
 *   npm run keygen -- --alg ES256       # one P-256 key
 *   npm run keygen -- --add "$OLD_SET"  # a new key in front of an existing set (rotation: see docs/keys.md)
 *
 * Then: npm run keygen | npx wrangler secret put SESSION_SIGNING_KEYS
 */
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair, type JWK } from "jose";

const { values } = parseArgs({
  options: { alg: { type: "string", default: "EdDSA" }, add: { type: "string" }, kid: { type: "string" } },
});

const alg = values.alg === "ES256" ? "ES256" : values.alg === "EdDSA" ? "EdDSA" : undefined;
if (!alg) {
  console.error(`--alg must be EdDSA or ES256 (got ${values.alg})`);
  process.exit(2);
}
const { privateKey } = await generateKeyPair(alg, {
  extractable: true,
  ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
});
const kid =
  values.kid ??
  `${alg === "EdDSA" ? "ed" : "es"}-${new Date().toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 6)}`;
const key: JWK = { ...(await exportJWK(privateKey)), kid, alg };
const existing = values.add ? ((JSON.parse(values.add) as { keys: JWK[] }).keys ?? []) : [];
process.stdout.write(`${JSON.stringify({ keys: [key, ...existing] })}\n`);
