/**
 * `npm run check-config -- [--env staging] [--secrets FILE] [--config wrangler.toml]`
 *
 * Validates what a deploy would run with, before deploying: the vars of
 * wrangler.toml (for the chosen environment, read by wrangler itself) plus a
 * secrets file in .dev.vars / .env format, through the same schema the Worker
 * uses on its first request (src/config/). Every problem is listed at once.
 * Exit code 0: deployable; 1: problems. Secret values are never printed.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs, parseEnv } from "node:util";
import { unstable_readConfig } from "wrangler";

interface Problem {
  field: string;
  message: string;
}
interface ConfigCheck {
  config?: { origins: unknown[]; environment: string };
  problems: Problem[];
  operatorProblems: Problem[];
}
// The Worker's own parser. src/ is type-checked against the Workers types (tsconfig.json), not Node's,
// so it is loaded by a path TypeScript does not follow; only the shape above matters here.
const CONFIG_MODULE = "../src/config/index.ts";
const { checkConfig, CONFIG_NAMES } = (await import(CONFIG_MODULE)) as {
  checkConfig(env: Record<string, string>): Promise<ConfigCheck>;
  CONFIG_NAMES: readonly string[];
};

const { values } = parseArgs({
  options: {
    config: { type: "string", default: "wrangler.toml" },
    env: { type: "string" },
    secrets: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "usage: npm run check-config -- [--env NAME] [--secrets FILE (.dev.vars format)] [--config wrangler.toml]",
  );
  process.exit(0);
}

const SECRET_NAMES = ["SESSION_SIGNING_KEYS", "SNAPSHOT_KEY", "ADMIN_TOKEN", "ORIGIN_AUTH_SECRET"];

function readSecrets(path: string | undefined): Record<string, string> {
  if (!path) return {};
  if (!existsSync(path)) throw new Error(`no secrets file at ${path}`);
  return parseEnv(readFileSync(path, "utf8")) as Record<string, string>;
}

async function main(): Promise<number> {
  const config = unstable_readConfig(
    { config: values.config, ...(values.env ? { env: values.env } : {}) },
    { hideWarnings: true },
  );
  const vars = Object.fromEntries(
    Object.entries(config.vars ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  const secrets = readSecrets(values.secrets);
  const where = `${values.config}${values.env ? ` [env.${values.env}]` : ""}${values.secrets ? ` + ${values.secrets}` : ""}`;
  const warnings: string[] = [];
  for (const name of Object.keys(secrets))
    if (!CONFIG_NAMES.includes(name)) warnings.push(`${name} is in the secrets file but the layer does not read it`);
  for (const name of SECRET_NAMES)
    if (name in vars) warnings.push(`${name} is a plain var in ${values.config}: secrets belong in Worker secrets`);
  for (const name of config.secrets?.required ?? [])
    if (!(name in secrets)) warnings.push(`${name} is required by [secrets] but not in the secrets file`);
  if (/example\.(com|org|net)/.test(vars.ORIGINS ?? "")) warnings.push("ORIGINS still lists example.com placeholders");
  for (const route of config.routes ?? []) {
    const pattern = typeof route === "string" ? route : route.pattern;
    if (/example\.(com|org|net)/.test(pattern)) warnings.push(`the route ${pattern} is a placeholder`);
  }

  // The checks log as the Worker would (development-key warnings and such): keep this report readable.
  const original = { log: console.log, warn: console.warn, error: console.error };
  console.log = console.warn = console.error = () => {};
  const result = await checkConfig({ ...vars, ...secrets }).finally(() => Object.assign(console, original));

  console.log(`check-config: ${where}`);
  for (const p of result.problems) console.log(`  ✗ ${p.field}: ${p.message}`);
  for (const p of result.operatorProblems)
    console.log(`  ✗ ${p.field}: ${p.message} (the operator API would answer 503; proxying is unaffected)`);
  for (const w of warnings) console.log(`  ! ${w}`);
  const failed = result.problems.length + result.operatorProblems.length;
  console.log(
    failed
      ? `${failed} problem${failed === 1 ? "" : "s"}: fix ${failed === 1 ? "it" : "them"} before deploying`
      : `ok: ${result.config?.origins.length ?? 0} origin(s), environment ${result.config?.environment}${warnings.length ? `, ${warnings.length} warning(s)` : ""}`,
  );
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`check-config: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  },
);
