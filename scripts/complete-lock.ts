/**
 * Adds lock entries for native packages of other platforms (macOS, Windows,
 * Android, musl) that `npm install` left out of package-lock.json.
 *
 * Why: the npm registry mirror this project's machines use serves only the
 * Linux builds of packages such as @biomejs/cli-* and @cloudflare/workerd-*, so
 * npm resolves the others to nothing and omits them from the lock. `npm ci`
 * then refuses the lock everywhere ("Missing: … from lock file"). An entry
 * with `optional`, `os` and `cpu` lets npm skip the package on a platform it
 * does not fit and fetch it (by version) on one it does.
 *
 *   npm install … && node scripts/complete-lock.ts
 */
import { readFileSync, writeFileSync } from "node:fs";

interface LockNode {
  version?: string;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  dev?: boolean;
  license?: string;
  engines?: Record<string, string>;
  optional?: boolean;
}

const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as { packages: Record<string, LockNode> };
const packages = lock.packages;

/** Where npm would look for `name` from the package at `from`: its own node_modules, then each ancestor's. */
function resolve(from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ""}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    const at = dir.lastIndexOf("/node_modules/");
    if (at < 0) return dir === "" ? undefined : resolve("", name);
    dir = dir.slice(0, at);
  }
}

function platformOf(name: string): Pick<LockNode, "os" | "cpu" | "libc"> | undefined {
  const m = /-(android|darwin|linux|win32|windows)-(arm64|x64|64)(-musl)?$/.exec(name);
  if (!m) return undefined;
  const os = m[1] === "windows" ? "win32" : (m[1] as string);
  const cpu = m[2] === "64" ? "x64" : (m[2] as string);
  return { os: [os], cpu: [cpu], ...(m[3] ? { libc: ["musl"] } : {}) };
}

let added = 0;
for (const [path, node] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(node.optionalDependencies ?? {})) {
    if (resolve(path, name)) continue;
    const platform = platformOf(name);
    // A sibling that is in the lock tells where npm puts this family and what it carries.
    const sibling = Object.keys(node.optionalDependencies ?? {})
      .map((n) => resolve(path, n))
      .find((p): p is string => p !== undefined);
    if (!platform || !sibling) continue;
    const where = sibling.slice(0, sibling.lastIndexOf("node_modules/") + "node_modules/".length) + name;
    const like = packages[sibling] ?? {};
    packages[where] = {
      version,
      ...platform,
      ...(like.dev ? { dev: true } : {}),
      ...(like.license ? { license: like.license } : {}),
      optional: true,
      ...(like.engines ? { engines: like.engines } : {}),
    };
    added++;
  }
}

const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))),
);
writeFileSync("package-lock.json", `${JSON.stringify({ ...lock, packages: sorted }, null, 2)}\n`);
console.log(`complete-lock: added ${added} entries`);
