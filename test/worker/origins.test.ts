import { afterEach, describe, expect, it, vi } from "vitest";
import { BrowserClient, receivedBy } from "./harness.ts";
import {
  admin,
  editPool,
  failOrigin,
  originsStatus,
  poolEnv,
  runHealthChecks,
  spawnOrigins,
  startOrigin,
  stopOrigin,
  type TestOrigin,
} from "./pool-harness.ts";
import { forwardedOf } from "./tokens.ts";

afterEach(() => vi.restoreAllMocks());

const login = {
  respond: { headers: { "x-edge-session-login": '{"sub":"ada"}', "x-edge-session-set": '{"cart":["tea"]}' } },
};

async function loggedInClient(e: Env) {
  const client = new BrowserClient(e);
  await client.send("/", login);
  const s = forwardedOf((await client.echo()).echo);
  return { client, home: String(s.oid), sid: String(s.sid) };
}

async function receipts(
  origins: TestOrigin[],
  tag: string,
  method: string,
  path: string,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const o of origins) {
    const seen = await receivedBy(o.url, tag);
    counts[o.id] = seen.filter((r) => r.method === method && r.url === path).length;
  }
  return counts;
}

describe("failover when the assigned origin dies", () => {
  it("the next GET succeeds on another origin with the same data and login, and stays there", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins);
    const { client, home, sid } = await loggedInClient(e);
    await stopOrigin(home);

    const { echo } = await client.echo("/after-death");
    const s = forwardedOf(echo);
    expect(echo.origin).not.toBe(home);
    expect(s).toMatchObject({ sid, sub: "ada", data: { cart: ["tea"] }, prev_oid: home, reason: "connect_failed" });

    const newHome = echo.origin;
    await startOrigin(home);
    for (let i = 0; i < 5; i++) {
      const next = await client.echo(`/later/${i}`);
      expect(next.echo.origin).toBe(newHome);
      expect(forwardedOf(next.echo)).toMatchObject({ sid, sub: "ada", data: { cart: ["tea"] } });
      expect(forwardedOf(next.echo).prev_oid).toBeUndefined();
    }
  });

  it("a POST during the origin's death is answered 502 and never sent twice; the session moves for the next request", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins);
    const { client, home } = await loggedInClient(e);
    await stopOrigin(home);

    const res = await client.send("/order", {
      method: "POST",
      body: "one order",
      headers: { "content-type": "text/plain" },
    });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_ORIGIN_UNREACHABLE");
    await startOrigin(home);
    const counts = await receipts(origins, client.tag, "POST", "/order");
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);

    const next = await client.echo("/after");
    expect(next.echo.origin).not.toBe(home);
    expect(forwardedOf(next.echo).sub).toBe("ada");
  });

  it("a POST that reached an origin answering 503 is not retried elsewhere: exactly one receipt", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins);
    const { client, home } = await loggedInClient(e);
    await failOrigin(home, 503);
    const res = await client.send("/pay", { method: "POST", body: "pay once" });
    expect(res.status).toBe(503);
    const counts = await receipts(origins, client.tag, "POST", "/pay");
    expect(counts).toEqual(Object.fromEntries(origins.map((o) => [o.id, o.id === home ? 1 : 0])));
  });

  it("retries an idempotent request (a POST with an Idempotency-Key, a PUT with its body) on another origin", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins);
    const { client, home } = await loggedInClient(e);
    await stopOrigin(home);
    const post = await client.echo("/charge", { method: "POST", body: "x", headers: { "idempotency-key": "k-1" } });
    expect(post.echo.origin).not.toBe(home);
    const put = await client.echo("/doc", { method: "PUT", body: "the document" });
    expect(put.echo.body).toBe("the document");
    await startOrigin(home);
    const counts = await receipts(origins, client.tag, "POST", "/charge");
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);
  });
});

