/** Tables for the terminal and the generated docs/benchmarks.md. */
import { cacheEffectMarkdown, costMarkdown, kvWritesMarkdown } from "./figures/cost-report.ts";
import type { FiguresReport } from "./figures/index.ts";
import { failoverMarkdown, migrationMarkdown, recoveryMarkdown } from "./figures/report.ts";
import { median } from "./figures/stats.ts";
import type { Footprint } from "./footprint.ts";
import type { LoadResult } from "./load.ts";
import type { MachineInfo } from "./machine.ts";
import { MICRO_OPS, type MicroFigure } from "./micro.ts";
import type { ObjectCallFigure } from "./object-calls.ts";
import { type BenchOptions, SIGNING_ALGS } from "./options.ts";
import type { Scenario } from "./scenarios.ts";
import type { ChartRow } from "./svg.ts";

export interface ScenarioFigures {
  scenario: Scenario;
  /** One per round. */
  rounds: LoadResult[];
  /** Median of each figure over the rounds. */
  median: LoadResult;
  /** Checks that failed (origin counters), by round. */
  problems: string[];
  /** workerd warnings and errors during the measured runs, summed over rounds. */
  logs: Map<string, number>;
}

/** Everything that went wrong in a scenario, one line each: failed requests, what workerd logged, failed checks. */
export function problemLines(f: ScenarioFigures, rounds: number): string[] {
  const m = f.median;
  const failed = m.non2xx + m.errors + m.timeouts;
  const over = rounds > 1 ? ` over ${rounds} rounds` : "";
  return [
    ...(failed
      ? [`${failed} failed requests${over} (${m.non2xx} non-2xx, ${m.errors} socket errors, ${m.timeouts} timeouts)`]
      : []),
    ...[...f.logs].map(([key, n]) => `workerd logged ${n} × ${key}`),
    ...f.problems,
  ];
}

export interface BenchReport {
  options: BenchOptions;
  machine: MachineInfo;
  date: string;
  command: string;
  /** Commit of the Worker's sources. */
  source: string;
  /** 1-minute load average just before the first scenario and just after the last. */
  load: { before: number; after: number };
  figures: ScenarioFigures[];
  /** Durable Object requests per client request, counted (bench/object-calls.ts). */
  objectCalls: ObjectCallFigure[];
  footprint: Footprint | undefined;
  micro: MicroFigure[];
  /** Failover, migration, recovery and cost figures (bench/figures/), as far as measured. */
  groups: FiguresReport;
  /** Wall time of the whole run, build included. */
  elapsedSeconds: number;
  notes: string[];
}

/** The figure groups' sections, each naming the command that measured it and how to run that group alone. */
export function groupsMarkdown(r: Pick<BenchReport, "groups" | "command">): string {
  const g = r.groups;
  const by = (group: string) =>
    `\`${r.command}\` with bench/figures/${group}.ts (this group alone: \`npm run bench -- --only none --no-micro --figures ${group}\`)`;
  const sections: string[] = [];
  if (g.failover) sections.push(failoverMarkdown(g.failover, by("failover"), g.vars.failover));
  if (g.migration) sections.push(migrationMarkdown(g.migration, by("migration"), g.vars.migration));
  if (g.recovery || g.cost)
    sections.push(
      [
        ...(g.recovery ? [recoveryMarkdown(g.recovery, by("recovery"), g.vars.recovery)] : []),
        ...(g.cost ? [(g.recovery ? "" : "## KV writes\n\n") + kvWritesMarkdown(g.cost)] : []),
      ].join("\n\n"),
    );
  if (g.cost) sections.push(costMarkdown(g.cost, by("cost")));
  if (g.cost && g.costStrict) sections.push(cacheEffectMarkdown(g.cost, g.costStrict));
  return sections.join("\n\n");
}

