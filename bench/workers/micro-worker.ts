/**
 * Runs the project's own token code (src/token/) under tinybench inside workerd,
 * so the figures include workerd's WebCrypto (BoringSSL) and jose as deployed.
 *
 *   GET /?op=verify|verify-cached|sign|sign-cached|issue&alg=EdDSA|ES256|HS256&batch=100&samples=20
 *
 * answers `{ op, alg, calls, usPerCall, moeUs }`. Each tinybench sample times
 * `batch` calls: workerd's clock moves in whole milliseconds, too coarse for one
 * call of tens of microseconds. The Worker's clock is the one read: under local
 * workerd it advances during CPU work; on Cloudflare's edge it does not (a
 * Spectre mitigation), so these are local figures by design.
 */
import { Bench } from "tinybench";
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

type Once = () => Promise<void>;

/** More than tinybench's warm-up plus its samples, in calls, so no token repeats within a run. */
const DISTINCT_TOKENS = 2600;

/** Everything an op needs is made before the clock starts; the returned call is what is timed. */
async function prepare(op: string, ctx: TokenContext): Promise<Once> {
  const claims = claimsFor(Math.floor(Date.now() / 1000));
  const forwarded = { sid: claims.sid, oid: claims.oid, reg: claims.reg, ep: 1, data: { cart: ["tea"], n: 1 } };
  let i = 0;
  switch (op) {
    case "verify": {
      // Distinct tokens, each verified once: every call misses the isolate's verified-token cache.
      // The random part matters: EdDSA and HS256 signatures are deterministic, so the same claims
      // in the same second would give the same token string as an earlier run, already cached.
      const run = crypto.randomUUID().replaceAll("-", "");
      const tokens = await Promise.all(
        Array.from({ length: DISTINCT_TOKENS }, (_, k) =>
          issueAffinityToken(ctx, { ...claims, sid: `${run}${String(k).padStart(6, "0")}` }),
        ),
      );
      return async () => {
        const verified = await verifyAffinityToken(ctx, tokens[i++ % tokens.length] ?? "");
        if (!verified.ok) throw new Error(`verification failed: ${verified.code}`);
      };
    }
    case "verify-cached": {
      // One token again and again: what a sticky client's later requests cost.
      const token = await issueAffinityToken(ctx, claims);
      await verifyAffinityToken(ctx, token);
      return async () => {
        const verified = await verifyAffinityToken(ctx, token);
        if (!verified.ok) throw new Error(`verification failed: ${verified.code}`);
      };
    }
    case "sign": {
      // A distinct version on every call: a cache miss, so every call signs.
      const signer = new ForwardedSigner(ctx.keys, ISSUER, `${ISSUER}:origin`);
      return async () => {
        await signer.sign({ ...forwarded, ver: ++i });
      };
    }
    case "sign-cached": {
      const signer = new ForwardedSigner(ctx.keys, ISSUER, `${ISSUER}:origin`);
      await signer.sign({ ...forwarded, ver: 1 });
      return async () => {
        await signer.sign({ ...forwarded, ver: 1 });
      };
    }
    case "issue":
      return async () => {
        await issueAffinityToken(ctx, claims);
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
    const batch = Math.max(1, Math.min(100, Number(url.searchParams.get("batch") ?? "100")));
    const samples = Math.max(2, Math.min(24, Number(url.searchParams.get("samples") ?? "20")));
    try {
      const keys = await ringFor(env, alg);
      const ctx: TokenContext = { keys, issuer: ISSUER, audience: `${ISSUER}:affinity` };
      const once = await prepare(op, ctx);
      // A fixed number of samples (time 0): the distinct-token pool bounds how many calls a run may make.
      const bench = new Bench({ iterations: samples, time: 0, warmupIterations: 2, warmupTime: 0 });
      bench.add(op, async () => {
        for (let k = 0; k < batch; k++) await once();
      });
      await bench.run();
      const result = bench.tasks[0]?.result;
      if (result?.state !== "completed") throw new Error(`tinybench: ${result?.state ?? "no task"}`);
      const { latency } = result;
      return Response.json({
        op,
        alg,
        calls: latency.samplesCount * batch,
        usPerCall: (latency.mean * 1000) / batch,
        moeUs: (latency.moe * 1000) / batch,
      });
    } catch (e) {
      return Response.json({ error: String(e) }, { status: 500 });
    }
  },
} satisfies ExportedHandler<MicroEnv>;
