/**
 * No acknowledged write is ever lost (DESIGN.md §3, §6): what a client sees
 * when the session's object is down, frozen, fenced or rotated under it. Each
 * case was a lost write or a second truth before the session core was rebuilt.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { SessionObject } from "../../src/session/index.ts";
import type { SessionMeta, SessionRecord } from "../../src/session/record.ts";
import { BrowserClient, type Echo } from "./harness.ts";
import { admin, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { bookAt, loginWith, migrate, objectAt, sessionOf, snapshotAtLeast, storedAt } from "./session-admin.ts";
import { forwardedOf } from "./tokens.ts";

async function pool(overrides: Record<string, string> = {}) {
  const origins = await spawnOrigins(2);
  // The real pool-view cache (not 0): the isolate that sets a fault must act on it at once all the same.
  // Strict reads: these tests are about what the session objects hold, so every read must reach them
  // (the read cache has its own staleness tests, and the chaos test runs with it on).
  return poolEnv(origins, {
    ENVIRONMENT: "staging",
    FAULT_INJECTION: "true",
    AUTO_MIGRATE: "false",
    POOL_CACHE_SECONDS: "3",
    READ_CACHE_SECONDS: "0",
    ...overrides,
  });
}

async function loggedIn(e: Env) {
  const client = new BrowserClient(e);
  const res = await client.send("/", loginWith({ cart: ["tea"] }));
  expect(res.status).toBe(200);
  const s = await sessionOf(client);
  return { client, sid: String(s.sid) };
}

const set = (patch: unknown) => ({ respond: { headers: { "x-edge-session-set": JSON.stringify(patch) } } });
const down = (e: Env, region = "enam") => admin(e, "POST", "/faults", { target: `region:${region}`, mode: "down" });
/** Every isolate has seen a pool change once its cached view (POOL_CACHE_SECONDS, 3 here) has expired. */
const pastPoolCache = () => new Promise((r) => setTimeout(r, 3100));

/** Polls (bounded) until `check` holds; the session objects' alarms run on their own. */
async function eventually(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function metaOf(r: SessionRecord): SessionMeta {
  return {
    sid: r.sid,
    epoch: r.epoch,
    origin: r.origin,
    region: r.region,
    createdAt: r.createdAt,
    idleMs: r.idleMs,
    absoluteMs: r.absoluteMs,
    maxDataBytes: 262_144,
    pool: r.pool,
  };
}

describe("a change is acknowledged only once it is durable", () => {
  it("a new client logging in while its home region is down is stored in a healthy region, and stays logged in", async () => {
    const e = await pool();
    expect((await down(e)).status).toBe(200);
    const client = new BrowserClient(e);
    const res = await client.send("/", loginWith({ cart: ["tea"] }));
    expect(res.status).toBe(200);
    const s = await sessionOf(client);
    expect(s).toMatchObject({ sub: "ada", data: { cart: ["tea"] }, ver: 1 });
    expect(s.reg).not.toBe("enam");
  });

  it("a write or logout meeting a migration that does not finish is answered 503 with Retry-After, and logout still clears the cookie", {
    timeout: 20_000,
  }, async () => {
    const e = await pool();
    const { client, sid } = await loggedIn(e);
    // Freeze the session as a stalled hand-over would, with no retry due for a long while.
    await runInDurableObject(objectAt(sid, 1), (o: SessionObject, state) => {
      const r = state.storage.kv.get<SessionRecord>("session");
      if (!r) throw new Error("no session");
      state.storage.kv.put("session", {
        ...r,
        migration: { to: { epoch: 2, region: "weur" }, startedAt: Date.now(), trigger: "test" },
      });
      const book = state.storage.kv.get<Record<string, unknown>>("book") ?? {};
      state.storage.kv.put("book", { ...book, handOverRetry: { at: Date.now() + 3_600_000 } });
      o.dropHeldState();
    });
    const write = await client.send("/", set({ lost: "never" }));
    expect(write.status).toBe(503);
    expect(write.headers.get("retry-after")).toBeTruthy();
    expect(await write.json()).toMatchObject({ error: { code: "ERR_SESSION_UNAVAILABLE" } });

    const cookie = client.cookie;
    const logout = await client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    expect(logout.status).toBe(503);
    expect(client.cookie).toBeUndefined(); // fail closed: the browser is logged out all the same
    expect(cookie).toBeDefined();
  });

  it("a stalled migration aborts (409) and gives the session back, writable; the next migration succeeds", async () => {
    const e = await pool();
    const { client, sid } = await loggedIn(e);
    // The next epoch's object will never take the state (as a hand-over that fails every time).
    await runInDurableObject(objectAt(sid, 2), (o: SessionObject, state) => {
      state.storage.kv.put("session", {
        status: "destroyed",
        sid,
        epoch: 2,
        reason: "aborted",
        endedAt: Date.now(),
        purgeAt: Date.now() + 3_600_000,
      });
      o.dropHeldState();
    });
    const res = await migrate(e, sid, { region: "weur" });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: { code: "ERR_MIGRATION_ABORTED" } });
    expect((await client.send("/", set({ after: "abort" }))).status).toBe(200);
    expect((await sessionOf(client)).data).toEqual({ cart: ["tea"], after: "abort" });
    const again = await migrate(e, sid, { region: "weur" });
    expect(again.status).toBe(200);
    expect(await sessionOf(client)).toMatchObject({ ep: 3, reg: "weur", data: { cart: ["tea"], after: "abort" } });
  });
});

