/**
 * Operator changes act at once in the isolate that took the call, with the real
 * pool cache delay (POOL_CACHE_SECONDS at its default, 3, not the 0 other pool
 * tests use); new sessions and restores keep out of regions known to be down.
 */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.ts";
import { observeRegionDown, regionsDown } from "../../src/origins/index.ts";
import { restoreRegion } from "../../src/replication/failover.ts";
import { healthyRegion } from "../../src/session/migration.ts";
import { BrowserClient } from "./harness.ts";
import { admin, poolEnv, spawnOrigins, type TestOrigin } from "./pool-harness.ts";
import { loginWith, sessionOf } from "./session-admin.ts";

/** The real cache delay: POOL_CACHE_SECONDS left at its default. */
const realCache = (origins: TestOrigin[], overrides: Record<string, string> = {}) =>
  poolEnv(origins, {
    POOL_CACHE_SECONDS: undefined,
    ENVIRONMENT: "staging",
    FAULT_INJECTION: "true",
    AUTO_MIGRATE: "false",
    ...overrides,
  });

describe("operator changes act at once where they were made", () => {
  it("a fault takes effect on this isolate's very next request, and the answer says when others see it", async () => {
    const origins = await spawnOrigins(2);
    const e = realCache(origins);
    const client = new BrowserClient(e);
    await client.send("/", loginWith({ cart: ["tea"] }));
    const home = String((await sessionOf(client)).oid);
    const other = origins.find((o) => o.id !== home)?.id;

    const res = await admin(e, "POST", "/faults", { target: `origin:${home}`, mode: "down" });
    expect(await res.json()).toMatchObject({ propagatesWithinSeconds: 3 });
    // Well within the 3 s cache: the view this isolate holds already has the fault.
    const { echo } = await client.echo();
    expect(echo.origin).toBe(other);
    expect(await sessionOf(client)).toMatchObject({ oid: other, sub: "ada", data: { cart: ["tea"] } });
  });

  it("a request in flight re-reads the view: a drain made while it waits keeps its retry off the drained origin", async () => {
    const [a, b, c] = await spawnOrigins(3, (i) => (i === 1 ? { weight: 1000 } : {}));
    if (!a || !b || !c) throw new Error("origins");
    const POOL_NAME = `pool-${crypto.randomUUID().slice(0, 12)}`;
    const e = realCache([a, b, c], { POOL_NAME });
    // Pin the client to a: the other two take no new sessions for a moment.
    for (const o of [b, c]) expect((await admin(e, "POST", `/origins/${o.id}/drain`, {})).status).toBe(200);
    const client = new BrowserClient(e);
    await client.send("/", loginWith({ cart: ["tea"] }));
    expect((await sessionOf(client)).oid).toBe(a.id);
    for (const o of [b, c]) {
      const undrained = await admin(e, "POST", `/origins/${o.id}/undrain`);
      expect(await undrained.json()).toMatchObject({ propagatesWithinSeconds: 3 });
    }

    // Now a stops answering (the same deployment, with a's URL on the test origin's never-answering path).
    const hanging = realCache([{ ...a, url: `${a.url}/hang` }, b, c], { POOL_NAME, ORIGIN_TIMEOUT: "1" });
    const stuck = new BrowserClient(hanging);
    stuck.cookie = client.cookie;
    const pending = stuck.echo("/echo");
    // While the request waits for a, the operator drains b (the heavy one it would fail over to).
    await new Promise((r) => setTimeout(r, 300));
    const drained = await admin(e, "POST", `/origins/${b.id}/drain`, {});
    expect(await drained.json()).toMatchObject({ propagatesWithinSeconds: 3 });
    const { echo } = await pending;
    expect(echo.origin).toBe(c.id);
  });
});

describe("new sessions are never homed in a region known to be down", () => {
  for (const warm of [false, true]) {
    it(`a login while the client's region is faulted down is homed elsewhere and survives the next request${warm ? " (view cached before the fault)" : ""}`, async () => {
      const origins = await spawnOrigins(2);
      const e = realCache(origins);
      if (warm) await new BrowserClient(e).send("/");
      expect((await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" })).status).toBe(200);
      const client = new BrowserClient(e);
      const login = await client.send("/", loginWith({ cart: ["tea"] }));
      expect(login.status).toBe(200);
      const s = await sessionOf(client);
      expect(s).toMatchObject({ sub: "ada", data: { cart: ["tea"] }, ver: 1 });
      expect(s.reg).toBe("wnam");
      // Still there once the region is back.
      await admin(e, "DELETE", "/faults");
      expect(await sessionOf(client)).toMatchObject({ sid: s.sid, sub: "ada", reg: "wnam" });
    });
  }
});

describe("placement policy (pure)", () => {
  it("healthyRegion: the preferred region, else the nearest usable one, never outside the jurisdiction", () => {
    const none = () => false;
    expect(healthyRegion("enam", undefined, none)).toBe("enam");
    expect(healthyRegion("enam", undefined, (r) => r === "enam")).toBe("wnam");
    expect(healthyRegion("enam", undefined, (r) => r === "enam" || r === "wnam")).toBe("weur");
    expect(healthyRegion("weur", "eu", (r) => r === "weur")).toBe("eeur");
    expect(healthyRegion("enam", "eu", none)).toBe("weur");
    expect(healthyRegion("weur", "eu", (r) => r === "weur" || r === "eeur")).toBeUndefined();
    expect(healthyRegion("apac", undefined, () => true)).toBeUndefined();
  });

  it("restoreRegion keeps out of the failed region and every region known to be down", () => {
    expect(restoreRegion("enam", "enam", undefined, new Set())).toBe("wnam");
    expect(restoreRegion("enam", "enam", undefined, new Set(["wnam"]))).toBe("weur");
    expect(restoreRegion("weur", "weur", "eu", new Set())).toBe("eeur");
    // Nowhere else allowed: it stays put rather than leave its jurisdiction.
    expect(restoreRegion("weur", "weur", "eu", new Set(["eeur"]))).toBe("weur");
  });

  it("a region whose object this isolate failed to reach counts as down for a short while", async () => {
    const origins = await spawnOrigins(1);
    const cfg = await loadConfig(realCache(origins));
    const now = Date.now();
    expect(regionsDown(cfg, [], now).has("apac")).toBe(false);
    observeRegionDown(cfg, "apac", now);
    expect([...regionsDown(cfg, [{ target: "region:me", mode: "down" }], now)].sort()).toEqual(["apac", "me"]);
    expect(regionsDown(cfg, [], now + 60_000).has("apac")).toBe(false);
  });
});