describe("active health checks", () => {
  const checked = (i: number): Partial<TestOrigin> => ({
    health: { path: `/health-${i}`, interval: 60, rise: 2, fall: 2 },
  });

  it("an origin failing its checks gets no new sessions, and its sessions move with their state", async () => {
    const origins = await spawnOrigins(3, checked);
    const e = poolEnv(origins);
    const { client, home, sid } = await loggedInClient(e);
    await failOrigin(home, 503);
    await runHealthChecks(e);
    expect((await originsStatus(e)).find((o) => o.id === home)?.health.state).toBe("healthy"); // fall = 2
    await runHealthChecks(e);
    expect((await originsStatus(e)).find((o) => o.id === home)).toMatchObject({
      health: { state: "unhealthy" },
      takesNewSessions: false,
    });

    for (let i = 0; i < 12; i++) expect((await new BrowserClient(e).echo()).echo.origin).not.toBe(home);
    const moved = forwardedOf((await client.echo()).echo);
    expect(moved).toMatchObject({ sid, sub: "ada", data: { cart: ["tea"] }, prev_oid: home, reason: "unhealthy" });
  });

  it("an unhealthy origin takes sessions again only after `rise` good checks", async () => {
    const origins = await spawnOrigins(2, checked);
    const e = poolEnv(origins);
    const [a] = origins;
    if (!a) throw new Error("no origin");
    await originsStatus(e);
    await failOrigin(a.id, 500);
    await runHealthChecks(e);
    await runHealthChecks(e);
    await failOrigin(a.id, null);
    await runHealthChecks(e);
    expect((await originsStatus(e)).find((o) => o.id === a.id)?.health.state).toBe("unhealthy");
    await runHealthChecks(e);
    expect((await originsStatus(e)).find((o) => o.id === a.id)?.health.state).toBe("healthy");
  });

  it("under `temporary`, a flapping home origin does not pull its sessions back before RETURN_HOME_AFTER", async () => {
    const origins = await spawnOrigins(2, (i) => ({ health: { path: `/h${i}`, interval: 60, rise: 1, fall: 1 } }));
    const e = poolEnv(origins, { FAILOVER_POLICY: "temporary", RETURN_HOME_AFTER: "300" });
    const { client, home, sid } = await loggedInClient(e);
    const flap = async (status: number | null) => {
      await failOrigin(home, status);
      await runHealthChecks(e);
    };
    await flap(503);
    const away = (await client.echo()).echo.origin;
    expect(away).not.toBe(home);
    const trace: string[] = [];
    for (const status of [null, 503, null, 503, null]) {
      await flap(status);
      trace.push((await client.echo()).echo.origin);
    }
    expect(trace).toEqual([away, away, away, away, away]);

    // Once the home origin has been healthy for RETURN_HOME_AFTER, the session goes back, state intact.
    await editPool(e, (s) => {
      const rt = s.runtime[home];
      if (rt) rt.health.since -= 301_000;
    });
    const back = forwardedOf((await client.echo()).echo);
    expect(back).toMatchObject({
      oid: home,
      sid,
      sub: "ada",
      data: { cart: ["tea"] },
      prev_oid: away,
      reason: "return_home",
    });
  });

  it("under `sticky`, a session stays on its new origin when the old one recovers", async () => {
    const origins = await spawnOrigins(2, (i) => ({ health: { path: `/h${i}`, interval: 60, rise: 1, fall: 1 } }));
    const e = poolEnv(origins, { RETURN_HOME_AFTER: "0" });
    const { client, home } = await loggedInClient(e);
    await failOrigin(home, 503);
    await runHealthChecks(e);
    const away = (await client.echo()).echo.origin;
    await failOrigin(home, null);
    await runHealthChecks(e);
    for (let i = 0; i < 3; i++) expect((await client.echo()).echo.origin).toBe(away);
  });
});

describe("passive outlier detection", () => {
  it("consecutive 5xx eject an origin for a while; its sessions move; the pool shows the ejection", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins, { OUTLIER_CONSECUTIVE_FAILURES: "3" });
    const { client, home, sid } = await loggedInClient(e);
    await failOrigin(home, 502);
    for (let i = 0; i < 3; i++) expect((await client.send("/x")).status).toBe(502);
    const moved = forwardedOf((await client.echo()).echo);
    expect(moved).toMatchObject({ sid, sub: "ada", prev_oid: home, reason: "ejected" });
    expect((await originsStatus(e)).find((o) => o.id === home)?.ejectedUntil).not.toBeNull();
  });

  it("never ejects more than OUTLIER_MAX_EJECTION_PERCENT of the pool", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins, { OUTLIER_CONSECUTIVE_FAILURES: "2", OUTLIER_MAX_EJECTION_PERCENT: "34" });
    const [a, b] = origins;
    if (!a || !b) throw new Error("no origins");
    await failOrigin(a.id, 500);
    await failOrigin(b.id, 500);
    for (let i = 0; i < 30; i++) await new BrowserClient(e).send("/");
    const ejected = (await originsStatus(e)).filter((o) => o.ejectedUntil !== null);
    expect(ejected).toHaveLength(1);
  });
});

