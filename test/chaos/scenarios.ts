/**
 * The scenarios: each is a group of clients, living in regions of their own,
 * with what they do (behave) and the chaos done to them meanwhile (drive). All
 * scenarios run at the same time, so the layer sees every kind of trouble at
 * once; a problem is counted in the scenario of the client that saw it, and the
 * timeline of chaos actions says what was going on.
 */
import type { ChaosClient, Lineage } from "./client.ts";
import type { AdminAnswer, ChaosEdge } from "./edge.ts";
import type { Ledger } from "./ledger.ts";
import { Random, sleep } from "./random.ts";
import { documentedCodes, type Exchange } from "./wire.ts";

/** The layer's default: how long an isolate may keep its view of faults and drains. */
export const POOL_CACHE_MS = 3000;

export interface Outage {
  region: string;
  at: number;
  liftedAt?: number;
  /** Lineages homed in the region when it went down. */
  /** The region-outage group's sessions that were used while the outage lasted, and any session seen in the region then. */
  exposed: Map<Lineage, OutageExposure>;
}

export interface OutageExposure {
  client: ChaosClient;
  sid: string;
  /** Seen living in the downed region (at the fault, or later): its recovery is timed from `from`. */
  homed: boolean;
  from: number;
  requests: number;
  firstOkOutside?: number;
  typed503: number;
}

export interface RunContext {
  edge: ChaosEdge;
  ledger: Ledger;
  seed: number;
  stopped(): boolean;
  /** When the storm ends (ms on the ledger's clock): a driver starts nothing it could not finish by then. */
  endsAt: number;
  outages: Outage[];
}

export interface Scenario {
  name: string;
  /** Its share of the clients, relative to the others'. */
  weight: number;
  /** Where its clients say they are (X-Edge-Dev-Region) when they start. */
  region: string;
  about: string;
  behave(c: ChaosClient, x: RunContext): Promise<void>;
  drive(x: RunContext, clients: ChaosClient[]): Promise<void>;
}

