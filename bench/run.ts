/**
 * `npm run bench`: throughput and latency of edge-session against a bare
 * pass-through Worker (and HAProxy, when installed), plus the cost of the
 * token operations inside workerd. Prints a table; a full run also writes
 * docs/benchmarks.md and docs/benchmarks-throughput.svg.
 *
 * See bench/options.ts for flags, and docs/benchmarks.md for the method.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { dirname, resolve } from "node:path";
import { buildAll } from "./build.ts";
import { stopAll } from "./cleanup.ts";
import { startEdge } from "./edge.ts";
import { cpuMs, workerdServing } from "./figures/cpu.ts";
import { type FiguresReport, runFigures } from "./figures/index.ts";
import { measureFootprint } from "./footprint.ts";
import { haproxyVersion, type RunningHaproxy, startHaproxy } from "./haproxy.ts";
import { runLoad } from "./load.ts";
import { machineInfo, sourceRevision } from "./machine.ts";
import { type MicroFigure, microKeys, runMicro } from "./micro.ts";
import { countObjectCalls, type ObjectCallFigure } from "./object-calls.ts";
import { type BenchOptions, readOptions } from "./options.ts";
import { startOrigin } from "./origin.ts";
import { profileScenario } from "./profile.ts";
import {
  type BenchReport,
  chartRows,
  chartSubtitle,
  groupsMarkdown,
  markdownReport,
  medianResult,
  microTable,
  problemLines,
  type ScenarioFigures,
  summaryMarkdown,
  textTable,
} from "./report.ts";
import { SCENARIOS, type Scenario, type Targets } from "./scenarios.ts";
import { throughputSvg } from "./svg.ts";
import { logDelta, type RunningWorker, startWorker } from "./workers.ts";

const DOC = "docs/benchmarks.md";
/** Scenarios whose Durable Object requests are counted (bench/object-calls.ts). */
const COUNTED = ["session-read", "session-read-strict", "read-2000-sessions", "session-write", "new-session"];
const SVG = "docs/benchmarks-throughput.svg";

function say(message: string): void {
  console.log(`bench: ${message}`);
}

function commandLine(): string {
  const args = process.argv.slice(2).join(" ");
  if (process.env.npm_lifecycle_event === "bench") return `npm run bench${args ? ` -- ${args}` : ""}`;
  return `node bench/run.ts${args ? ` ${args}` : ""}`;
}

