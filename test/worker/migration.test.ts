import { describe, expect, it } from "vitest";
import { BrowserClient } from "./harness.ts";
import { admin, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { loginWith, migrate, sessionOf, storedAt } from "./session-admin.ts";

async function setup(overrides: Record<string, string> = {}) {
  const origins = await spawnOrigins(2);
  const e = poolEnv(origins, { AUTO_MIGRATE: "false", ...overrides });
  const client = new BrowserClient(e);
  await client.send("/", loginWith({ cart: ["tea"] }));
  const s = await sessionOf(client);
  return { e, client, sid: String(s.sid), oid: String(s.oid) };
}

describe("operator migration", () => {
  it("moves a session to another region with its data and login; the client follows", async () => {
    const { e, client, sid, oid } = await setup();
    const res = await migrate(e, sid, { region: "apac" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: "migrated",
      from: { ep: 1, reg: "enam" },
      to: { ep: 2, reg: "apac" },
    });

    const before = client.cookie;
    const s = await sessionOf(client);
    expect(s).toMatchObject({ sid, ep: 2, reg: "apac", oid, sub: "ada", data: { cart: ["tea"] }, ver: 1 });
    expect(client.cookie).not.toBe(before);
    expect(await storedAt(sid, 1)).toMatchObject({
      status: "moved",
      to: { epoch: 2, region: "apac" },
      reason: "migrated",
    });
    expect(await storedAt(sid, 2)).toMatchObject({ status: "active", epoch: 2, region: "apac", sub: "ada" });
    const audit = ((await (await admin(e, "GET", `/sessions/${sid}`)).json()) as { audit: { event: string }[] }).audit;
    expect(audit.map((a) => a.event)).toEqual(["created", "login", "migrated_in"]);
  });

  it("20 concurrent writers during a migration: every write present exactly once afterwards", async () => {
    const { e, client, sid } = await setup();
    const writes = Array.from({ length: 20 }, (_, i) =>
      client.send(`/w/${i}`, { respond: { headers: { "x-edge-session-set": JSON.stringify({ [`w${i}`]: i }) } } }),
    );
    const moving = migrate(e, sid, { region: "weur" });
    const results = await Promise.all(writes);
    for (const r of results) expect(r.status).toBe(200);
    expect((await moving).status).toBe(200);

    const s = await sessionOf(client);
    expect(s.reg).toBe("weur");
    const data = s.data as Record<string, unknown>;
    for (let i = 0; i < 20; i++) expect(data[`w${i}`]).toBe(i);
    // One version per write: nothing lost, nothing applied twice.
    expect(s.ver).toBe(1 + 20);
    expect(await storedAt(sid, 1)).toMatchObject({ status: "moved" });
  });

  it("a write through a stale, pre-migration token lands in the new object", async () => {
    const { e, client, sid } = await setup();
    const stale = client.cookie;
    expect((await migrate(e, sid, { region: "apac" })).status).toBe(200);
    const old = new BrowserClient(e);
    old.cookie = stale;
    await old.send("/", { respond: { headers: { "x-edge-session-set": '{"after":"migration"}' } } });
    expect(old.cookie).not.toBe(stale);
    expect(await storedAt(sid, 2)).toMatchObject({ data: { cart: ["tea"], after: "migration" }, version: 2 });
    expect(await storedAt(sid, 1)).toMatchObject({ status: "moved" });
  });

  it("two migrations back to back; the oldest token still reaches the session through both forwards", async () => {
    const { e, client, sid } = await setup();
    const oldest = client.cookie;
    expect((await migrate(e, sid, { region: "apac" })).status).toBe(200);
    expect((await migrate(e, sid, { region: "weur" })).status).toBe(200);
    const old = new BrowserClient(e);
    old.cookie = oldest;
    expect(await sessionOf(old)).toMatchObject({ sid, ep: 3, reg: "weur", sub: "ada", data: { cart: ["tea"] } });
  });

  it("refuses unknown (404), ended (409) and already-there (409) sessions, and bad input (400)", async () => {
    const { e, client, sid } = await setup();
    expect((await migrate(e, "A".repeat(24), { region: "apac" })).status).toBe(404);
    const bad = await migrate(e, sid, { region: "mars" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^region: /);
    const here = await migrate(e, sid, { region: "enam" });
    expect(here.status).toBe(409);
    await client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    const ended = await migrate(e, sid, { region: "apac" });
    expect(ended.status).toBe(409);
    expect(((await ended.json()) as { error: { code: string } }).error.code).toBe("ERR_SESSION_ENDED");
  });
});

describe("automatic migration", () => {
  const tokyo = { continent: "AS", country: "JP" };

  it("follows the client to another region only after the hysteresis (requests)", async () => {
    const { client, sid } = await setup({
      AUTO_MIGRATE: "true",
      MIGRATE_AFTER_REQUESTS: "4",
      MIGRATE_AFTER_SECONDS: "0",
      // Strict reads, so the object counts every request (the read cache tells it of reads by sampling).
      READ_CACHE_SECONDS: "0",
    });
    const regions: string[] = [];
    for (let i = 0; i < 6; i++) regions.push(String((await sessionOf(client, "/echo", tokyo)).reg));
    // Seen from apac on requests 1–4; the 4th starts the migration; later requests are forwarded.
    expect(regions.slice(0, 4)).toEqual(["enam", "enam", "enam", "enam"]);
    expect(regions.at(-1)).toBe("apac");
    expect(await storedAt(sid, 1)).toMatchObject({ status: "moved", to: { region: "apac" } });
  });

  it("does not migrate a client that only passes through (a request from home resets the count)", async () => {
    const { client } = await setup({ AUTO_MIGRATE: "true", MIGRATE_AFTER_REQUESTS: "3", MIGRATE_AFTER_SECONDS: "0" });
    for (let i = 0; i < 4; i++) {
      await sessionOf(client, "/echo", tokyo);
      await sessionOf(client, "/echo", tokyo);
      await sessionOf(client, "/echo");
    }
    expect((await sessionOf(client)).reg).toBe("enam");
  });

  it("does not migrate before MIGRATE_AFTER_SECONDS, however many requests", async () => {
    const { client } = await setup({
      AUTO_MIGRATE: "true",
      MIGRATE_AFTER_REQUESTS: "1",
      MIGRATE_AFTER_SECONDS: "3600",
    });
    for (let i = 0; i < 10; i++) await sessionOf(client, "/echo", tokyo);
    expect((await sessionOf(client, "/echo", tokyo)).reg).toBe("enam");
  });
});

describe("jurisdiction pinning", () => {
  const berlin = { continent: "EU", country: "DE", isEUCountry: "1" };

  it("a session started in the EU lives in the eu jurisdiction and refuses to leave it", async () => {
    const origins = await spawnOrigins(1);
    const e = poolEnv(origins, {
      JURISDICTIONS: "eu",
      AUTO_MIGRATE: "true",
      MIGRATE_AFTER_REQUESTS: "1",
      MIGRATE_AFTER_SECONDS: "0",
    });
    const client = new BrowserClient(e);
    await client.send("/", { ...loginWith({ n: 1 }), cf: berlin });
    const s = await sessionOf(client, "/echo", berlin);
    expect(s).toMatchObject({ jur: "eu", reg: "weur" });
    const sid = String(s.sid);
    expect(await storedAt(sid, 1, "eu")).toMatchObject({ status: "active", jurisdiction: "eu" });

    const out = await migrate(e, sid, { region: "apac" });
    expect(out.status).toBe(409);
    expect(((await out.json()) as { error: { code: string } }).error.code).toBe("ERR_JURISDICTION");

    // Seen from Tokyo: no automatic migration out of the jurisdiction either.
    for (let i = 0; i < 3; i++) await sessionOf(client, "/echo", { continent: "AS", country: "JP" });
    expect((await sessionOf(client)).reg).toBe("weur");

    const inside = await migrate(e, sid, { region: "eeur" });
    expect(inside.status).toBe(200);
    expect(await sessionOf(client, "/echo", berlin)).toMatchObject({ jur: "eu", reg: "eeur", ep: 2, data: { n: 1 } });
  });
});

describe("pretending to be elsewhere in development", () => {
  it("X-Edge-Dev-Region sets the client's region only when ENVIRONMENT=development", async () => {
    const origins = await spawnOrigins(1);
    const dev = new BrowserClient(poolEnv(origins, { ENVIRONMENT: "development" }));
    expect(
      (await dev.echo("/", { headers: { "x-edge-dev-region": "oc" } })).echo.headers["x-edge-dev-region"],
    ).toBeUndefined();
    expect(await sessionOf(dev)).toMatchObject({ reg: "oc" });
    const prod = new BrowserClient(poolEnv(origins));
    await prod.send("/", { headers: { "x-edge-dev-region": "oc" } });
    expect(await sessionOf(prod)).toMatchObject({ reg: "enam" });
  });
});
