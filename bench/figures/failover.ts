/**
 * Figures: what an origin's death costs a session.
 *
 * (a) Added latency of the request that fails over. Each repetition makes a
 *     new session with stored state, times normal GETs on it, then really
 *     closes its origin (listening socket and connections) and times the next
 *     GET: connection refused → session re-pinned in its Durable Object →
 *     retried on the other origin. The origin comes back before the next
 *     repetition, which uses a new session.
 * (b) Requests failed while an origin dies under steady load: `clients`
 *     closed-loop clients, one sticky session each (spread over both origins
 *     by the layer), alternating GET / and POST /write; one origin is closed
 *     `killAt` seconds in and stays down.
 */
import type { BenchOrigin } from "../origin.ts";
import { Client, sleep } from "./client.ts";
import { median, percentile } from "./stats.ts";

export interface FailoverLatency {
  repetitions: number;
  normalMs: number[];
  failoverMs: number[];
  /** `reason` the new origin saw in X-Edge-Session on the failover request, with counts. */
  reasons: Record<string, number>;
  /** Failover requests not answered 200, or not moved to the other origin. */
  problems: string[];
}

export interface FailoverLoad {
  clients: number;
  seconds: number;
  killAt: number;
  sessionsOnKilled: number;
  requests: Record<string, number>;
  failed: { method: string; status: number; code: string; afterKillMs: number }[];
  /** Requests each method reached any origin (both origins' receipts). */
  received: Record<string, number>;
  /** Requests answered 2xx, by method. */
  answered: Record<string, number>;
}

const originIndex = (oid: unknown) => Number(String(oid).replace("origin-", "")) - 1;

export async function failoverLatency(
  edge: string,
  origin: BenchOrigin,
  repetitions: number,
): Promise<FailoverLatency> {
  const out: FailoverLatency = { repetitions, normalMs: [], failoverMs: [], reasons: {}, problems: [] };
  for (let rep = 0; rep < repetitions; rep++) {
    const c = await new Client(edge).stored({ rep });
    const before = c.claims().oid;
    for (let i = 0; i < 10; i++) out.normalMs.push((await c.ok("/")).ms);
    const index = originIndex(before);
    await origin.close(index);
    try {
      const r = await c.request("/session");
      out.failoverMs.push(r.ms);
      const seen = r.status === 200 ? (JSON.parse(r.body) as Record<string, unknown>) : {};
      const reason = String(seen.reason ?? "none");
      out.reasons[reason] = (out.reasons[reason] ?? 0) + 1;
      if (r.status !== 200) out.problems.push(`repetition ${rep}: the failover request answered ${r.status}`);
      else if (c.claims().oid === before || seen.prev_oid !== before)
        out.problems.push(`repetition ${rep}: the session did not move off ${String(before)}`);
      // It stays on its new origin.
      await c.ok("/");
    } finally {
      await origin.open(index);
    }
  }
  return out;
}

function errorCode(body: string): string {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? "-";
  } catch {
    return "-";
  }
}

export async function failoverUnderLoad(
  edge: string,
  origin: BenchOrigin,
  o: { clients: number; seconds: number; killAt: number },
): Promise<FailoverLoad> {
  const clients = await Promise.all(
    Array.from({ length: o.clients }, (_, i) => new Client(edge).stored({ client: i })),
  );
  const placement = clients.map((c) => originIndex(c.claims().oid));
  // The origin with the most sessions dies (the layer spreads them evenly: either one).
  const killed = placement.filter((p) => p === 0).length >= placement.filter((p) => p === 1).length ? 0 : 1;
  await origin.resetReceived();
  const out: FailoverLoad = {
    clients: o.clients,
    seconds: o.seconds,
    killAt: o.killAt,
    sessionsOnKilled: placement.filter((p) => p === killed).length,
    requests: {},
    failed: [],
    received: {},
    answered: {},
  };
  const started = performance.now();
  const end = started + o.seconds * 1000;
  let killedAt = Number.POSITIVE_INFINITY;
  const loop = async (c: Client, i: number) => {
    for (let n = i % 2; performance.now() < end; n++) {
      const method = n % 2 ? "POST" : "GET";
      out.requests[method] = (out.requests[method] ?? 0) + 1;
      const sentAt = performance.now();
      try {
        const r = await c.request(method === "POST" ? "/write" : "/", { method });
        if (r.status >= 200 && r.status < 300) out.answered[method] = (out.answered[method] ?? 0) + 1;
        else out.failed.push({ method, status: r.status, code: errorCode(r.body), afterKillMs: sentAt - killedAt });
      } catch (e) {
        out.failed.push({ method, status: 0, code: String(e), afterKillMs: sentAt - killedAt });
      }
    }
  };
  const kill = (async () => {
    await sleep(o.killAt * 1000);
    killedAt = performance.now();
    await origin.close(killed);
  })();
  await Promise.all([...clients.map(loop), kill]);
  for (const byMethod of await origin.received())
    for (const [m, n] of Object.entries(byMethod)) out.received[m] = (out.received[m] ?? 0) + n;
  await origin.open(killed);
  return out;
}

export function failoverSummary(l: FailoverLatency) {
  return {
    normalP50: median(l.normalMs),
    normalP90: percentile(l.normalMs, 0.9),
    failoverP50: median(l.failoverMs),
    failoverP90: percentile(l.failoverMs, 0.9),
  };
}
