/**
 * Vitest globalSetup for the node project: the tests import the origin package
 * (`edge-session-origin`) as its users do, from its compiled dist/. `npm ci`
 * builds it (the workspace's `prepare`); this rebuilds it when a source file is
 * newer than the build, so a test never runs against stale output.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "./wrangler-dev.ts";

const PACKAGE = join(PROJECT_ROOT, "packages", "origin");

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

export default function setup(): void {
  const built = Math.min(
    mtime(join(PACKAGE, "dist", "esm", "index.js")),
    mtime(join(PACKAGE, "dist", "cjs", "index.js")),
  );
  const sources = readdirSync(join(PACKAGE, "src")).map((f) => mtime(join(PACKAGE, "src", f)));
  if (built > Math.max(...sources, mtime(join(PACKAGE, "package.json")))) return;
  const run = spawnSync(process.execPath, [join(PACKAGE, "build.mjs")], { stdio: "inherit" });
  if (run.status !== 0) throw new Error("building packages/origin failed");
}
