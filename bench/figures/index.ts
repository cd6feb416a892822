/**
 * The figures that are timings and counts rather than
 * throughput: failover, migration, recovery (RPO/RTO) and operations per
 * session (cost). Each group gets its own workerd (and, for failover, its own
 * origin process, whose ports it closes), configured for what it measures, and
 * the groups run one after another so that they do not disturb each other.
 */
import type { Bundles } from "../build.ts";
import { type RunningEdge, startEdge } from "../edge.ts";
import type { BenchOptions, FigureGroup } from "../options.ts";
import { startOrigin } from "../origin.ts";
import { adminApi } from "./client.ts";
import { type CostFigures, costFigures } from "./cost.ts";
import { withNewWorkerd } from "./cpu.ts";
import { type FailoverLatency, type FailoverLoad, failoverLatency, failoverUnderLoad } from "./failover.ts";
import { type MigrationSize, migrationFigures } from "./migration.ts";
import { type RecoveryFigures, RestoreLog, recoveryFigures } from "./recovery.ts";

export interface FiguresReport {
  /** Edge settings per group, as passed to the Worker (beyond ORIGINS and the secrets). */
  vars: Partial<Record<FigureGroup, Record<string, string>>>;
  failover?: { latency: FailoverLatency; load: FailoverLoad };
  migration?: MigrationSize[];
  recovery?: RecoveryFigures;
  cost?: CostFigures;
  /** The same, in strict mode (READ_CACHE_SECONDS=0): the read cache's effect on the cost. */
  costStrict?: CostFigures;
}

const FAULTS = { ENVIRONMENT: "staging", FAULT_INJECTION: "true", POOL_CACHE_SECONDS: "0" };

export const FIGURE_VARS: Record<FigureGroup, Record<string, string>> = {
  failover: {},
  migration: { MAX_PATCH_BYTES: "65536", MAX_SESSION_BYTES: "1572864" },
  // Strict reads: a restore starts when a request reaches the lost object, and with the read cache on the
  // isolate answers reads from memory meanwhile (README, "Consistency"), so nothing would be restored to time.
  recovery: { ...FAULTS, SESSION_TIMEOUT_MS: "500", READ_CACHE_SECONDS: "0" },
  cost: {},
};

/** How much of each figure: a full run, or a quick look. */
function sizes(quick: boolean) {
  return {
    failoverRepetitions: quick ? 5 : 20,
    load: quick ? { clients: 20, seconds: 5, killAt: 2 } : { clients: 20, seconds: 10, killAt: 3 },
    migration: quick ? { repetitions: 2, stallRepetitions: 1 } : { repetitions: 3, stallRepetitions: 2 },
    recovery: quick
      ? { rtoRepetitions: 3, rpoRepetitions: 3, sessionTimeoutMs: 500, slowMs: 2000 }
      : { rtoRepetitions: 5, rpoRepetitions: 6, sessionTimeoutMs: 500, slowMs: 2000 },
    cost: { burstSessions: quick ? 3 : 10, paceMs: 1100, idleTimeoutS: 10 },
  };
}

export async function runFigures(
  o: BenchOptions,
  bundles: Bundles,
  say: (message: string) => void,
): Promise<FiguresReport> {
  const n = sizes(o.quick);
  const report: FiguresReport = { vars: {} };
  const edge = async (group: FigureGroup, origins: string[], extra: Partial<Parameters<typeof startEdge>[0]> = {}) => {
    report.vars[group] = FIGURE_VARS[group];
    return startEdge({ bundle: bundles.edge, origins, alg: o.alg, vars: FIGURE_VARS[group], ...extra });
  };
  const want = (g: FigureGroup) => o.figures.includes(g);
  let mark = performance.now();
  const done = (g: FigureGroup) => {
    say(`${g}: done in ${((performance.now() - mark) / 1000).toFixed(0)} s`);
    mark = performance.now();
  };
  if (want("failover")) {
    // Its own origin process: this group closes and reopens its ports.
    const origin = await startOrigin(2);
    const e = await edge("failover", origin.urls);
    say(`failover: ${n.failoverRepetitions} origin deaths, one request each…`);
    const latency = await failoverLatency(e.url, origin, n.failoverRepetitions);
    say(`failover: ${n.load.clients} clients for ${n.load.seconds} s, an origin killed at ${n.load.killAt} s…`);
    const load = await failoverUnderLoad(e.url, origin, n.load);
    report.failover = { latency, load };
    done("failover");
  }
  mark = performance.now();
  const origin = await startOrigin(2);
  if (want("migration")) {
    const e = await edge("migration", origin.urls);
    say(
      `migration: 1 KB / 100 KB / 1 MB sessions × ${n.migration.repetitions} (+ ${n.migration.stallRepetitions} under load)…`,
    );
    report.migration = await migrationFigures(e.url, adminApi(e.url, e.adminToken), n.migration);
    done("migration");
  }
  if (want("recovery")) {
    const log = new RestoreLog();
    const e = await edge("recovery", origin.urls, { onLog: log.onLog });
    say(`recovery: RTO × ${n.recovery.rtoRepetitions} per fault mode, RPO × ${n.recovery.rpoRepetitions}…`);
    report.recovery = await recoveryFigures(e.url, adminApi(e.url, e.adminToken), e.miniflare, log, n.recovery);
    done("recovery");
  }
  if (want("cost")) {
    report.vars.cost = FIGURE_VARS.cost;
    const counting = (vars: Record<string, string>) =>
      startEdge({ bundle: bundles.counting, origins: origin.urls, alg: o.alg, vars });
    const { value: main, pid } = await withNewWorkerd(() => counting(FIGURE_VARS.cost));
    const ending: RunningEdge = await counting({ SESSION_IDLE_TIMEOUT: String(n.cost.idleTimeoutS) });
    say(`cost: 4 session shapes × ${n.cost.burstSessions} back to back, then paced and to their end (~45 s)…`);
    report.cost = await costFigures({ ...main, pid }, ending, n.cost);
    await Promise.all([main.stop(), ending.stop()]);
    const strict = { READ_CACHE_SECONDS: "0" };
    const { value: mainStrict, pid: pidStrict } = await withNewWorkerd(() =>
      counting({ ...FIGURE_VARS.cost, ...strict }),
    );
    const endingStrict = await counting({ SESSION_IDLE_TIMEOUT: String(n.cost.idleTimeoutS), ...strict });
    say("cost: the same in strict mode (READ_CACHE_SECONDS=0)…");
    report.costStrict = await costFigures({ ...mainStrict, pid: pidStrict }, endingStrict, n.cost);
    done("cost");
  }
  return report;
}
