/**
 * Micro-figures: the cost of one affinity-token verification and one
 * forwarded-header signature, per algorithm, measured inside workerd by
 * bench/workers/micro-worker.ts.
 *
 * Timing: Cloudflare's edge stops `Date.now()`/`performance.now()` from
 * advancing during pure CPU work (a Spectre mitigation), so an in-Worker clock
 * around a loop could read 0 there. The primary figure is therefore taken from
 * Node: the wall time of a request that runs the loop n times, less that of the
 * same request with n = 0, divided by n (the median of several tries of each).
 * The in-Worker clock is reported beside it; under local workerd it does
 * advance, and the two agree, which is how this method was checked.
 */
import type { JWK } from "jose";
import { median } from "./figures/stats.ts";
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
  iterations: number;
  /** Microseconds per operation, from Node's clock (n-iteration request less an empty one). */
  usPerOp: number;
  /** Microseconds per operation by the Worker's own clock around the loop. */
  workerUsPerOp: number;
}

/** The MICRO_KEYS binding: one private key of each algorithm. */
export async function microKeys(): Promise<string> {
  const keys: Record<string, JWK[]> = {};
  for (const alg of SIGNING_ALGS) keys[alg] = [await generateSigningKey(alg)];
  return JSON.stringify(keys);
}

async function timed(worker: RunningWorker, op: MicroOp, alg: SigningAlg, n: number) {
  const url = `${worker.url}/?op=${op}&alg=${alg}&n=${n}`;
  const t0 = performance.now();
  const res = await fetch(url);
  const body = (await res.json()) as { workerMs?: number; error?: string };
  const wallMs = performance.now() - t0;
  if (!res.ok || body.workerMs === undefined) throw new Error(`micro ${op}/${alg}: ${body.error ?? res.status}`);
  return { wallMs, workerMs: body.workerMs };
}

export async function runMicro(worker: RunningWorker, iterations: number, tries = 5): Promise<MicroFigure[]> {
  const figures: MicroFigure[] = [];
  for (const alg of SIGNING_ALGS) {
    for (const { op } of MICRO_OPS) {
      await timed(worker, op, alg, Math.min(200, iterations)); // warm-up: JIT, key import
      const empty: number[] = [];
      const full: number[] = [];
      const inWorker: number[] = [];
      for (let i = 0; i < tries; i++) {
        empty.push((await timed(worker, op, alg, 0)).wallMs);
        const run = await timed(worker, op, alg, iterations);
        full.push(run.wallMs);
        inWorker.push(run.workerMs);
      }
      figures.push({
        op,
        alg,
        iterations,
        usPerOp: ((median(full) - median(empty)) * 1000) / iterations,
        workerUsPerOp: (median(inWorker) * 1000) / iterations,
      });
    }
  }
  return figures;
}
