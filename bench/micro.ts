/**
 * Micro-figures: the cost of one affinity-token verification and one
 * forwarded-header signature, per algorithm, measured by tinybench inside
 * workerd (bench/workers/micro-worker.ts) on the project's own token code.
 * Local figures: Cloudflare's edge keeps the Worker's clock still during pure
 * CPU work, so there they could not be taken this way at all.
 */
import type { JWK } from "jose";
import { generateSigningKey } from "./keys.ts";
import { SIGNING_ALGS, type SigningAlg } from "./options.ts";
import type { RunningWorker } from "./workers.ts";

export const MICRO_OPS = [
  { op: "verify", label: "verify affinity token, first sight (verifyAffinityToken)" },
  { op: "verify-cached", label: "verify affinity token, seen before (isolate cache)" },
  { op: "sign", label: "sign forwarded header, cache miss (ForwardedSigner.sign)" },
  { op: "sign-cached", label: "forwarded header, cache hit (ForwardedSigner.sign)" },
  { op: "issue", label: "issue affinity token (issueAffinityToken)" },
] as const;
export type MicroOp = (typeof MICRO_OPS)[number]["op"];

export interface MicroFigure {
  op: MicroOp;
  alg: SigningAlg;
  /** Calls timed (after tinybench's warm-up). */
  iterations: number;
  /** Microseconds per call (mean) and the margin of error of that mean (95 %). */
  usPerOp: number;
  moeUs: number;
}

/** The MICRO_KEYS binding: one private key of each algorithm. */
export async function microKeys(): Promise<string> {
  const keys: Record<string, JWK[]> = {};
  for (const alg of SIGNING_ALGS) keys[alg] = [await generateSigningKey(alg)];
  return JSON.stringify(keys);
}

export async function runMicro(worker: RunningWorker, samples: number): Promise<MicroFigure[]> {
  const figures: MicroFigure[] = [];
  for (const alg of SIGNING_ALGS)
    for (const { op } of MICRO_OPS) {
      const res = await fetch(`${worker.url}/?op=${op}&alg=${alg}&batch=100&samples=${samples}`);
      const body = (await res.json()) as { calls?: number; usPerCall?: number; moeUs?: number; error?: string };
      if (!res.ok || body.usPerCall === undefined) throw new Error(`micro ${op}/${alg}: ${body.error ?? res.status}`);
      figures.push({ op, alg, iterations: body.calls ?? 0, usPerOp: body.usPerCall, moeUs: body.moeUs ?? Number.NaN });
    }
  return figures;
}