describe("drain", () => {
  it("a draining origin takes no new sessions; its sessions stay until the deadline, then move; completion is reported", async () => {
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins);
    const [target] = origins;
    if (!target) throw new Error("no origin");
    const mine: BrowserClient[] = [];
    for (let i = 0; i < 8; i++) {
      const c = new BrowserClient(e);
      await c.send("/", { respond: { headers: { "x-edge-session-set": `{"n":${i}}` } } });
      if (forwardedOf((await c.echo()).echo).oid === target.id) mine.push(c);
    }
    expect(mine.length).toBe(4);
    expect((await originsStatus(e)).find((o) => o.id === target.id)?.sessions).toBe(4);

    const started = await admin(e, "POST", `/origins/${target.id}/drain`, { in: 3600 });
    expect(started.status).toBe(200);
    expect(await started.json()).toMatchObject({ status: "draining" });
    for (let i = 0; i < 6; i++) expect((await new BrowserClient(e).echo()).echo.origin).not.toBe(target.id);
    for (const c of mine) expect((await c.echo()).echo.origin).toBe(target.id);

    const logged = vi.spyOn(console, "log");
    await admin(e, "POST", `/origins/${target.id}/drain`, { deadline: new Date(Date.now() - 1000).toISOString() });
    for (const [i, c] of mine.entries()) {
      const s = forwardedOf((await c.echo()).echo);
      expect(s).toMatchObject({ prev_oid: target.id, reason: "drained", data: { n: expect.any(Number) } });
      const status = (await originsStatus(e)).find((o) => o.id === target.id);
      expect(status?.sessions).toBe(mine.length - i - 1);
      expect(status?.drain?.status).toBe(i === mine.length - 1 ? "complete" : "draining");
    }
    expect(logged.mock.calls.some((c) => String(c[0]).includes('"event":"drain_complete"'))).toBe(true);

    const undrained = await admin(e, "POST", `/origins/${target.id}/undrain`);
    expect(
      ((await undrained.json()) as { origins: { id: string; drain: unknown }[] }).origins.find(
        (o) => o.id === target.id,
      )?.drain,
    ).toBeNull();
  });

  it("refuses an unknown origin with 404 and a bad body with 400 naming the field", async () => {
    const origins = await spawnOrigins(1);
    const e = poolEnv(origins);
    expect((await admin(e, "POST", "/origins/nope/drain", {})).status).toBe(404);
    const bad = await admin(e, "POST", `/origins/${origins[0]?.id}/drain`, { in: -5 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^in: /);
    const both = await admin(e, "POST", `/origins/${origins[0]?.id}/drain`, {
      in: 5,
      deadline: new Date().toISOString(),
    });
    expect(both.status).toBe(400);
  });
});

describe("steering new sessions", () => {
  it("prefers origins in the client's region, bounded so none gets more than its share × BOUNDED_LOAD_FACTOR", async () => {
    const regions = ["weur", "enam", "apac"];
    const origins = await spawnOrigins(3, (i) => ({ region: regions[i] }));
    const e = poolEnv(origins, { BOUNDED_LOAD_FACTOR: "1.25" });
    const weur = origins[0]?.id;
    const first = await new BrowserClient(e).echo("/", { cf: { continent: "EU", country: "DE" } });
    expect(first.echo.origin).toBe(weur);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 23; i++) {
      const { echo } = await new BrowserClient(e).echo("/", { cf: { continent: "EU", country: "FR" } });
      counts[echo.origin] = (counts[echo.origin] ?? 0) + 1;
    }
    const toWeur = (counts[weur ?? ""] ?? 0) + 1;
    expect(toWeur).toBeGreaterThan(8);
    expect(toWeur).toBeLessThanOrEqual(Math.ceil(1.25 * 24 * (1 / 3)));
  });
});

describe("when every origin is down", () => {
  it("answers a clear 503 with Retry-After, never hangs", async () => {
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins);
    const { client } = await loggedInClient(e);
    for (const o of origins) await stopOrigin(o.id);
    const res = await client.send("/");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBeTruthy();
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_NO_ORIGIN");
  });

  it("serves from FALLBACK_ORIGIN when one is configured, without pinning sessions to it", async () => {
    const [a, fallback] = await spawnOrigins(2);
    if (!a || !fallback) throw new Error("no origins");
    const e = poolEnv([a], { FALLBACK_ORIGIN: JSON.stringify({ id: fallback.id, url: fallback.url }) });
    const { client, sid } = await loggedInClient(e);
    await stopOrigin(a.id);
    const { echo } = await client.echo("/sorry");
    expect(echo.origin).toBe(fallback.id);
    expect(forwardedOf(echo).sid).toBe(sid);
    await startOrigin(a.id);
    expect((await client.echo()).echo.origin).toBe(a.id);
  });

  it("an origin that accepts but never answers times out (ORIGIN_TIMEOUT) and the request moves on", async () => {
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins, { ORIGIN_TIMEOUT: "1", MAX_RETRIES: "0" });
    const client = new BrowserClient(e);
    const res = await client.send("/hang");
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_ORIGIN_TIMEOUT");
  });
});

describe("live session counts", () => {
  it("count a session whose first write is a login, and uncount it at logout", async () => {
    const origins = await spawnOrigins(1);
    const e = poolEnv(origins);
    const client = new BrowserClient(e);
    await client.send("/", { respond: { headers: { "x-edge-session-login": '{"sub":"ada"}' } } });
    expect((await originsStatus(e))[0]?.sessions).toBe(1);
    await client.send("/", { respond: { headers: { "x-edge-session-login": '{"sub":"ada-again"}' } } });
    expect((await originsStatus(e))[0]?.sessions).toBe(1);
    await client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    expect((await originsStatus(e))[0]?.sessions).toBe(0);
  });
});
