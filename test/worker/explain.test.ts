import { describe, expect, it } from "vitest";
import { BrowserClient } from "./harness.ts";
import { admin, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { loginWith, migrate, sessionOf, snapshotAtLeast } from "./session-admin.ts";

/** The Analytics Engine binding as the layer sees it, keeping what it is given (the local one drops points). */
function recordingDataset() {
  const points: AnalyticsEngineDataPoint[] = [];
  return { points, dataset: { writeDataPoint: (p?: AnalyticsEngineDataPoint) => void points.push(p ?? {}) } };
}

async function setup(overrides: Record<string, string> = {}, n = 2) {
  const origins = await spawnOrigins(n);
  const metrics = recordingDataset();
  const e = {
    ...poolEnv(origins, {
      ENVIRONMENT: "staging",
      FAULT_INJECTION: "true",
      AUTO_MIGRATE: "false",
      SESSION_STATUS_HEADER: "true",
      ...overrides,
    }),
    METRICS: metrics.dataset,
  } as unknown as Env;
  const client = new BrowserClient(e);
  return { e, client, origins, points: metrics.points };
}

const status = (res: Response) => res.headers.get("x-edge-session-status");

/** Server-Timing as {name: ms}; every entry must carry a duration. */
function serverTiming(res: Response): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of (res.headers.get("server-timing") ?? "").split(",")) {
    const [name, ...params] = entry.trim().split(";");
    const dur = params.find((p) => p.trim().startsWith("dur="));
    if (name && dur) out[name] = Number(dur.trim().slice(4));
  }
  return out;
}

describe("Server-Timing", () => {
  it("on a new session: no token step; on a returning one: token, session object and origin", async () => {
    const { client } = await setup();
    const first = await client.send("/echo");
    const t1 = serverTiming(first);
    expect(Object.keys(t1).sort()).toEqual(["origin", "session", "total"]);
    expect(t1.origin).toBeGreaterThanOrEqual(0);

    const again = await client.send("/echo");
    const t2 = serverTiming(again);
    expect(Object.keys(t2).sort()).toEqual(["origin", "session", "token", "total"]);
    for (const v of Object.values(t2)) expect(Number.isFinite(v) && v >= 0).toBe(true);
  });

  it("keeps the origin's own Server-Timing entries and appends the layer's", async () => {
    const { client } = await setup();
    const res = await client.send("/echo", { respond: { headers: { "server-timing": "db;dur=53" } } });
    const t = serverTiming(res);
    expect(t.db).toBe(53);
    expect(t.origin).toBeDefined();
  });

  it("is on the layer's own error responses too (strict mode 401)", async () => {
    const { client } = await setup({ STRICT_TOKENS: "true" });
    client.cookie = "not-a-token";
    const res = await client.send("/echo");
    expect(res.status).toBe(401);
    expect(serverTiming(res).total).toBeGreaterThanOrEqual(0);
    // No session was settled, so there is no status to give (not a "hit").
    expect(status(res)).toBeNull();
  });
});

describe("X-Edge-Session-Status", () => {
  it("new, then hit", async () => {
    const { client } = await setup();
    expect(status(await client.send("/echo"))).toBe("new");
    expect(status(await client.send("/echo"))).toBe("hit");
  });

  it("new with the reason when a token is refused, and the refusal is counted", async () => {
    const { client, points } = await setup();
    client.cookie = "not-a-token";
    expect(status(await client.send("/echo"))).toBe("new; reason=ERR_TOKEN_MALFORMED");
    expect(points).toContainEqual(
      expect.objectContaining({ indexes: ["token_rejected"], blobs: expect.arrayContaining(["ERR_TOKEN_MALFORMED"]) }),
    );
  });

  it("repin; reason=drained after the session's origin is drained, counted per origin", async () => {
    const { e, client, points } = await setup();
    await client.send("/", loginWith({ cart: ["tea"] }));
    const { oid } = await sessionOf(client);
    expect((await admin(e, "POST", `/origins/${oid}/drain`, { in: 0 })).status).toBe(200);
    const res = await client.send("/echo");
    expect(status(res)).toBe("repin; reason=drained");
    const { oid: now } = await sessionOf(client);
    expect(now).not.toBe(oid);
    expect(points).toContainEqual({
      indexes: ["repin"],
      blobs: ["repin", now, "enam", `${oid}→${now} drained`],
      doubles: [1, 0],
    });
    expect(status(await client.send("/echo"))).toBe("hit");
  });

  it("repin; reason=connect_failed after the session's origin is faulted down", async () => {
    const { e, client } = await setup();
    await client.send("/", loginWith({ cart: ["tea"] }));
    const { oid } = await sessionOf(client);
    await admin(e, "POST", "/faults", { target: `origin:${oid}`, mode: "down" });
    const res = await client.send("/echo");
    expect(res.status).toBe(200);
    expect(status(res)).toBe("repin; reason=connect_failed");
  });

  it("restored after the session's region is faulted down", async () => {
    // Strict: with the cache on, the read during the outage is answered from memory (no restore yet).
    const { e, client, points } = await setup({ READ_CACHE_SECONDS: "0" });
    await client.send("/", loginWith({ cart: ["tea"] }));
    const { sid } = await sessionOf(client);
    await snapshotAtLeast(String(sid), 1);
    await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" });
    const res = await client.send("/echo");
    expect(status(res)).toBe("restored");
    expect(points.find((p) => p.indexes?.[0] === "restore")?.blobs?.[3]).toMatch(/^enam→\w+ ERR_FAULT_INJECTED$/);
    expect(status(await client.send("/echo"))).toBe("hit");
  });

  it("migrated after an operator migration, then hit", async () => {
    const { e, client } = await setup();
    await client.send("/", loginWith({ cart: ["tea"] }));
    const { sid } = await sessionOf(client);
    expect((await migrate(e, String(sid), { region: "apac" })).status).toBe(200);
    expect(status(await client.send("/echo"))).toBe("migrated");
    expect(status(await client.send("/echo"))).toBe("hit");
  });

  it("is off unless enabled (the default outside development); the layer works without a METRICS binding", async () => {
    const origins = await spawnOrigins(1);
    const e = poolEnv(origins, { SESSION_STATUS_HEADER: undefined, METRICS: undefined });
    expect((e as unknown as Record<string, unknown>).METRICS).toBeUndefined();
    const client = new BrowserClient(e);
    client.cookie = "not-a-token";
    const res = await client.send("/echo");
    expect(res.status).toBe(200);
    expect(res.headers.has("x-edge-session-status")).toBe(false);
    expect(serverTiming(res).origin).toBeGreaterThanOrEqual(0);
  });
});