function chooseScenarios(o: BenchOptions, haproxy: boolean, notes: string[]): Scenario[] {
  if (o.only.length === 1 && o.only[0] === "none") return [];
  const unknown = o.only.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length)
    throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.id).join(", ")}`);
  let chosen = o.only.length ? SCENARIOS.filter((s) => o.only.includes(s.id)) : SCENARIOS;
  // The ratios need the baseline in the same run.
  if (!chosen.some((s) => s.id === "baseline")) chosen = SCENARIOS.filter((s) => s.id === "baseline").concat(chosen);
  if (!haproxy && chosen.some((s) => s.target === "haproxy")) {
    const message = "haproxy is not installed: HAProxy scenarios skipped (Debian: apt-get install -y haproxy)";
    say(message);
    notes.push(message);
    chosen = chosen.filter((s) => s.target !== "haproxy");
  }
  return chosen;
}

async function measure(
  o: BenchOptions,
  scenarios: Scenario[],
  targets: Targets,
  workers: RunningWorker[],
): Promise<ScenarioFigures[]> {
  const figures = scenarios.map((scenario) => ({
    scenario,
    rounds: [] as ScenarioFigures["rounds"],
    problems: [] as string[],
    logs: new Map<string, number>(),
  }));
  // Every scenario's sessions are made before any is measured (they are kept for later rounds),
  // and their first writes' snapshots (due a second later, by alarm) are let past.
  const making = performance.now();
  say("making the scenarios' sessions…");
  for (const f of figures) await f.scenario.prepare(targets);
  say(`sessions made in ${((performance.now() - making) / 1000).toFixed(0)} s`);
  await new Promise((r) => setTimeout(r, 3000));
  for (let round = 1; round <= o.rounds; round++) {
    for (const f of figures) {
      const { scenario } = f;
      const prepared = await scenario.prepare(targets);
      const spec = { ...prepared.spec, connections: scenario.connections ?? o.connections };
      await runLoad({ ...spec, duration: o.warmup });
      await prepared.warm?.();
      // Requests cut off at the end of the warm-up may still reach the origin: let them land before counting.
      await new Promise((r) => setTimeout(r, 1000));
      await targets.origin.reset();
      const logsBefore = workers.map((w) => new Map(w.logs));
      const pid = workerdServing(spec.url);
      const cpuBefore = cpuMs(pid);
      const load = await runLoad({ ...spec, duration: o.duration });
      const cpuUs = ((cpuMs(pid) - cpuBefore) * 1000) / load.requests;
      const result = Number.isFinite(cpuUs) ? { ...load, cpuUs } : load;
      const problems = prepared.check(await targets.origin.stats(), result.requests);
      f.rounds.push(result);
      f.problems.push(...problems.map((p) => (o.rounds > 1 ? `round ${round}: ${p}` : p)));
      const logged: string[] = [];
      workers.forEach((w, i) => {
        for (const [key, n] of logDelta(logsBefore[i] ?? new Map(), w.logs)) {
          f.logs.set(key, (f.logs.get(key) ?? 0) + n);
          logged.push(`${n} × ${key}`);
        }
      });
      const failed = result.non2xx + result.errors + result.timeouts;
      const notes = [...problems, ...(failed ? [`${failed} failed`] : []), ...logged.map((l) => `workerd: ${l}`)];
      say(
        `${o.rounds > 1 ? `[${round}/${o.rounds}] ` : ""}${scenario.id.padEnd(18)} ${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms${result.cpuUs !== undefined ? `  workerd ${result.cpuUs.toFixed(0)} µs CPU/req` : ""}${notes.length ? `  CHECK: ${notes.join("; ")}` : ""}`,
      );
    }
  }
  return figures.map((f) => ({ ...f, median: medianResult(f.rounds) }));
}

/** --profile: one scenario under the CPU profiler, printed; nothing measured or written. */
async function profile(o: BenchOptions, id: string): Promise<void> {
  const scenario = SCENARIOS.find((s) => s.id === id);
  if (scenario?.target !== "edge-session")
    throw new Error(
      `--profile takes an edge-session scenario: ${SCENARIOS.filter((s) => s.target === "edge-session")
        .map((s) => s.id)
        .join(", ")}`,
    );
  say("building the Workers (edge-session unminified, for readable profiles)…");
  const bundles = await buildAll(true);
  const origin = await startOrigin(2);
  const vars: Record<string, string> = id.includes("strict") ? { READ_CACHE_SECONDS: "0" } : {};
  const edge = await startEdge({ bundle: bundles.edge, origins: origin.urls, alg: o.alg, inspector: true, vars });
  if (!edge.inspectorUrl) throw new Error("workerd opened no inspector");
  const prepared = await scenario.prepare({
    baseline: "",
    edge: edge.url,
    edgeStrict: edge.url,
    origin,
    connections: o.connections,
  });
  say(`profiling ${id} for ${o.duration} s…`);
  console.log(`\n${await profileScenario(edge.inspectorUrl, bundles.edge, prepared, o.connections, o.duration)}`);
}

async function main(): Promise<void> {
  // Miniflare wants script paths under the current directory: run from the project root.
  process.chdir(resolve(import.meta.dirname, ".."));
  process.env.WRANGLER_SEND_METRICS = "false";
  const started = performance.now();
  const o = readOptions();
  if (o.profile) return profile(o, o.profile);
  const notes: string[] = [];
  const date = new Date().toISOString();
  const haproxy = haproxyVersion();
  const scenarios = chooseScenarios(o, haproxy !== undefined, notes);
  say(
    `${o.quick ? "quick" : "full"} run: ${scenarios.length} scenarios × (${o.warmup} s warm-up + ${o.duration} s) × ${o.rounds} round(s), ${o.connections} connections`,
  );

  say("building the Workers (wrangler deploy --dry-run)…");
  const bundles = await buildAll();
  let figures: ScenarioFigures[] = [];
  let objectCalls: ObjectCallFigure[] = [];
  let loadBefore = loadavg()[0] ?? 0;
  let loadAfter = loadBefore;
  if (scenarios.length) {
    const origin = await startOrigin(2);
    say(`origin on ${origin.urls.join(", ")}`);
    const [edge, edgeStrict, baseline] = await Promise.all([
      startEdge({ bundle: bundles.edge, origins: origin.urls, alg: o.alg }),
      startEdge({ bundle: bundles.edge, origins: origin.urls, alg: o.alg, vars: { READ_CACHE_SECONDS: "0" } }),
      startWorker({
        name: "baseline",
        scriptPath: bundles.baseline,
        // Its trivial Durable Object (the floor scenario) is declared there.
        wranglerConfig: "bench/workers/baseline.wrangler.toml",
        bindings: { ORIGIN_URL: origin.urls[0] ?? "" },
      }),
    ]);
    say(`edge-session on ${edge.url} (read cache on), ${edgeStrict.url} (strict), baseline on ${baseline.url}`);
    let proxy: RunningHaproxy | undefined;
    if (haproxy && scenarios.some((s) => s.target === "haproxy")) {
      proxy = await startHaproxy(origin.urls, haproxy);
      say(`HAProxy ${haproxy} on ${proxy.url}`);
    }
    const targets: Targets = {
      baseline: baseline.url,
      edge: edge.url,
      edgeStrict: edgeStrict.url,
      origin,
      connections: o.connections,
    };
    loadBefore = loadavg()[0] ?? 0;
    if (proxy) targets.haproxy = proxy;
    figures = await measure(o, scenarios, targets, [edge, edgeStrict, baseline]);
    loadAfter = loadavg()[0] ?? 0;
    await Promise.all([edge.stop(), edgeStrict.stop(), baseline.stop()]);

    const counted = SCENARIOS.filter((sc) => COUNTED.includes(sc.id) && scenarios.includes(sc));
    if (counted.length) {
      say(`Durable Object requests per client request (counting shim): ${counted.map((sc) => sc.id).join(", ")}…`);
      const [countingEdge, countingStrict] = await Promise.all([
        startEdge({ bundle: bundles.counting, origins: origin.urls, alg: o.alg }),
        startEdge({ bundle: bundles.counting, origins: origin.urls, alg: o.alg, vars: { READ_CACHE_SECONDS: "0" } }),
      ]);
      objectCalls = await countObjectCalls(
        counted,
        { ...targets, edge: countingEdge.url, edgeStrict: countingStrict.url },
        o.quick ? 2 : 4,
        o.connections,
      );
      await Promise.all([countingEdge.stop(), countingStrict.stop()]);
    }
  }

  say("bundle size and cold start…");
  const footprint = await measureFootprint(bundles.edge, ["http://127.0.0.1:9"], o.alg, o.quick ? 1 : 3);

  let micro: MicroFigure[] = [];
  if (o.micro) {
    say(`token micro-figures inside workerd (tinybench, ${o.microIterations} samples of 100 calls)…`);
    const worker = await startWorker({
      name: "micro",
      scriptPath: bundles.micro,
      bindings: { MICRO_KEYS: await microKeys() },
    });
    micro = await runMicro(worker, o.microIterations);
  }

  let groups: FiguresReport = { vars: {} };
  if (o.figures.length) {
    say(`figures: ${o.figures.join(", ")}${o.quick ? " (quick: fewer repetitions)" : ""}`);
    groups = await runFigures(o, bundles, say);
  }

  const report: BenchReport = {
    options: o,
    machine: machineInfo(haproxy ? { haproxy } : {}),
    date,
    command: commandLine(),
    source: sourceRevision(),
    load: { before: loadBefore, after: loadAfter },
    figures,
    objectCalls,
    footprint,
    micro,
    groups,
    elapsedSeconds: (performance.now() - started) / 1000,
    notes,
  };
  if (figures.length) console.log(`\n${textTable(figures)}`);
  const summary = summaryMarkdown(report);
  if (summary) console.log(`\n${summary}`);
  if (micro.length)
    console.log(`\nmicroseconds per call, tinybench inside workerd (± margin of error):\n${microTable(micro, false)}`);
  const problems = figures.flatMap((f) => problemLines(f, o.rounds).map((p) => `${f.scenario.id}: ${p}`));
  if (problems.length) console.log(`\nchecks that failed:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  const sections = groupsMarkdown(report);
  if (sections) console.log(`\n${sections}`);

  if (o.write) {
    await mkdir(dirname(DOC), { recursive: true });
    await writeFile(DOC, markdownReport(report));
    await writeFile(SVG, throughputSvg(chartRows(figures), chartSubtitle(report)));
    say(`wrote ${DOC} and ${SVG}`);
  } else {
    const why = o.quick ? "--quick" : o.only.length ? "--only" : o.figures.length < 4 ? "--figures" : "--no-write";
    say(`not writing ${DOC} (${why}; --write forces it)`);
  }
}

try {
  await main();
} catch (e) {
  console.error(`bench: failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
