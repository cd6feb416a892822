/**
 * What a deploy carries and what a cold isolate pays: the bundle's size (minified,
 * and gzipped as uploaded), its make-up by package (esbuild's metafile, same
 * entry and minification), and the first requests of a fresh workerd.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { BUILD_DIR } from "./build.ts";
import { startEdge } from "./edge.ts";
import { median } from "./figures/stats.ts";
import type { SigningAlg } from "./options.ts";

export interface Footprint {
  bundleBytes: number;
  gzipBytes: number;
  /** Bytes of the minified bundle by package (src: the project's own code). */
  byPackage: Record<string, number>;
  /** Median over the starts: workerd up and configured (the config parse runs on the first request). */
  startMs: number;
  /** A new session on a fresh isolate (config parse and key import included) and the same on a warm one. */
  firstRequestMs: number;
  warmRequestMs: number;
}

function packageOf(input: string): string {
  const at = input.lastIndexOf("node_modules/");
  if (at < 0) return "src";
  const parts = input.slice(at + "node_modules/".length).split("/");
  return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? "?");
}

function makeUp(): Record<string, number> {
  const out = join(BUILD_DIR, "metafile");
  const meta = join(out, "meta.json");
  execFileSync(
    "node_modules/.bin/esbuild",
    [
      "src/index.ts",
      "--bundle",
      "--format=esm",
      "--minify",
      "--conditions=workerd,worker,browser",
      "--external:cloudflare:*",
      "--external:node:*",
      `--metafile=${meta}`,
      `--outfile=${join(out, "index.js")}`,
      "--log-level=error",
    ],
    { stdio: "ignore" },
  );
  const parsed = JSON.parse(readFileSync(meta, "utf8")) as {
    outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
  };
  rmSync(out, { recursive: true, force: true });
  const by: Record<string, number> = {};
  for (const output of Object.values(parsed.outputs))
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs))
      by[packageOf(input)] = (by[packageOf(input)] ?? 0) + bytesInOutput;
  return Object.fromEntries(Object.entries(by).sort((a, b) => b[1] - a[1]));
}

async function timed(url: string, headers: Record<string, string> = {}): Promise<{ ms: number; res: Response }> {
  const t0 = performance.now();
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  return { ms: performance.now() - t0, res };
}

export async function measureFootprint(
  bundle: string,
  origins: string[],
  alg: SigningAlg,
  starts: number,
): Promise<Footprint> {
  const code = readFileSync(bundle);
  const start: number[] = [];
  const first: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < starts; i++) {
    const t0 = performance.now();
    const edge = await startEdge({ bundle, origins, alg, validate: false });
    start.push(performance.now() - t0);
    first.push((await timed(`${edge.url}/`)).ms);
    warm.push((await timed(`${edge.url}/`)).ms);
    await edge.stop();
  }
  return {
    bundleBytes: code.byteLength,
    gzipBytes: gzipSync(code).byteLength,
    byPackage: makeUp(),
    startMs: median(start),
    firstRequestMs: median(first),
    warmRequestMs: median(warm),
  };
}