export function medianResult(rounds: LoadResult[]): LoadResult {
  const pick = (f: (r: LoadResult) => number) => median(rounds.map(f));
  const sum = (f: (r: LoadResult) => number) => rounds.reduce((a, r) => a + f(r), 0);
  return {
    requests: sum((r) => r.requests),
    seconds: sum((r) => r.seconds),
    rps: pick((r) => r.rps),
    p50: pick((r) => r.p50),
    p90: pick((r) => r.p90),
    p99: pick((r) => r.p99),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    ...(rounds.every((r) => r.cpuUs !== undefined) ? { cpuUs: pick((r) => r.cpuUs ?? 0) } : {}),
  };
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "–";
const ratio = (n: number, base: number | undefined) => (base && Number.isFinite(n) ? `${fmt(n / base, 2)}×` : "–");

interface Row {
  id: string;
  label: string;
  rps: string;
  rpsX: string;
  p50: string;
  p50X: string;
  p99: string;
  p99X: string;
  cpu: string;
  cpuX: string;
  requests: string;
  failed: string;
}

/** The baseline a row compares with: the one measured at the same number of connections. */
function baseFor(figures: ScenarioFigures[], f: ScenarioFigures): LoadResult | undefined {
  const id = f.scenario.connections === 1 ? "baseline-1c" : "baseline";
  return figures.find((b) => b.scenario.id === id)?.median;
}

function rows(figures: ScenarioFigures[]): Row[] {
  return figures.map((f) => {
    const base = baseFor(figures, f);
    const m = f.median;
    return {
      id: f.scenario.id,
      label: f.scenario.label + (problemLines(f, 1).length ? " (!)" : ""),
      rps: fmt(m.rps),
      rpsX: ratio(m.rps, base?.rps),
      p50: fmt(m.p50, 2),
      p50X: ratio(m.p50, base?.p50),
      p99: fmt(m.p99, 2),
      p99X: ratio(m.p99, base?.p99),
      cpu: m.cpuUs !== undefined ? fmt(m.cpuUs) : "–",
      cpuX: m.cpuUs !== undefined ? ratio(m.cpuUs, base?.cpuUs) : "–",
      requests: fmt(m.requests),
      failed: fmt(m.non2xx + m.errors + m.timeouts),
    };
  });
}

const HEAD: Row = {
  id: "id",
  label: "scenario",
  rps: "req/s",
  rpsX: "× base",
  p50: "p50 ms",
  p50X: "× base",
  p99: "p99 ms",
  p99X: "× base",
  cpu: "workerd µs CPU/req",
  cpuX: "× base",
  requests: "requests",
  failed: "failed",
};
const COLUMNS: (keyof Row)[] = [
  "label",
  "rps",
  "rpsX",
  "p50",
  "p50X",
  "p99",
  "p99X",
  "cpu",
  "cpuX",
  "requests",
  "failed",
];

export function textTable(figures: ScenarioFigures[]): string {
  const all = [HEAD, ...rows(figures)];
  const widths = COLUMNS.map((c) => Math.max(...all.map((r) => r[c].length)));
  const line = (r: Row) =>
    COLUMNS.map((c, i) => (i === 0 ? r[c].padEnd(widths[i] ?? 0) : r[c].padStart(widths[i] ?? 0))).join("  ");
  return [line(HEAD), widths.map((w) => "-".repeat(w)).join("  "), ...rows(figures).map(line)].join("\n");
}

function markdownTable(figures: ScenarioFigures[]): string {
  const head = `| ${COLUMNS.map((c) => HEAD[c]).join(" | ")} |`;
  const align = `| --- | ${COLUMNS.slice(1)
    .map(() => "---:")
    .join(" | ")} |`;
  return [head, align, ...rows(figures).map((r) => `| ${COLUMNS.map((c) => r[c]).join(" | ")} |`)].join("\n");
}

export function microTable(micro: MicroFigure[], markdown: boolean): string {
  const algs = SIGNING_ALGS.filter((a) => micro.some((m) => m.alg === a));
  const cell = (op: string, alg: string) => {
    const m = micro.find((f) => f.op === op && f.alg === alg);
    if (!m) return "–";
    // Below the timer's resolution over this many iterations: say so rather than print noise.
    const us = (v: number) => (v < 0.5 ? "< 0.5" : fmt(v, 1));
    return `${us(m.usPerOp)} µs (± ${us(m.moeUs)})`;
  };
  const data = MICRO_OPS.map(({ op, label }) => [label, ...algs.map((a) => cell(op, a))]);
  const head = ["operation (one call)", ...algs];
  if (markdown)
    return [
      `| ${head.join(" | ")} |`,
      `| --- | ${algs.map(() => "---:").join(" | ")} |`,
      ...data.map((r) => `| ${r.join(" | ")} |`),
    ].join("\n");
  const widths = head.map((_, i) => Math.max(...[head, ...data].map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...data.map(line)].join("\n");
}

export function chartRows(figures: ScenarioFigures[]): ChartRow[] {
  const base = figures.find((f) => f.scenario.id === "baseline")?.median;
  return figures
    .filter((f) => f.scenario.connections === undefined)
    .map(({ scenario, median: m }) => ({
      label: scenario.label,
      target: scenario.target,
      rps: m.rps,
      p99: m.p99,
      rpsRatio: base ? m.rps / base.rps : Number.NaN,
      p99Ratio: base ? m.p99 / base.p99 : Number.NaN,
    }));
}

export function chartSubtitle(r: BenchReport): string {
  const o = r.options;
  return `${r.date.slice(0, 10)} · ${r.machine.cpus} × ${r.machine.model} · ${o.connections} connections · ${o.duration} s per scenario${o.rounds > 1 ? ` · median of ${o.rounds} rounds` : ""} · signing key ${o.alg}`;
}

const KIB = (n: number) => `${fmt(n / 1024, 0)} KiB`;

/**
 * The figures the read-cache work is judged by, in one table: ratios to the bare
 * Worker, Durable Object requests per client request, added latency, the curve
 * as sessions and documents grow, bundle and cold start. Targets are reported,
 * never asserted.
 */
export function summaryMarkdown(r: Pick<BenchReport, "figures" | "objectCalls" | "footprint" | "options">): string {
  const by = (id: string) => r.figures.find((f) => f.scenario.id === id);
  const x = (id: string) => {
    const f = by(id);
    const base = f && baseFor(r.figures, f);
    return f && base ? `${fmt(f.median.rps / base.rps, 2)}×` : "–";
  };
  const added = (id: string, q: "p50" | "p99") => {
    const f = by(id);
    const base = f && baseFor(r.figures, f);
    return f && base ? `${fmt(f.median[q] - base[q], 2)} ms` : "–";
  };
  const calls = (id: string) => {
    const c = r.objectCalls.find((o) => o.id === id);
    return c ? `${fmt(c.sessionCallsPerRequest, 3)} (+ ${fmt(c.poolCallsPerRequest, 3)} pool)` : "–";
  };
  const cpu = (id: string) => {
    const f = by(id);
    const base = f && baseFor(r.figures, f);
    return f?.median.cpuUs !== undefined && base?.cpuUs !== undefined
      ? `${fmt(f.median.cpuUs)} µs (${fmt(f.median.cpuUs / base.cpuUs, 2)}×)`
      : "–";
  };
  const n = r.options.connections;
  const lines = [
    "| figure | cache on | strict | target (cache on) |",
    "| --- | ---: | ---: | --- |",
    `| steady state, 200 sessions × 300 B read on every request, × bare Worker | ${x("session-read")} | ${x("session-read-strict")} | ≥ 0.9× (strict ≥ 0.7×) |`,
    `| … the floor of the cache's path: bare Worker + a proxy hop's header rewriting, no session logic | ${x("floor-rewrite")} | | |`,
    `| … the floor of strict mode: bare Worker + one trivial Durable Object RPC (20 / 1 connections) | | ${x("floor")} / ${x("floor-1c")} | |`,
    `| workerd CPU per request, steady state (bare Worker: ${cpu("baseline").split(" (")[0]}) | ${cpu("session-read")} | ${cpu("session-read-strict")} | |`,
    `| … the floors: header rewriting; one trivial RPC | ${cpu("floor-rewrite")} | ${cpu("floor")} | |`,
    `| steady state at 1 connection, × bare Worker | ${x("session-read-1c")} | ${x("session-read-strict-1c")} | |`,
    `| a write on every request, × bare Worker | ${x("session-write")} | | |`,
    `| a new session on every request, × bare Worker | ${x("new-session")} | | |`,
    `| Durable Object requests per client request, steady state | ${calls("session-read")} | ${calls("session-read-strict")} | ≤ 0.05 |`,
    `| … with 2,000 sessions | ${calls("read-2000-sessions")} | | |`,
    `| … writes; new sessions | ${calls("session-write")}; ${calls("new-session")} | | |`,
    `| added latency p50 / p99, 1 connection | ${added("session-read-1c", "p50")} / ${added("session-read-1c", "p99")} | ${added("session-read-strict-1c", "p50")} / ${added("session-read-strict-1c", "p99")} | p99 ≤ 2 ms |`,
    `| added latency p50 / p99, ${n} connections | ${added("session-read", "p50")} / ${added("session-read", "p99")} | ${added("session-read-strict", "p50")} / ${added("session-read-strict", "p99")} | |`,
    `| 20 / 200 / 2,000 sessions (300 B), × bare Worker | ${x("read-20-sessions")} / ${x("session-read")} / ${x("read-2000-sessions")} | – / ${x("session-read-strict")} / ${x("read-2000-strict")} | ≥ 0.85× |`,
    `| 300 B / 6 KB / 60 KB documents (200 sessions), × bare Worker | ${x("session-read")} / ${x("read-6kb")} / ${x("read-60kb")} | | ≥ 0.85× |`,
  ];
  const f = r.footprint;
  if (f) {
    const zod = Object.entries(f.byPackage)
      .filter(([p]) => p === "zod" || p.includes("zod"))
      .reduce((a, [, b]) => a + b, 0);
    const total = Object.values(f.byPackage).reduce((a, b) => a + b, 0);
    lines.push(
      `| bundle (minified; gzipped) | ${KIB(f.bundleBytes)}; ${KIB(f.gzipBytes)} | | |`,
      `| … of which zod and its OpenAPI layer (what a lighter schema path could save at most) | ${KIB(zod)} (${fmt((100 * zod) / Math.max(1, total), 0)} %) | | |`,
      `| cold start: workerd up; first request (config, keys) / warm request | ${fmt(f.startMs, 0)} ms; ${fmt(f.firstRequestMs, 1)} / ${fmt(f.warmRequestMs, 1)} ms | | |`,
    );
  }
  return lines.join("\n");
}

export function markdownReport(r: BenchReport): string {
  const o = r.options;
  const m = r.machine;
  const versions = Object.entries(m.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const problems = r.figures.flatMap((f) => problemLines(f, o.rounds).map((p) => `- \`${f.scenario.id}\`: ${p}`));
  return `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts). Do not edit by hand: run it again.

Figures from one run on one machine, with the load generator, the origin and
workerd sharing its cores. Compare the **ratios** to the baseline, measured in
the same run, rather than the absolute numbers, which say more about this
machine than about Workers on Cloudflare's edge.

## Run

| | |
| --- | --- |
| date | ${r.date} |
| command | \`${r.command}\` |
| source | ${r.source} |
| machine | ${m.cpus} CPUs, ${m.model}, ${m.memoryGiB} GiB memory, Linux ${m.kernel} |
| machine load | 1-minute load average ${fmt(r.load.before, 2)} before the first scenario, ${fmt(r.load.after, 2)} after the last (the bench itself keeps about ${m.cpus} busy; more means other work shared the machine) |
| software | Node ${m.node}, ${versions} |
| load | autocannon, ${o.connections} keep-alive connections, closed loop (no pipelining), ${o.warmup} s warm-up then ${o.duration} s measured per scenario${o.rounds > 1 ? `, ${o.rounds} rounds (medians shown)` : ""} |
| edge-session | the deployed bundle (\`wrangler deploy --dry-run\`), \`ENVIRONMENT=production\`, signing key ${o.alg}, two origins, SQLite-backed Durable Objects and KV in Miniflare's local storage |

## Summary

${summaryMarkdown(r)}

"Cache on" is \`READ_CACHE_SECONDS=5\` (the default), "strict" is \`READ_CACHE_SECONDS=0\`.
Durable Object requests are counted by the counting shim (bench/workers/counting/) in a
separate ${r.options.quick ? 2 : 4}-second run of the same scenario after a warm-up: every RPC
and alarm the session objects received, and (in brackets) the pool object's. Added latency is
the scenario's percentile minus the bare Worker's at the same number of connections. Bundle
make-up: esbuild's metafile of the same entry, minified${
    r.footprint
      ? ` (${Object.entries(r.footprint.byPackage)
          .slice(0, 6)
          .map(([p, b]) => `${p} ${KIB(b)}`)
          .join(", ")})`
      : ""
  }.

## Throughput and latency

![Requests per second and p99 latency per scenario](benchmarks-throughput.svg)

${markdownTable(r.figures)}

"× base" is the ratio to the baseline row. "failed" counts non-2xx answers,
socket errors and timeouts. Latencies are per request, from the load generator.
${problems.length ? `\nChecks that failed (rows marked (!)):\n\n${problems.join("\n")}\n` : ""}
What one request does in each scenario:

${r.figures.map((f) => `- **${f.scenario.label}** (\`${f.scenario.id}\`): ${f.scenario.what}.`).join("\n")}

Before each measurement the runner checks that the scenario does what it says:
a sticky hit gets no new cookie and the origin sees the stored session state
(\`ver\` ≥ 1) in \`X-Edge-Session\`; a write raises the version by one; a new
session gets a cookie and \`ver: 0\`; HAProxy inserts \`SERVERID\` only for a new
client. After it, the origin's counters must match the answered requests.

## Token operations inside workerd

${r.micro.length ? microTable(r.micro, true) : "(not measured in this run: `--no-micro`)"}

Each cell: microseconds per call, the mean over ${r.micro[0]?.iterations ?? "–"} calls timed by tinybench inside workerd
after its warm-up, in samples of 100 calls (workerd's clock moves in whole milliseconds), and in
brackets the margin of error of that mean (95 %). The Worker's own clock is the one read:
under local workerd it advances during CPU work, whereas Cloudflare's edge keeps it still (a
Spectre mitigation), so these are local figures. The code timed is the
project's own \`src/token/\` (jose on workerd's WebCrypto), bundled by wrangler
(bench/workers/micro-worker.ts). A sticky hit pays one verification; a write
adds one forwarded-header signature; a new session pays a signature and an
issue.

${groupsMarkdown(r) ? `${groupsMarkdown(r)}\n\n` : ""}## How it is measured

- \`bench/run.ts\` builds three bundles with \`wrangler deploy --dry-run\`: the
  real Worker (from \`wrangler.toml\`), the baseline and the micro Worker. Each is
  served by its own workerd through the Miniflare API on a loopback port, and the
  load goes to the Worker's direct socket (\`unsafeDirectSockets\`). Not through
  \`wrangler dev\`, whose dev proxy caps even a bare pass-through Worker near
  450 req/s here, nor through Miniflare's entry Worker, an extra hop inside
  workerd that took the baseline from about 1,750–2,150 to about 1,250 req/s
  when this bench was written.
- The origin is a Node \`http\` server in its own process, on two ports (two
  origins for edge-session and HAProxy; the baseline uses the first). It answers
  200 with a 28-byte body; \`/write\` adds \`X-Edge-Session-Set: {"n": <counter>}\`.
- HAProxy ${m.versions.haproxy ?? "(not installed: its rows are missing)"} runs with \`nbthread 1\` and
  \`cookie SERVERID insert indirect nocache\` in front of the same two origins:
  native code without session state, for scale. The "no proxy" row sends the
  same load straight to the origin: the ceiling of the load generator and origin
  on this machine, so HAProxy rows near it are bounded by the setup, not by HAProxy.
- The failover, migration, recovery and cost figures (\`bench/figures/\`) run
  after the throughput scenarios and the micro-figures, one group after another,
  each against its own workerd configured as its section says (the cost figures
  against the same Worker behind a counting shim, \`bench/workers/counting/\`),
  with browser-like sessions sent by Node's \`fetch\` one request at a time.
- "workerd µs CPU/req" is the CPU time of the workerd process serving the row's
  Worker (every thread, Durable Objects included: Linux's per-thread scheduler
  statistics, \`bench/figures/cpu.ts\`) during the measured seconds, divided by
  the requests answered. workerd runs a Worker's requests on one thread, so
  req/s is about one second over this figure once that thread is busy, and the
  figure moves far less than req/s when the load generator and the origin
  compete for the cores. Rows served by something else (HAProxy, the origin)
  have none.
- Everything the bench starts is stopped when it ends, on error too.
${r.notes.length ? `\nNotes from this run:\n\n${r.notes.map((n) => `- ${n}`).join("\n")}\n` : ""}
Run it yourself: \`npm run bench\` (this run took ${fmt(r.elapsedSeconds / 60, 1)} minutes), or
\`npm run bench -- --quick\` for a 3-second look at the throughput scenarios that writes nothing. \`--help\`
lists the options (duration, warm-up, connections, rounds, signing algorithm,
a subset of scenarios, a subset of the figure groups with \`--figures\`). \`npm run bench -- --profile session-read\` (or any
edge-session scenario) samples the Worker's CPU through workerd's inspector
while that scenario runs, and prints self time by source module and function, and total
time (itself and what it calls) by function.
`;
}
