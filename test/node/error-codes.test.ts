/** One error vocabulary: every code the layer uses is in ErrorCode, and every one is documented in the README. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/errors.ts";

const root = join(import.meta.dirname, "../..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sourceFiles(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : [],
  );
}

describe("error codes", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(
    readme.indexOf("\n## Errors\n"),
    readme.indexOf("\n## ", readme.indexOf("\n## Errors\n") + 1),
  );

  it("the README's Errors section documents every code in ErrorCode", () => {
    expect(section.length).toBeGreaterThan(100);
    const missing = ERROR_CODES.filter((code) => !section.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it("every ERR_* code written in src/ is in ErrorCode", () => {
    const known = new Set<string>(ERROR_CODES);
    const used = new Set<string>();
    for (const file of sourceFiles(join(root, "src")))
      for (const m of readFileSync(file, "utf8").matchAll(/\bERR_[A-Z0-9_]*[A-Z0-9]\b/g)) used.add(m[0]);
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((c) => !known.has(c))).toEqual([]);
  });
});
