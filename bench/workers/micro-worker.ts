/**
 * Runs the project's own token code (src/token/) in a loop inside workerd, so
 * the figures include workerd's WebCrypto (BoringSSL) and jose as deployed.
 *
 *   GET /?op=verify|sign|sign-cached|issue&alg=EdDSA|ES256|HS256&n=2000
 *
 * answers `{ op, alg, n, workerMs }`. `workerMs` is the in-Worker clock around
 * the loop; bench/micro.ts also times the request from Node and subtracts an
 * n=0 request, which stays right where the Worker clock does not advance during
 * CPU work (as on Cloudflare's edge, a Spectre mitigation).
 */
import type { SigningJwk } from "../../src/config/schema.ts";
import {
  type AffinityClaims,
  buildKeyRing,
  ForwardedSigner,
  issueAffinityToken,
  type KeyRing,
  type TokenContext,
  verifyAffinityToken,
} from "../../src/token/index.ts";

interface MicroEnv {
  /** JSON: { "EdDSA": [jwk], "ES256": [jwk], "HS256": [jwk] } — private JWKs with a kid. */
  MICRO_KEYS: string;
}

const ISSUER = "edge-session";
const rings = new Map<string, Promise<KeyRing>>();

function ringFor(env: MicroEnv, alg: string): Promise<KeyRing> {
  let ring = rings.get(alg);
  if (!ring) {
    const keys = (JSON.parse(env.MICRO_KEYS) as Record<string, SigningJwk[] | undefined>)[alg];
    if (!keys) throw new Error(`no key for ${alg}`);
    ring = buildKeyRing(keys);
    rings.set(alg, ring);
  }
  return ring;
}

function claimsFor(nowSec: number): Omit<AffinityClaims, "iat"> {
  return {
    sid: "bench-session-0123456789ab",
    oid: "origin-1",
    ep: 1,
    ver: 1,
    reg: "enam",
    ct: nowSec,
    exp: nowSec + 1800,
  };
}

type Loop = (n: number) => Promise<void>;

/** At least the runner's iteration count (2000), so no token repeats within a timed loop. */
const DISTINCT_TOKENS = 2000;

/** Everything an op needs is made before the clock starts; the returned loop is what is timed. */
async function prepare(op: string, ctx: TokenContext): Promise<Loop> {
  const claims = claimsFor(Math.floor(Date.now() / 1000));
  const forwarded = { sid: claims.sid, oid: claims.oid, reg: claims.reg, ep: 1, data: { cart: ["tea"], n: 1 } };
  switch (op) {
    case "verify": {
      // Distinct tokens, each verified once: every call misses the isolate's verified-token cache.
      // They are issued whether n is 2000 or 0, so the Node-side difference leaves issuing out.
      // The random part matters: EdDSA and HS256 signatures are deterministic, so the same claims
      // in the same second would give the same token string as an earlier try, already cached.
      const run = crypto.randomUUID().replaceAll("-", "");
      const tokens = await Promise.all(
        Array.from({ length: DISTINCT_TOKENS }, (_, i) =>
          issueAffinityToken(ctx, { ...claims, sid: `${run}${String(i).padStart(6, "0")}` }),
        ),
      );
      return async (n) => {
        for (let i = 0; i < n; i++) {
          const verified = await verifyAffinityToken(ctx, tokens[i % tokens.length] ?? "");
          if (!verified.ok) throw new Error(`verification failed: ${verified.code}`);
        }
      };
    }
    case "verify-cached": {
      // One token again and again: what a sticky client's later requests cost.
      const token = await issueAffinityToken(ctx, claims);
      await verifyAffinityToken(ctx, token);
      return async (n) => {
        for (let i = 0; i < n; i++) {
          const verified = await verifyAffinityToken(ctx, token);
          if (!verified.ok) throw new Error(`verification failed: ${verified.code}`);
        }
      };
    }
    case "sign": {
      // A distinct version on every call: a cache miss, so every call signs.
      const signer = new ForwardedSigner(ctx.keys, ISSUER, `${ISSUER}:origin`);
      return async (n) => {
        for (let i = 0; i < n; i++) await signer.sign({ ...forwarded, ver: i + 1 });
      };
    }
    case "sign-cached": {
      const signer = new ForwardedSigner(ctx.keys, ISSUER, `${ISSUER}:origin`);
      await signer.sign({ ...forwarded, ver: 1 });
      return async (n) => {
        for (let i = 0; i < n; i++) await signer.sign({ ...forwarded, ver: 1 });
      };
    }
    case "issue":
      return async (n) => {
        for (let i = 0; i < n; i++) await issueAffinityToken(ctx, claims);
      };
    default:
      throw new Error(`unknown op ${op}`);
  }
}

export default {
  async fetch(request: Request, env: MicroEnv): Promise<Response> {
    const url = new URL(request.url);
    const op = url.searchParams.get("op") ?? "verify";
    const alg = url.searchParams.get("alg") ?? "EdDSA";
    const n = Number(url.searchParams.get("n") ?? "1000");
    try {
      const keys = await ringFor(env, alg);
      const ctx: TokenContext = { keys, issuer: ISSUER, audience: `${ISSUER}:affinity` };
      const loop = await prepare(op, ctx);
      const t0 = performance.now();
      await loop(n);
      const workerMs = performance.now() - t0;
      return Response.json({ op, alg, n, workerMs });
    } catch (e) {
      return Response.json({ error: String(e) }, { status: 500 });
    }
  },
} satisfies ExportedHandler<MicroEnv>;
