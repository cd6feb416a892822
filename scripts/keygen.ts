/**
 * Prints a private JWK Set for SESSION_SIGNING_KEYS, and edits one for a rotation
 * (docs/keys.md). Use `npm run --silent keygen` in pipes: without --silent, npm
 * prints its own banner on standard output first.
 *
 *   npm run --silent keygen                            # one new Ed25519 key
 *   npm run --silent keygen -- --alg ES256             # one new P-256 key
 *   npm run --silent keygen -- --append "$SET"         # phase 1: a new key last (published, not signing)
 *   npm run --silent keygen -- --promote KID --set "$SET"   # phase 2: KID first (it signs)
 *   npm run --silent keygen -- --remove KID --set "$SET"    # phase 3: KID gone
 *
 * Then: … | npx wrangler secret put SESSION_SIGNING_KEYS
 */
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair, type JWK } from "jose";

const { values } = parseArgs({
  options: {
    alg: { type: "string", default: "EdDSA" },
    kid: { type: "string" },
    append: { type: "string" },
    add: { type: "string" },
    promote: { type: "string" },
    remove: { type: "string" },
    set: { type: "string" },
  },
});

function fail(message: string): never {
  console.error(`keygen: ${message}`);
  process.exit(2);
}

function parseSet(raw: string | undefined, flag: string): JWK[] {
  if (!raw) fail(`${flag} needs a key set`);
  try {
    const keys = (JSON.parse(raw) as { keys?: JWK[] }).keys;
    if (!Array.isArray(keys)) throw new Error("no keys array");
    return keys;
  } catch (e) {
    return fail(`${flag}: not a JWK Set (${(e as Error).message})`);
  }
}

async function newKey(): Promise<JWK> {
  const alg =
    values.alg === "ES256"
      ? "ES256"
      : values.alg === "EdDSA"
        ? "EdDSA"
        : fail(`--alg must be EdDSA or ES256 (got ${values.alg})`);
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
  });
  const kid =
    values.kid ??
    `${alg === "EdDSA" ? "ed" : "es"}-${new Date().toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 6)}`;
  return { ...(await exportJWK(privateKey)), kid, alg };
}

function move(keys: JWK[], kid: string, to: "first" | "gone"): JWK[] {
  const key = keys.find((k) => k.kid === kid);
  if (!key) fail(`no key "${kid}" in the set (kids: ${keys.map((k) => k.kid).join(", ")})`);
  const rest = keys.filter((k) => k.kid !== kid);
  if (to === "gone" && rest.length === 0) fail("removing the last key would leave nothing to sign with");
  return to === "first" ? [key, ...rest] : rest;
}

let keys: JWK[];
if (values.promote) keys = move(parseSet(values.set, "--promote"), values.promote, "first");
else if (values.remove) keys = move(parseSet(values.set, "--remove"), values.remove, "gone");
else if (values.append) keys = [...parseSet(values.append, "--append"), await newKey()];
else if (values.add) keys = [await newKey(), ...parseSet(values.add, "--add")];
else keys = [await newKey()];
process.stdout.write(`${JSON.stringify({ keys })}\n`);