describe("recovery moves forward only", () => {
  it("an old-epoch token during an outage of the old region follows the newer epoch; nothing is restored over it", {
    timeout: 15_000,
  }, async () => {
    const e = await pool();
    const { client, sid } = await loggedIn(e);
    const stale = client.cookie;
    expect((await migrate(e, sid, { region: "weur" })).status).toBe(200);
    expect((await client.send("/", set({ newest: "write" }))).status).toBe(200);
    expect((await down(e, "enam")).status).toBe(200);
    await pastPoolCache();

    const old = new BrowserClient(e);
    old.cookie = stale;
    const s = await sessionOf(old);
    expect(s).toMatchObject({ sid, ep: 2, reg: "weur", data: { cart: ["tea"], newest: "write" } });
    expect(await storedAt(sid, 2)).toMatchObject({ status: "active" });
    expect(await storedAt(sid, 3)).toBeUndefined();
  });

  it("a restore without any snapshot still fences the old epoch: once it is back, every token reads one truth", {
    timeout: 15_000,
  }, async () => {
    const e = await pool();
    const { client, sid } = await loggedIn(e);
    await snapshotAtLeast(sid, 1);
    await env.SNAPSHOTS.delete(`snap:${sid}`); // as if it had never been written
    const first = client.cookie;
    expect((await down(e)).status).toBe(200);
    expect((await client.send("/", set({ restored: "side" }))).status).toBe(200);
    expect((await admin(e, "DELETE", "/faults")).status).toBe(200);
    await eventually(async () => (await storedAt(sid, 1))?.status === "moved", "the old epoch is fenced");

    const old = new BrowserClient(e);
    old.cookie = first;
    await eventually(
      async () => JSON.stringify((await sessionOf(old)).data) === JSON.stringify((await sessionOf(client)).data),
      "both tokens read the same data",
    );
    // Nothing the old epoch held is lost: its document was handed on.
    expect((await sessionOf(client)).data).toEqual({ cart: ["tea"], restored: "side" });
    expect((await old.send("/", set({ via: "first token" }))).status).toBe(200);
    expect((await sessionOf(client)).data).toMatchObject({ via: "first token" });
  });

  it("writes after the last snapshot are missing only while the old copy is out of reach, then come back (catch-up)", {
    timeout: 15_000,
  }, async () => {
    // The outage must be seen before the next coalesced snapshot (within a second), so no view caching here.
    const e = await pool({ POOL_CACHE_SECONDS: "0" });
    const { client, sid } = await loggedIn(e);
    await snapshotAtLeast(sid, 1);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await client.send("/", set({ late: true }))).status).toBe(200);
    // The outage begins before the coalesced snapshot of version 2 is written.
    await down(e);
    expect((await sessionOf(client)).data).toMatchObject({ cart: ["tea"] });
    await eventually(
      async () => ((await sessionOf(client)).data as { late?: boolean }).late === true,
      "the acknowledged write is back",
    );
  });
});

describe("snapshots", () => {
  it("a write landing while a snapshot is being uploaded is still snapshotted (the alarm never erases what is owed)", async () => {
    const e = await pool();
    const { sid } = await loggedIn(e);
    await snapshotAtLeast(sid, 1);
    await new Promise((r) => setTimeout(r, 1100));
    let injected = false;
    let putBack = () => {};
    await runInDurableObject(objectAt(sid, 1), async (o: SessionObject, state) => {
      const r = state.storage.kv.get<SessionRecord>("session");
      if (!r) throw new Error("no session");
      const holder = o as unknown as { env: Env };
      const real = holder.env;
      const kv = new Proxy(real.SNAPSHOTS, {
        get(target, prop) {
          if (prop !== "put") {
            const value = Reflect.get(target, prop);
            return typeof value === "function" ? value.bind(target) : value;
          }
          return async (...args: Parameters<KVNamespace["put"]>) => {
            // A request commits a write exactly while the snapshot upload is in flight.
            if (!injected && String(args[0]).startsWith("snap:")) {
              injected = true;
              await o.write(metaOf(r), { patch: { during: "upload" } });
            }
            return target.put(...args);
          };
        },
      });
      holder.env = { ...real, SNAPSHOTS: kv };
      putBack = () => {
        holder.env = real;
      };
      // Owes a snapshot, due at once (the last one is over a second old): the object's alarm takes it.
      await o.write(metaOf(r), { patch: { before: "upload" } });
    });
    await eventually(async () => injected, "the snapshot upload started");
    putBack();
    const stored = await storedAt(sid, 1);
    const version = stored?.status === "active" ? stored.version : -1;
    expect(version).toBe(3);
    await snapshotAtLeast(sid, version, 4000);
    expect(await bookAt(sid, 1)).toMatchObject({ snapshottedVersion: 3 });
  });
});

