/**
 * One chaos run: start the layer and its origins, let every scenario's clients
 * and chaos drivers loose at once for `durationMs`, lift every fault, wait out
 * the pool cache, then verify and count. Used by `npm run chaos` (long form)
 * and by test/node/chaos.test.ts (bounded form).
 */
import { ChaosClient, type ClientContext } from "./client.ts";
import { startChaosEdge } from "./edge.ts";
import { Ledger, type OutageSession } from "./ledger.ts";
import { Random, sleep } from "./random.ts";
import { type Outage, POOL_CACHE_MS, type RunContext, SCENARIOS, type Scenario, trackOutages } from "./scenarios.ts";
import { type Verified, verifyAll } from "./verify.ts";

export interface ChaosOptions {
  durationMs: number;
  /** Clients in all, shared out between the scenarios (at least two each: one API client, one browser). */
  clients: number;
  seed: number;
  /** Scenario names; default: all. */
  only?: string[];
  /** Progress lines (the long form prints them; the test stays quiet). */
  say?: (line: string) => void;
}

export interface ChaosResult {
  options: ChaosOptions;
  scenarios: Scenario[];
  clients: number;
  ledger: Ledger;
  /** Warnings and errors the Worker logged, by event. */
  logs: Map<string, number>;
  elapsedMs: number;
}

export function chooseScenarios(only: string[] | undefined): Scenario[] {
  if (!only?.length) return [...SCENARIOS];
  const unknown = only.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length)
    throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
  return SCENARIOS.filter((s) => only.includes(s.name));
}

function outageFigures(x: RunContext, verified: Verified): OutageSession[] {
  const out: OutageSession[] = [];
  // An outage lasts until every isolate has seen it lifted (the pool cache); losses before belong to the previous one.
  const over = (o: Outage | undefined) => (o?.liftedAt === undefined ? undefined : o.liftedAt + POOL_CACHE_MS);
  x.outages.forEach((outage, i) => {
    const since = over(x.outages[i - 1]) ?? 0;
    const end = over(outage) ?? x.ledger.now();
    for (const [lineage, s] of outage.exposed) {
      const lost = (verified.lost.get(lineage) ?? []).filter((a) => a.at > since && a.at <= end);
      // The loss becomes visible at the first read that misses a key (else at the final read, after the outage).
      const seenAt = Math.min(...lost.map((a) => lineage.missed.get(a.key) ?? end));
      out.push({
        scenario: s.client.scenario,
        sid: s.sid,
        homed: s.homed,
        lostWrites: lost.length,
        lostSpanMs: lost.length ? Math.max(0, seenAt - Math.min(...lost.map((a) => a.at))) : 0,
        typed503: s.typed503,
        requests: s.requests,
        recoveryMs: s.homed && s.firstOkOutside !== undefined ? s.firstOkOutside - s.from : undefined,
      });
    }
  });
  return out;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const say = o.say ?? (() => {});
  const scenarios = chooseScenarios(o.only);
  const deliveries = new Map<string, number>();
  const started = performance.now();
  say("bundling the Worker and starting workerd, three origins…");
  const edge = await startChaosEdge({
    onOriginRequest: (entry) => {
      const tag = entry.headers["x-test-tag"];
      if (entry.method === "POST" && typeof tag === "string") deliveries.set(tag, (deliveries.get(tag) ?? 0) + 1);
    },
  });
  const ledger = new Ledger();
  try {
    let stopped = false;
    const x: RunContext = {
      edge,
      ledger,
      seed: o.seed,
      stopped: () => stopped,
      endsAt: ledger.now() + o.durationMs,
      outages: [],
    };
    const ctx: ClientContext = {
      url: edge.url,
      ledger,
      excess: new Map(),
      loggedOut: [],
      onExchange: (c, lineage, ex) => trackOutages(x, c, lineage, ex),
    };
    const weights = scenarios.reduce((n, s) => n + s.weight, 0);
    const clients = scenarios.flatMap((s) =>
      Array.from({ length: Math.max(2, Math.round((o.clients * s.weight) / weights)) }, (_, i) => {
        const mode = i % 2 === 0 ? "api" : "cookie";
        const id = `${s.name}/${mode}-${Math.floor(i / 2) + 1}`;
        return new ChaosClient(id, s.name, mode, s.region, new Random(o.seed, id), ctx);
      }),
    );
    say(
      `${clients.length} clients in ${scenarios.length} scenarios for ${(o.durationMs / 1000).toFixed(0)} s (seed ${o.seed})…`,
    );

    const timer = setTimeout(() => {
      stopped = true;
    }, o.durationMs);
    const scenarioOf = new Map(scenarios.map((s) => [s.name, s]));
    const loops = clients.map(async (c) => {
      const s = scenarioOf.get(c.scenario);
      if (!s) return;
      await sleep(c.rng.between(0, 200));
      while (!stopped) await s.behave(c, x);
    });
    const drivers = scenarios.map((s) =>
      s.drive(
        x,
        clients.filter((c) => c.scenario === s.name),
      ),
    );
    const progress = setInterval(() => {
      const t = ledger.totals();
      say(`  ${(ledger.now() / 1000).toFixed(0)} s: ${t.requests} requests, ${t.writesAcked} writes acknowledged`);
    }, 10_000);
    await Promise.all([...loops, ...drivers]);
    clearTimeout(timer);
    clearInterval(progress);

    // Every fault lifted, every origin back; then the pool cache must expire everywhere before the checks.
    await Promise.all(edge.origins.map((origin) => origin.start()));
    await edge.admin("faults", { method: "DELETE" });
    ledger.event("storm over: faults cleared, origins up");
    say(`storm over; settling for ${(POOL_CACHE_MS + 1500) / 1000} s (the pool cache), then verifying…`);
    await sleep(POOL_CACHE_MS + 1500);

    const verified = await verifyAll(x, clients, ctx);
    ledger.outages.push(...outageFigures(x, verified));
    for (const [sid, e] of ctx.excess) {
      ledger.count(e.scenario, "appliedTwice", e.excess);
      ledger.problem({
        kind: "applied-twice",
        scenario: e.scenario,
        client: e.client,
        sid,
        at: e.at,
        detail: e.detail,
      });
    }
    for (const [tag, n] of deliveries) {
      if (n < 2) continue;
      const [scenario = "?"] = tag.split("/");
      ledger.count(scenario, "originDuplicates", n - 1);
      ledger.problem({
        kind: "origin-duplicate",
        scenario,
        client: tag,
        detail: `POST ${tag} reached origins ${n} times`,
      });
    }
    return {
      options: o,
      scenarios,
      clients: clients.length,
      ledger,
      logs: edge.logs,
      elapsedMs: performance.now() - started,
    };
  } finally {
    await edge.stop();
  }
}
