/**
 * Bundles the Workers the bench runs, with the same tool and settings as a
 * deploy (`wrangler deploy --dry-run`, which needs no account): the real
 * edge-session Worker from the project's wrangler.toml, the same Worker behind
 * the counting shim (bench/workers/counting/entry.ts, same config), and the two
 * bench Workers from their own configs. The builds run in parallel.
 *
 * Each run bundles into its own folder (bench/.build/run-<pid>), removed when
 * it ends, so that two runs at once (say, a quick one while a full one runs)
 * never rebuild each other's bundles.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { atExit } from "./cleanup.ts";

export const BUILD_DIR = join("bench/.build", `run-${process.pid}`);

export interface Bundles {
  /** Paths relative to the project root (Miniflare wants scripts under the current directory). */
  edge: string;
  /** The edge Worker behind the counting shim (bench/cost.ts). */
  counting: string;
  baseline: string;
  micro: string;
}

function wrangler(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // Run wrangler's JS entry with this Node (24), not whatever `node` its shebang would find on PATH.
    const child = spawn(process.execPath, ["node_modules/wrangler/bin/wrangler.js", ...args], {
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`wrangler ${args.join(" ")} exited ${code}:\n${output}`)),
    );
  });
}

async function bundle(name: string, config: string | undefined, extra: string[] = []): Promise<string> {
  const outdir = join(BUILD_DIR, name);
  await rm(outdir, { recursive: true, force: true });
  // Absolute: with --config, wrangler resolves a relative --outdir against the config's folder.
  const args = ["deploy", "--dry-run", "--outdir", resolve(outdir), ...(config ? ["--config", config] : []), ...extra];
  await wrangler(args);
  // The bundle is named after the entry module (index.js for src/index.ts).
  const script = (await readdir(outdir)).find((f) => f.endsWith(".js"));
  if (!script) throw new Error(`wrangler wrote no bundle to ${outdir}`);
  return join(outdir, script);
}

/**
 * `profile`: the edge Worker unminified, so that a CPU profile names functions
 * and esbuild's `// src/…` comments tell which module each line comes from.
 */
export async function buildAll(profile = false): Promise<Bundles> {
  atExit(() => rmSync(BUILD_DIR, { recursive: true, force: true }));
  const [edge, counting, baseline, micro] = await Promise.all([
    profile ? bundle("edge-profile", undefined, ["--minify=false"]) : bundle("edge", undefined),
    // The project's wrangler.toml with another entry module: same bindings, classes and build settings.
    bundle("counting", undefined, ["bench/workers/counting/entry.ts"]),
    bundle("baseline", "bench/workers/baseline.wrangler.toml"),
    bundle("micro", "bench/workers/micro.wrangler.toml"),
  ]);
  return { edge, counting, baseline, micro };
}