describe("a request racing a login", () => {
  it("with the pre-login cookie neither overwrites the new login cookie nor has its write acknowledged", async () => {
    const e = await pool();
    const client = new BrowserClient(e);
    await client.send("/", set({ cart: ["tea"] }));
    const preLogin = client.cookie;
    expect((await client.send("/", { respond: { headers: { "x-edge-session-login": '{"sub":"ada"}' } } })).status).toBe(
      200,
    );
    const loginCookie = client.cookie;

    // Requests the browser sent with the old cookie before the login answered arrive after it.
    const racer = new BrowserClient(e);
    racer.cookie = preLogin;
    const read = await racer.send("/echo");
    expect(read.status).toBe(200);
    expect(read.headers.getSetCookie()).toEqual([]);
    const write = await racer.send("/", set({ lost: "never" }));
    expect(write.status).toBe(409);
    expect(await write.json()).toMatchObject({ error: { code: "ERR_SESSION_ENDED" } });
    expect(write.headers.getSetCookie()).toEqual([]);
    // And the pre-login id opens nothing of the logged-in session (no fixation path).
    const seen = forwardedOf((await read.json()) as Echo);
    expect(seen.sub).toBeUndefined();
    expect(seen.data).toEqual({});
    expect(await sessionOf(client)).toMatchObject({ sub: "ada", data: { cart: ["tea"] } });
    expect(client.cookie).toBe(loginCookie);
  });

  it("a request that read the session before a login and answers after it (with a moved token) does not log the browser out", async () => {
    const e = await pool();
    const client = new BrowserClient(e);
    await client.send("/", set({ cart: ["tea"] }));
    const sid = String((await sessionOf(client)).sid);
    expect((await migrate(e, sid, { region: "weur" })).status).toBe(200);
    // The slow request reads the session (and follows the migration) first; the login answers before it does.
    const slow = client.send("/echo", { respond: { delayMs: 300 } });
    await new Promise((r) => setTimeout(r, 50));
    const login = await client.send("/", { respond: { headers: { "x-edge-session-login": '{"sub":"ada"}' } } });
    expect(login.status).toBe(200);
    expect(client.successor).toBeDefined();
    const late = await slow;
    // Its token for the pre-login session (now at epoch 2) replaced the login cookie in the jar, as in a browser.
    expect(late.headers.getSetCookie().some((c) => c.startsWith("__Host-edge-session="))).toBe(true);
    const after = await sessionOf(client);
    expect(after).toMatchObject({ sub: "ada", data: { cart: ["tea"] } });
    // And the pre-login token alone still opens nothing (no fixation path).
    const attacker = new BrowserClient(e);
    attacker.cookie = late.headers
      .getSetCookie()
      .find((c) => c.startsWith("__Host-edge-session="))
      ?.split(";")[0]
      ?.split("=")[1];
    expect((await sessionOf(attacker)).sub).toBeUndefined();
  });

  it("ten concurrent logins, each raced by requests with the pre-login cookie: no login is lost", async () => {
    const e = await pool();
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const client = new BrowserClient(e);
        await client.send("/", set({ n: i }));
        const preLogin = client.cookie;
        // One browser: the login and three other requests in flight together, all with the pre-login
        // cookie; the jar keeps whatever Set-Cookie arrives last.
        const slowLogin = client.send("/", {
          respond: { headers: { "x-edge-session-login": JSON.stringify({ sub: `user-${i}` }) }, delayMs: 30 },
        });
        const racers = Array.from({ length: 3 }, (_, k) => {
          const r = new BrowserClient(e);
          r.cookie = preLogin;
          return new Promise((res) => setTimeout(res, 60 + k * 20))
            .then(() => r.send("/echo"))
            .then((res) => ({ r, res }));
        });
        await slowLogin;
        const raced = await Promise.all(racers);
        for (const { r } of raced) if (r.cookie !== preLogin) client.cookie = r.cookie;
        return (await sessionOf(client)).sub;
      }),
    );
    expect(outcomes).toEqual(Array.from({ length: 10 }, (_, i) => `user-${i}`));
  });
});
