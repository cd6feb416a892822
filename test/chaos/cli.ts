/**
 * `npm run chaos`: the long form of the chaos test. Prints a table per scenario
 * and the problems seen; exits 1 when a failure was counted (lost writes,
 * writes applied twice, two truths, lost logins or logouts, 5xx outside the
 * contract).
 *
 *   npm run chaos -- --duration 60 --clients 48 --seed 1 --only migrate,region-outage --markdown
 */
import { parseArgs } from "node:util";
import { FAILURE_KINDS } from "./ledger.ts";
import { markdownReport, textReport } from "./report.ts";
import { runChaos } from "./run.ts";
import { SCENARIOS } from "./scenarios.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "60" },
    clients: { type: "string", default: "48" },
    seed: { type: "string", default: "1" },
    only: { type: "string" },
    markdown: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log(`npm run chaos -- [--duration seconds (60, at most 300)] [--clients n (48)] [--seed n (1)]
                    [--only ${SCENARIOS.map((s) => s.name).join(",")}] [--markdown]`);
  process.exit(0);
}

const number = (name: string, value: string, min: number, max: number): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
};

function commandLine(): string {
  const args = process.argv.slice(2).join(" ");
  return `npm run chaos${args ? ` -- ${args}` : ""}`;
}

try {
  const result = await runChaos({
    durationMs: number("duration", values.duration, 5, 300) * 1000,
    clients: number("clients", values.clients, 6, 200),
    seed: number("seed", values.seed, 0, 2 ** 31),
    ...(values.only ? { only: values.only.split(",") } : {}),
    say: (line) => console.log(`chaos: ${line}`),
  });
  console.log(`\n${textReport(result)}`);
  if (values.markdown) console.log(`\n${markdownReport(result, commandLine())}`);
  const failures = result.ledger.problems.filter((p) => FAILURE_KINDS.includes(p.kind)).length;
  console.log(
    `\nchaos: ${failures ? `${failures} failures` : "no failures"} in ${(result.elapsedMs / 1000).toFixed(0)} s`,
  );
  process.exitCode = failures ? 1 : 0;
} catch (e) {
  console.error(`chaos: failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 2;
}
