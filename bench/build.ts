/**
 * Bundles the Workers the bench runs, with the same tool and settings as a
 * deploy (`wrangler deploy --dry-run`, which needs no account): the real
 * edge-session Worker from the project's wrangler.toml, and the two bench
 * Workers from their own configs. The three builds run in parallel.
 */
import { spawn } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";

export const BUILD_DIR = "bench/.build";

export interface Bundles {
  /** Paths relative to the project root (Miniflare wants scripts under the current directory). */
  edge: string;
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
  const [edge, baseline, micro] = await Promise.all([
    profile ? bundle("edge-profile", undefined, ["--minify=false"]) : bundle("edge", undefined),
    bundle("baseline", "bench/workers/baseline.wrangler.toml"),
    bundle("micro", "bench/workers/micro.wrangler.toml"),
  ]);
  return { edge, baseline, micro };
}
