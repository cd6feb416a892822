/**
 * `npm run check-config`: wrangler.toml (per environment, as wrangler reads it)
 * plus a secrets file, through the Worker's own schema, before a deploy.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "./support/wrangler-dev.ts";

const dir = mkdtempSync(join(tmpdir(), "edge-check-config-"));

function secretsFile(name: string, values: Record<string, string>): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    Object.entries(values)
      .map(([k, v]) => `${k}='${v}'\n`)
      .join(""),
  );
  return path;
}

function checkConfig(...args: string[]) {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "scripts", "check-config.ts"), ...args], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

let good: Record<string, string>;
beforeAll(async () => {
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  good = {
    SESSION_SIGNING_KEYS: JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "k1", alg: "EdDSA" }] }),
    SNAPSHOT_KEY: randomBytes(32).toString("base64"),
    ADMIN_TOKEN: randomBytes(24).toString("base64url"),
    ORIGIN_AUTH_SECRET: randomBytes(32).toString("base64url"),
  };
});

describe("npm run check-config", () => {
  it.each([[[]], [["--env", "staging"]]])("passes wrangler.toml %j with a complete secrets file", (envArgs) => {
    const { code, out } = checkConfig(...envArgs, "--secrets", secretsFile("good", good));
    expect(out).toMatch(/^ok: 1 origin\(s\)/m);
    expect(code).toBe(0);
    for (const value of Object.values(good)) expect(out).not.toContain(value.slice(0, 16));
  });

  it("lists every problem at once, the operator-only one apart, and quotes no secret", () => {
    const bad = {
      SESSION_SIGNING_KEYS: '{"keys":[{"kty":"oct","kid":"h","k":"c2hvcnQ"}',
      SNAPSHOT_KEY: "dG9vLXNob3J0",
      ADMIN_TOKEN: "has spaces, and is short",
    };
    const { code, out } = checkConfig("--secrets", secretsFile("bad", bad));
    expect(code).toBe(1);
    expect(out).toMatch(/✗ SESSION_SIGNING_KEYS: is not valid JSON \(at position \d+\)/);
    expect(out).toMatch(/✗ SNAPSHOT_KEY: /);
    expect(out).toMatch(/✗ ADMIN_TOKEN: .*proxying is unaffected/);
    expect(out).toMatch(/^3 problems/m);
    expect(out).not.toContain("c2hvcnQ");
  });

  it("says when the secrets a deploy requires are missing", () => {
    const { code, out } = checkConfig("--env", "staging");
    expect(code).toBe(1);
    expect(out).toMatch(/SESSION_SIGNING_KEYS: is not set/);
    expect(out).toMatch(/SNAPSHOT_KEY: is not set/);
  });
});
