/**
 * Locking origins to the layer: with ORIGIN_AUTH_SECRET set, every request an
 * origin receives through the layer carries it in X-Edge-Origin-Auth, and a
 * client can never send its own (it could otherwise reach a locked origin by
 * guessing nothing at all when the secret is unset, or replay a stale one).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { BASE, BrowserClient, callWorker, edgeEnv, header } from "./harness.ts";

const SECRET = "origin-auth-secret-0123456789-abcdefghij";

afterEach(() => vi.restoreAllMocks());

describe("X-Edge-Origin-Auth", () => {
  it("carries ORIGIN_AUTH_SECRET to the origin, replacing any client-sent value", async () => {
    const client = new BrowserClient(edgeEnv({ ORIGIN_AUTH_SECRET: SECRET }));
    const { echo } = await client.echo("/echo", { headers: { "x-edge-origin-auth": "forged-by-the-client" } });
    expect(header(echo, "x-edge-origin-auth")).toBe(SECRET);
  });

  it("without the secret, a client-sent value never reaches the origin", async () => {
    const client = new BrowserClient(edgeEnv());
    const { echo } = await client.echo("/echo", { headers: { "x-edge-origin-auth": "forged-by-the-client" } });
    expect(header(echo, "x-edge-origin-auth")).toBeUndefined();
  });

  it("a secret too short to be a secret is a configuration error", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await callWorker(new Request(`${BASE}/`), edgeEnv({ ORIGIN_AUTH_SECRET: "short" }));
    expect(res.status).toBe(500);
    const line = logged.mock.calls.map((c) => String(c[0])).find((l) => l.includes("config_invalid"));
    expect(line).toMatch(/ORIGIN_AUTH_SECRET: must be at least 32 characters/);
    expect(line).not.toContain('"short"');
  });
});
