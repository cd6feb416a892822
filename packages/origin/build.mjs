// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with .d.ts, using the TypeScript compiler only.
// Plain JavaScript on purpose: it runs on any Node that npm runs on, before anything else is built.
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync(join(here, "dist"), { recursive: true, force: true });
for (const project of ["tsconfig.esm.json", "tsconfig.cjs.json"]) {
  const run = spawnSync(process.execPath, [tsc, "-p", join(here, project)], { stdio: "inherit" });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
// The package is "type": "module"; this marks dist/cjs as CommonJS for Node and for TypeScript.
mkdirSync(join(here, "dist", "cjs"), { recursive: true });
writeFileSync(join(here, "dist", "cjs", "package.json"), '{ "type": "commonjs" }\n');
