/**
 * Command line and environment of `npm run bench`. Flags win over the environment.
 *
 *   npm run bench                         # full run: (1 s warm-up + 5 s) per scenario, every figure group; writes docs/benchmarks.md
 *   npm run bench -- --quick              # 1 round of 1 s warm-up + 2 s per scenario; prints, writes nothing
 *   npm run bench -- --duration 20 --warmup 3 --connections 50 --rounds 2
 *   npm run bench -- --only baseline,session-read --no-micro --no-write
 *   npm run bench -- --profile session-read   # CPU profile of the Worker in one scenario (bench/profile.ts)
 *   npm run bench -- --figures failover,cost  # only these figure groups (bench/figures/); --figures none: no figures
 *   npm run bench -- --quick --only none --no-micro --figures recovery   # one group, quick
 *
 * A full run measures every scenario, the micro-figures and every figure group
 * (failover, migration, recovery, cost) and writes docs/benchmarks.md. A run with
 * --quick or --only measures no figure group unless --figures names some.
 *
 * Environment: BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_ROUNDS, BENCH_ALG,
 * BENCH_MICRO_ITERATIONS (micro-figure samples of 100 calls each).
 */
import { parseArgs } from "node:util";

export type SigningAlg = "EdDSA" | "ES256" | "HS256";
export const SIGNING_ALGS: readonly SigningAlg[] = ["EdDSA", "ES256", "HS256"];

/** Groups of figures beside the throughput scenarios (bench/figures/). */
export const FIGURE_GROUPS = ["failover", "migration", "recovery", "cost"] as const;
export type FigureGroup = (typeof FIGURE_GROUPS)[number];

export interface BenchOptions {
  quick: boolean;
  /** Seconds measured per scenario (and per round). */
  duration: number;
  /** Seconds of load before each measurement, not counted. */
  warmup: number;
  connections: number;
  /** Each round runs every scenario once, in order; figures are the median over rounds. */
  rounds: number;
  /** Algorithm of the edge-session signing key in the throughput scenarios. */
  alg: SigningAlg;
  /** Scenario ids to run; empty: all; ["none"]: no throughput scenario. */
  only: string[];
  /** Figure groups to measure (bench/figures/). */
  figures: FigureGroup[];
  micro: boolean;
  /** Samples (of 100 calls) timed per micro-figure by tinybench. */
  microIterations: number;
  /** Write docs/benchmarks.md and the SVG (default: yes for a full run, no for --quick or --only). */
  write: boolean;
  /** Scenario id to profile instead of measuring (edge-session scenarios only). */
  profile: string | undefined;
}

function num(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got ${JSON.stringify(raw)})`);
  return n;
}

export function readOptions(argv = process.argv.slice(2), env = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      duration: { type: "string" },
      warmup: { type: "string" },
      connections: { type: "string" },
      rounds: { type: "string" },
      alg: { type: "string" },
      only: { type: "string" },
      figures: { type: "string" },
      "no-micro": { type: "boolean", default: false },
      "micro-iterations": { type: "string" },
      write: { type: "boolean" },
      "no-write": { type: "boolean", default: false },
      profile: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: npm run bench -- [--quick] [--duration S] [--warmup S] [--connections N] [--rounds N]\n" +
        "                        [--alg EdDSA|ES256|HS256] [--only id,id|none] [--no-micro] [--micro-iterations N]\n" +
        `                        [--figures all|none|${FIGURE_GROUPS.join(",")}] [--write | --no-write] [--profile SCENARIO]`,
    );
    process.exit(0);
  }
  const quick = values.quick;
  const alg = values.alg ?? env.BENCH_ALG ?? "EdDSA";
  if (!SIGNING_ALGS.includes(alg as SigningAlg)) throw new Error(`--alg must be one of ${SIGNING_ALGS.join(", ")}`);
  const only = (values.only ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const figuresArg = values.figures?.trim();
  const figures = (
    figuresArg === undefined
      ? quick || only.length > 0
        ? []
        : [...FIGURE_GROUPS]
      : figuresArg === "all"
        ? [...FIGURE_GROUPS]
        : figuresArg === "none"
          ? []
          : figuresArg.split(",").map((s) => s.trim())
  ) as FigureGroup[];
  const unknownFigures = figures.filter((f) => !FIGURE_GROUPS.includes(f));
  if (unknownFigures.length)
    throw new Error(`unknown figure group ${unknownFigures.join(", ")}; known: ${FIGURE_GROUPS.join(", ")}`);
  const partial = quick || only.length > 0 || values.profile !== undefined || figures.length < FIGURE_GROUPS.length;
  return {
    quick,
    duration: num("--duration", values.duration ?? env.BENCH_DURATION, quick ? 2 : 5),
    warmup: num("--warmup", values.warmup ?? env.BENCH_WARMUP, 1),
    connections: Math.round(num("--connections", values.connections ?? env.BENCH_CONNECTIONS, 20)),
    rounds: Math.round(num("--rounds", values.rounds ?? env.BENCH_ROUNDS, 1)),
    alg: alg as SigningAlg,
    only,
    figures,
    micro: !values["no-micro"],
    microIterations: Math.round(
      num("--micro-iterations", values["micro-iterations"] ?? env.BENCH_MICRO_ITERATIONS, quick ? 5 : 20),
    ),
    write: values["no-write"] ? false : (values.write ?? !partial),
    profile: values.profile,
  };
}
