/**
 * Durable Object requests per client request, counted rather than inferred: the
 * scenario runs against the real Worker behind the counting shim
 * (bench/workers/counting/entry.ts), once with the read cache on and once strict,
 * and every RPC and alarm its session objects and the pool object received is
 * summed over the measured requests.
 */

import { runLoad } from "./load.ts";
import type { Scenario, Targets } from "./scenarios.ts";
import type { Counts } from "./workers/counting/counts.ts";

export interface ObjectCallFigure {
  id: string;
  label: string;
  requests: number;
  /** Calls received by session objects (read, write, adopt, alarm…), per client request. */
  sessionCallsPerRequest: number;
  /** Calls received by the pool object, per client request. */
  poolCallsPerRequest: number;
  byMethod: Record<string, number>;
}

interface CountsReport {
  sessions: Record<string, Counts>;
  pool: Record<string, number>;
}

async function counts(edge: string, method: "GET" | "DELETE"): Promise<CountsReport | undefined> {
  const res = await fetch(`${edge}/__bench/counts`, { method });
  if (method === "DELETE") {
    await res.arrayBuffer();
    return undefined;
  }
  return (await res.json()) as CountsReport;
}

export async function countObjectCalls(
  scenarios: Scenario[],
  targets: Targets,
  seconds: number,
  connections: number,
): Promise<ObjectCallFigure[]> {
  const out: ObjectCallFigure[] = [];
  for (const scenario of scenarios) {
    const prepared = await scenario.prepare(targets);
    const edge = new URL(prepared.spec.url).origin;
    const spec = { ...prepared.spec, connections: scenario.connections ?? connections };
    // Warm: every session's copy is in memory, as in the steady state being counted.
    await runLoad({ ...spec, duration: 1 });
    await prepared.warm?.();
    await new Promise((r) => setTimeout(r, 500));
    await counts(edge, "DELETE");
    const result = await runLoad({ ...spec, duration: seconds });
    // Background reads started by the last requests land just after them.
    await new Promise((r) => setTimeout(r, 500));
    const report = await counts(edge, "GET");
    const byMethod: Record<string, number> = {};
    let session = 0;
    for (const c of Object.values(report?.sessions ?? {}))
      for (const [method, n] of Object.entries(c.objectCalls)) {
        byMethod[method] = (byMethod[method] ?? 0) + n;
        session += n;
      }
    const pool = Object.entries(report?.pool ?? {})
      .filter(([method]) => !method.startsWith("kv."))
      .reduce((a, [, n]) => a + n, 0);
    out.push({
      id: scenario.id,
      label: scenario.label,
      requests: result.requests,
      sessionCallsPerRequest: session / Math.max(1, result.requests),
      poolCallsPerRequest: pool / Math.max(1, result.requests),
      byMethod,
    });
  }
  return out;
}