/** An operator call, counted by route and status; a 5xx other than a documented 503 with Retry-After is a failure. */
async function operator(
  x: RunContext,
  scenario: string,
  label: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<AdminAnswer | undefined> {
  let answer: AdminAnswer;
  try {
    answer = await x.edge.admin(path, init);
  } catch (e) {
    x.ledger.operatorCall(`${label} (no answer)`);
    x.ledger.problem({ kind: "bad-5xx", scenario, client: "operator", detail: `${label}: ${(e as Error).message}` });
    return undefined;
  }
  const code = (answer.body as { error?: { code?: string } } | undefined)?.error?.code ?? "";
  x.ledger.operatorCall(`${label} ${answer.status}${code ? ` ${code}` : ""}`);
  if (answer.status >= 500) {
    const retryAfter = answer.headers.get("retry-after");
    const allowed = answer.status === 503 && !!retryAfter && documentedCodes().has(code);
    x.ledger.answer5xx(
      `operator ${label}: ${answer.status} ${code || "(no code)"}${retryAfter ? "" : " (no Retry-After)"}`,
      allowed,
    );
    if (!allowed)
      x.ledger.problem({
        kind: "bad-5xx",
        scenario,
        client: "operator",
        detail: `${label} ${path} → ${answer.status} ${code}: ${answer.text.slice(0, 160)}`,
      });
  }
  return answer;
}

/** Write a key, read it back. */
async function writeAndRead(c: ChaosClient, delayMs = 0): Promise<void> {
  await c.write(undefined, delayMs);
  await c.read();
  await sleep(c.rng.between(0, 15));
}

async function idle(x: RunContext): Promise<void> {
  while (!x.stopped()) await sleep(100);
}

const withSid = (clients: ChaosClient[]) => clients.filter((c) => c.sid !== undefined);

const migrate: Scenario = {
  name: "migrate",
  weight: 1,
  region: "weur",
  about: "operator migrations of single sessions between weur and eeur, several at once, sometimes two of one session",
  behave: (c) => writeAndRead(c),
  async drive(x, clients) {
    const rng = new Random(x.seed, "drive:migrate");
    while (!x.stopped()) {
      const picks = new Set<ChaosClient>();
      for (let i = rng.between(1, 3); i > 0; i--) {
        const c = rng.pick(withSid(clients));
        if (c) picks.add(c);
      }
      const calls: Promise<unknown>[] = [];
      for (const c of picks) {
        const to = c.home === "weur" ? "eeur" : "weur";
        calls.push(
          operator(x, "migrate", "migrate", `sessions/${c.sid}/migrate`, { method: "POST", body: { region: to } }),
        );
        if (rng.chance(0.25))
          calls.push(
            operator(x, "migrate", "migrate", `sessions/${c.sid}/migrate`, {
              method: "POST",
              body: { region: to === "weur" ? "eeur" : "weur" },
            }),
          );
      }
      x.ledger.event(`migrate: ${[...picks].map((c) => c.sid?.slice(0, 8)).join(", ")}`);
      await Promise.all(calls);
      await sleep(rng.between(150, 400));
    }
  },
};

const evacuate: Scenario = {
  name: "evacuate",
  weight: 1,
  region: "apac",
  about: "region evacuations apac → oc → apac … while the sessions are written",
  behave: (c) => writeAndRead(c),
  async drive(x) {
    const rng = new Random(x.seed, "drive:evacuate");
    let from = "apac";
    await sleep(rng.between(500, 900)); // sessions need a first snapshot to be found
    while (!x.stopped()) {
      const to = from === "apac" ? "oc" : "apac";
      const answer = await operator(x, "evacuate", "evacuate", `regions/${from}/evacuate`, {
        method: "POST",
        body: { to },
      });
      const lines = (answer?.text ?? "").split("\n").filter(Boolean);
      const summary = lines.at(-1) ?? "";
      x.ledger.event(`evacuate ${from} → ${to}: ${summary.slice(0, 120)}`);
      if (answer && answer.status === 200 && !/"done":true/.test(summary))
        x.ledger.problem({
          kind: "bad-5xx",
          scenario: "evacuate",
          client: "operator",
          detail: `evacuation of ${from} did not finish: ${summary.slice(0, 160)}`,
        });
      from = to;
      await sleep(rng.between(500, 1100));
    }
  },
};

const autoMigrate: Scenario = {
  name: "auto-migrate",
  weight: 1,
  region: "sam",
  about: "clients that travel between sam and afr every ~2 s, so their sessions migrate automatically",
  async behave(c) {
    const flip = c.memo.flipAt ?? 0;
    const now = performance.now();
    if (now >= flip) {
      if (flip) c.region = c.region === "sam" ? "afr" : "sam";
      c.memo.flipAt = now + c.rng.between(1500, 2500);
    }
    await writeAndRead(c);
  },
  drive: idle,
};

/**
 * A region goes down (the injected fault, which isolates see within the pool
 * cache's delay) and comes back. Before each outage, a third of the group's
 * sessions are migrated out (their users travelled); during it, each of those
 * gets one request through its pre-migration token, as a second device left
 * idle since then would send. Clients start new sessions (and log in) all along.
 */
const regionOutage: Scenario = {
  name: "region-outage",
  weight: 2,
  region: "me",
  about:
    "region me down and back (real pool cache delay); new sessions and logins during it; stale tokens of sessions moved out",
  async behave(c) {
    const lineage = c.current;
    if (lineage.acked.size === 0 && lineage.sub === undefined && lineage.unacked.size === 0) {
      await c.login(false);
      await c.read();
      return;
    }
    await writeAndRead(c);
    if (c.canStartOver && c.rng.chance(0.05)) c.abandon();
  },
  async drive(x, clients) {
    const rng = new Random(x.seed, "drive:region-outage");
    const region = "me";
    const outageMs = POOL_CACHE_MS + 1500;
    // Sessions with something stored, most of the group's: else an outage on a slow machine hits nobody.
    const ready = () => clients.filter((c) => c.current.acked.size >= 2).length >= Math.ceil(clients.length * 0.75);
    // The first outage always happens (the bounded run is about it); later ones only if they fit in the storm.
    for (let cycle = 0; !x.stopped() && (cycle === 0 || x.endsAt - x.ledger.now() >= outageMs + 1500); cycle++) {
      const readyBy = x.ledger.now() + Math.max(1000, (x.endsAt - x.ledger.now()) * 0.3);
      while (!ready() && x.ledger.now() < readyBy && !x.stopped()) await sleep(50);
      // A third of them travel (their sessions migrate out); the rest stay and live through the outage.
      const travellers = withSid(clients.filter((c) => c.region === region && c.home === region)).filter(
        (_, i) => i % 3 === 0,
      );
      const stale: { c: ChaosClient; token: string }[] = [];
      await Promise.all(
        travellers.map(async (c) => {
          const token = c.current.token;
          const a = await operator(x, "region-outage", "migrate", `sessions/${c.sid}/migrate`, {
            method: "POST",
            body: { region: "eeur" },
          });
          if (a?.status === 200 && token) {
            c.region = "eeur";
            stale.push({ c, token });
          }
        }),
      );
      x.ledger.event(`region-outage: ${stale.length} sessions moved me → eeur`);
      await sleep(rng.between(500, 800));
      const outage: Outage = { region, at: x.ledger.now(), exposed: new Map() };
      for (const c of clients)
        if (c.home === region && c.sid)
          outage.exposed.set(c.current, {
            client: c,
            sid: c.sid,
            homed: true,
            from: outage.at,
            requests: 0,
            typed503: 0,
          });
      x.outages.push(outage);
      await operator(x, "region-outage", "fault down", "faults", {
        method: "POST",
        body: { target: `region:${region}`, mode: "down" },
      });
      x.ledger.event(`region ${region} DOWN (${outage.exposed.size} sessions homed there)`);
      // Stale tokens, one each, spread over the outage (once the isolates have seen it).
      const probes = stale.map(async ({ c, token }) => {
        await sleep(rng.between(POOL_CACHE_MS, outageMs - 200));
        await c.request({ method: "GET", path: "/chaos/stale-read" }, token);
      });
      await Promise.all([sleep(outageMs), ...probes]);
      await operator(x, "region-outage", "fault clear", "faults", { method: "DELETE" });
      outage.liftedAt = x.ledger.now();
      x.ledger.event(`region ${region} back`);
      for (const c of clients) c.region = region;
      await sleep(rng.between(800, 1200));
    }
  },
};

const originKill: Scenario = {
  name: "origin-kill",
  weight: 1,
  region: "enam",
  about: "one origin at a time stopped mid-request (connections dropped) and restarted",
  behave: (c) => writeAndRead(c, c.rng.between(0, 120)),
  async drive(x) {
    const rng = new Random(x.seed, "drive:origin-kill");
    while (!x.stopped()) {
      await sleep(rng.between(1000, 2500));
      const origin = rng.pick(x.edge.origins);
      if (!origin || x.stopped()) break;
      await origin.stop();
      x.ledger.event(`origin ${origin.id} killed`);
      await sleep(rng.between(500, 1200));
      await origin.start();
      x.ledger.event(`origin ${origin.id} restarted`);
    }
  },
};

/** Logins raced by the client's own requests with the pre-login token, logouts, and migrations under both. */
const loginRace: Scenario = {
  name: "login-race",
  weight: 1.5,
  region: "enam",
  about: "logins raced by requests carrying the pre-login token; logouts; operator migrations meanwhile",
  async behave(c) {
    const step = (c.memo.step ?? 0) % 9;
    c.memo.step = step + 1;
    if (step === 2) {
      await c.login(true);
      await c.read();
    } else if (step === 6 && c.canStartOver) {
      if (c.rng.chance(0.6)) await c.logout();
      else c.abandon();
    } else await writeAndRead(c);
  },
  async drive(x, clients) {
    const rng = new Random(x.seed, "drive:login-race");
    while (!x.stopped()) {
      const c = rng.pick(withSid(clients));
      if (c) {
        const to = c.home === "eeur" ? "enam" : "eeur";
        x.ledger.event(`login-race: migrate ${c.sid?.slice(0, 8)} → ${to}`);
        await operator(x, "login-race", "migrate", `sessions/${c.sid}/migrate`, {
          method: "POST",
          body: { region: to },
        });
      }
      await sleep(rng.between(200, 500));
    }
  },
};

export const SCENARIOS: readonly Scenario[] = [migrate, evacuate, autoMigrate, regionOutage, originKill, loginRace];

/**
 * Outage bookkeeping, fed every exchange while an outage lasts (until the pool
 * cache has seen it lifted): which sessions were exposed, typed 503s, and for
 * those seen living in the region, the first success served from another
 * region (or, failing that, once the region is back). During the pool cache's
 * delay the "down" region still serves: in a real outage those requests would
 * have failed, so they do not count as recovered.
 */
export function trackOutages(x: RunContext, client: ChaosClient, lineage: Lineage, ex: Exchange): void {
  for (const outage of x.outages) {
    const over = outage.liftedAt !== undefined && ex.sentAt > outage.liftedAt + POOL_CACHE_MS;
    if (ex.sentAt < outage.at || over) continue;
    const inRegion = ex.ok && ex.seen?.reg === outage.region;
    let s = outage.exposed.get(lineage);
    if (!s && (inRegion || client.scenario === "region-outage")) {
      s = { client, sid: ex.seen?.sid ?? client.sid ?? "?", homed: false, from: ex.at, requests: 0, typed503: 0 };
      outage.exposed.set(lineage, s);
    }
    if (!s) continue;
    if (inRegion && !s.homed) {
      s.homed = true;
      s.from = ex.at;
    }
    s.requests += 1;
    if (ex.status === 503 && ex.error && s.firstOkOutside === undefined) s.typed503 += 1;
    const back = outage.liftedAt !== undefined && ex.sentAt >= outage.liftedAt;
    if (s.homed && ex.ok && ex.seen && (ex.seen.reg !== outage.region || back) && s.firstOkOutside === undefined)
      s.firstOkOutside = ex.at;
  }
}
