/**
 * The docs keep up with the code: every error code the source can raise is in
 * the README, and no page speaks of numbered issues a reader cannot see.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "./support/wrangler-dev.ts";

function filesUnder(dir: string): string[] {
  return readdirSync(join(PROJECT_ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(PROJECT_ROOT, path)).isDirectory() ? filesUnder(path) : [path];
  });
}
const read = (path: string) => readFileSync(join(PROJECT_ROOT, path), "utf8");

describe("the docs", () => {
  it("document every ERR_ code the layer can answer or log", () => {
    const readme = read("README.md");
    const codes = new Set<string>();
    for (const file of filesUnder("src").filter((f) => f.endsWith(".ts")))
      for (const m of read(file).matchAll(/["`](ERR_[A-Z0-9_]+)["`]/g)) if (m[1]) codes.add(m[1]);
    expect(codes.size).toBeGreaterThan(20);
    expect([...codes].filter((code) => !readme.includes(code)).sort()).toEqual([]);
  });

  it("never refer to numbered issues", () => {
    const files = ["README.md", ...filesUnder("docs"), ...filesUnder("src"), ...filesUnder("test")].filter((f) =>
      /\.(md|ts)$/.test(f),
    );
    const hits = files.flatMap((f) =>
      read(f)
        .split("\n")
        .map((line, i) => ({ at: `${f}:${i + 1}`, line }))
        .filter(({ line }) => /[Ii]ssues? #?[0-9]/.test(line) && !line.includes("NUMBERED_ISSUE_PATTERN")),
    );
    expect(hits).toEqual([]);
  });
});
