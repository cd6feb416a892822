/**
 * The read cache (READ_CACHE_SECONDS): reads answered from an isolate's memory
 * when the client's token names a version it holds, writes always through the
 * object, and every change that does not travel with the token bounded: seen at
 * once by the isolate that made it, by every other one within the cache period
 * (ends: within POOL_CACHE_SECONDS, through the pool view). Each bound is tested
 * with the cache on (1 s, waited past) and off (strict: at once, everywhere).
 *
 * Two isolates of one deployment: the cache lives per configuration object, so
 * two envs that differ only in a value these tests never use (RETURN_HOME_AFTER,
 * with the sticky failover policy) stand for two isolates, each with its own cache,
 * sharing the same objects, KV and pool.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { ReadCache, readCacheFor } from "../../src/cache/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import type { SessionObject } from "../../src/session/index.ts";
import type { SessionRecord } from "../../src/session/record.ts";
import { BASE, BrowserClient, callWorker, cookieFrom, type Echo, respondWith } from "./harness.ts";
import { admin, poolEnv, spawnOrigins, startOrigin, stopOrigin, type TestOrigin } from "./pool-harness.ts";
import { objectAt, storedAt } from "./session-admin.ts";
import { forwardedOf } from "./tokens.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Past a READ_CACHE_SECONDS of 1. */
const pastTheBound = () => sleep(1100);

const newPool = () => `rc-${crypto.randomUUID().slice(0, 8)}`;

let isolates = 0;
/** A fresh isolate of a deployment whose pool is `pool` (same origins, same pool object). */
function isolate(origins: TestOrigin[], pool: string, overrides: Record<string, string> = {}): Env {
  isolates += 1;
  return poolEnv(origins, { POOL_NAME: pool, RETURN_HOME_AFTER: String(1000 + isolates), ...overrides });
}

/** What a client holding `token` gets through the isolate `e` (header mode: the token is explicit, copies are easy). */
async function send(
  e: Env,
  token: string | undefined,
  o: { respond?: { headers?: Record<string, string>; status?: number }; cf?: Record<string, unknown> } = {},
): Promise<{ token: string | undefined; echo: Echo; s: Record<string, unknown> }> {
  const headers = new Headers({ "x-edge-session-token": token ?? "new" });
  if (o.respond) headers.set("x-test-respond", respondWith(o.respond));
  const init: RequestInit & { cf?: Record<string, unknown> } = { headers };
  if (o.cf) init.cf = o.cf;
  const res = await callWorker(new Request(`${BASE}/echo`, init), e);
  expect(res.status, await res.clone().text()).toBe(o.respond?.status ?? 200);
  const echo = (await res.json()) as Echo;
  // Sent when it changed: absent, the client keeps the one it holds; empty, it was cleared.
  const sent = res.headers.get("x-edge-session-token");
  return { token: sent === null ? token : sent || undefined, echo, s: forwardedOf(echo) };
}

const set = (data: unknown) => ({ respond: { headers: { "x-edge-session-set": JSON.stringify(data) } } });
const logout = { respond: { headers: { "x-edge-session-logout": "1" } } };

/** A session with stored data, written through `a`, and its token. */
async function storedSession(a: Env) {
  const first = await send(a, undefined, set({ cart: ["tea"] }));
  const { token, s } = await send(a, first.token);
  expect(s).toMatchObject({ ver: 1, data: { cart: ["tea"] } });
  return { token: token ?? "", sid: String(s.sid), oid: String(s.oid) };
}

async function cacheOf(e: Env) {
  return readCacheFor(await loadConfig(e));
}

/** Edits what the object holds, behind every isolate's back. */
async function editObject(sid: string, edit: (r: SessionRecord) => SessionRecord, ep = 1) {
  await runInDurableObject(objectAt(sid, ep), (o: SessionObject, state) => {
    const r = state.storage.kv.get<SessionRecord>("session");
    if (!r) throw new Error("no record");
    state.storage.kv.put("session", edit(r));
    o.dropHeldState();
  });
}

describe("the read path", () => {
  it("the token names the version; a read it names is answered from memory, without the object", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const a = isolate(origins, P, { READ_CACHE_SECONDS: "60" });
    const { token, sid } = await storedSession(a);
    expect(decodeJwt(token)).toMatchObject({ sid, ep: 1, ver: 1 });
    // Changed behind the layer's back: an isolate answering from memory cannot see it, one asking the object does.
    await editObject(sid, (r) => ({ ...r, version: r.version + 1, data: { cart: ["edited"] } }));
    expect((await send(a, token)).s.data).toEqual({ cart: ["tea"] });
    const strict = isolate(origins, P, { READ_CACHE_SECONDS: "0" });
    expect((await send(strict, token)).s.data).toEqual({ cart: ["edited"] });
  });

  it("strict mode (0) keeps nothing: every read asks the object", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const a = isolate(origins, P, { READ_CACHE_SECONDS: "0" });
    const { token, sid } = await storedSession(a);
    expect((await cacheOf(a)).size.entries).toBe(0);
    await editObject(sid, (r) => ({ ...r, version: r.version + 1, data: { cart: ["edited"] } }));
    expect((await send(a, token)).s.data).toEqual({ cart: ["edited"] });
  });

  it("read-your-writes: a write through one isolate is read through another that holds the older version", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const a = isolate(origins, P, { READ_CACHE_SECONDS: "60" });
    const b = isolate(origins, P, { READ_CACHE_SECONDS: "60" });
    const { token } = await storedSession(a);
    expect((await send(b, token)).s.ver).toBe(1); // b now holds version 1
    const wrote = await send(a, token, set({ cart: ["tea", "milk"] }));
    expect(decodeJwt(wrote.token ?? "").ver).toBe(2);
    expect((await send(b, wrote.token)).s).toMatchObject({ ver: 2, data: { cart: ["tea", "milk"] } });
  });

  it("monotonic reads: a client shown a newer version is never shown an older one, through any isolate", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const a = isolate(origins, P, { READ_CACHE_SECONDS: "60" });
    const b = isolate(origins, P, { READ_CACHE_SECONDS: "60" });
    const { token } = await storedSession(a);
    expect((await send(b, token)).s.ver).toBe(1); // b holds version 1
    // Another copy of the same token writes through a: a now holds version 2.
    await send(a, token, set({ cart: ["coffee"] }));
    const shown = await send(a, token);
    expect(shown.s).toMatchObject({ ver: 2, data: { cart: ["coffee"] } });
    // The client was shown version 2, so its token now says so, and b cannot answer it with version 1.
    expect(decodeJwt(shown.token ?? "").ver).toBe(2);
    expect((await send(b, shown.token)).s).toMatchObject({ ver: 2, data: { cart: ["coffee"] } });
  });

  it("a browser gets a new cookie naming the new version on every write, and none on a plain read", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const client = new BrowserClient(isolate(origins, P, { READ_CACHE_SECONDS: "60" }));
    await client.send("/", set({ n: 0 }));
    for (let n = 1; n <= 3; n++) {
      const res = await client.send("/", set({ n }));
      const cookie = cookieFrom(res);
      expect(cookie).toBeDefined();
      expect(decodeJwt(cookie ?? "").ver).toBe(n + 1);
    }
    const read = await client.send("/");
    expect(cookieFrom(read)).toBeUndefined();
    expect(forwardedOf((await read.json()) as Echo).data).toEqual({ n: 3 });
  });

  it("the object still learns of cached reads: the background touch keeps its idle timer fresh", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const a = isolate(origins, P, { READ_CACHE_SECONDS: "1" });
    const { token, sid } = await storedSession(a);
    // As if the client had last been seen two minutes ago (more than the touch interval, less than idle).
    await editObject(sid, (r) => ({ ...r, lastSeen: r.lastSeen - 120_000 }));
    const before = (await storedAt(sid, 1)) as SessionRecord;
    await sleep(850); // past 80 % of the period: the next read is answered from memory and confirmed behind it
    expect((await send(a, token)).s.ver).toBe(1);
    const after = (await storedAt(sid, 1)) as SessionRecord;
    expect(after.lastSeen).toBeGreaterThan(before.lastSeen);
  });

  it("automatic migration still follows a client whose reads are answered from memory", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const a = isolate(origins, P, {
      READ_CACHE_SECONDS: "1",
      ENVIRONMENT: "development",
      MIGRATE_AFTER_REQUESTS: "1",
      MIGRATE_AFTER_SECONDS: "0",
    });
    const { token, sid } = await storedSession(a);
    await sleep(850);
    // Served from memory; the background touch tells the object where the client is now.
    await callWorker(
      new Request(`${BASE}/echo`, { headers: { "x-edge-session-token": token, "x-edge-dev-region": "apac" } }),
      a,
    );
    let moved: unknown;
    for (let i = 0; i < 50 && !moved; i++) {
      const stored = await storedAt(sid, 1);
      if (stored?.status === "moved") moved = stored.to;
      else await sleep(50);
    }
    expect(moved).toMatchObject({ epoch: 2, region: "apac" });
  });

  it("memory is bounded by entries and bytes, and one large session cannot push out the rest", async () => {
    const cache = new ReadCache(60, { maxEntries: 100, maxBytes: 64 * 1024, maxEntryBytes: 8 * 1024 });
    const s = (sid: string, dataBytes: number) => ({
      sid,
      epoch: 1,
      origin: "o",
      region: "enam",
      createdSec: 0,
      version: 1,
      data: {},
      dataBytes,
    });
    for (let i = 0; i < 50; i++) cache.confirm(s(`small-${i}`, 100), Date.now());
    cache.confirm(s("huge", 1024 * 1024), Date.now());
    expect(cache.size.entries).toBe(50);
    for (let i = 0; i < 500; i++) cache.confirm(s(`more-${i}`, 100), Date.now());
    expect(cache.size.entries).toBeLessThanOrEqual(100);
    for (let i = 0; i < 200; i++) cache.confirm(s(`mid-${i}`, 4000), Date.now());
    expect(cache.size.bytes).toBeLessThanOrEqual(64 * 1024);
  });
});

describe.each([
  { mode: "cache on", seconds: "1" },
  { mode: "strict", seconds: "0" },
])("staleness bounds, $mode", ({ seconds }) => {
  const cached = seconds !== "0";
  /** Two isolates: a makes the change, b held the session before it. The pool view is cached long. */
  async function twoIsolates(pool: string, extra: Record<string, string> = {}, n = 1) {
    const origins = await spawnOrigins(n);
    const o = { READ_CACHE_SECONDS: seconds, POOL_CACHE_SECONDS: "60", ...extra };
    const a = isolate(origins, pool, o);
    const b = isolate(origins, pool, o);
    const session = await storedSession(a);
    expect((await send(b, session.token)).s.ver).toBe(1);
    return { origins, a, b, ...session };
  }
  /** Another isolate sees a change: at once in strict mode, past READ_CACHE_SECONDS with the cache on. */
  const afterTheBound = () => (cached ? pastTheBound() : Promise.resolve());

  it("operator revoke", async () => {
    const { a, b, token, sid } = await twoIsolates(newPool());
    expect((await admin(a, "DELETE", `/sessions/${sid}`)).status).toBe(200);
    expect((await send(a, token)).s.sid).not.toBe(sid);
    await afterTheBound();
    expect((await send(b, token)).s.sid).not.toBe(sid);
  });

  it("logout made with another copy of the token", async () => {
    const { a, b, token, sid } = await twoIsolates(newPool());
    const out = await send(a, token, logout);
    expect(out.token).toBeUndefined();
    expect((await send(a, token)).s.sid).not.toBe(sid);
    await afterTheBound();
    expect((await send(b, token)).s.sid).not.toBe(sid);
  });

  it("idle end, decided by the object", async () => {
    const { a, b, token, sid } = await twoIsolates(newPool());
    await editObject(sid, (r) => ({ ...r, lastSeen: r.lastSeen - 2 * 3600 * 1000 }));
    expect(await runDurableObjectAlarm(objectAt(sid, 1))).toBe(true);
    await afterTheBound();
    for (const e of [a, b]) expect((await send(e, token)).s).toMatchObject({ ver: 0, data: {} });
  });

  it("migration: writes through a stale copy still land, and every isolate follows", async () => {
    const { a, b, token, sid } = await twoIsolates(newPool());
    expect((await admin(a, "POST", `/sessions/${sid}/migrate`, { region: "weur" })).status).toBe(200);
    expect((await send(a, token)).s).toMatchObject({ ep: 2, reg: "weur", ver: 1 });
    // b may still hold epoch 1; a write through it goes to the object and follows the forward pointer.
    const wrote = await send(b, token, set({ cart: ["after"] }));
    // With the cache on the token names the new version; strict, it may stay as it was (reads ask the object).
    if (wrote.token !== token) expect(decodeJwt(wrote.token ?? "")).toMatchObject({ ep: 2, ver: 2 });
    expect((await send(a, wrote.token)).s).toMatchObject({ ep: 2, ver: 2, data: { cart: ["after"] } });
    await afterTheBound();
    expect((await send(b, token)).s).toMatchObject({ ep: 2, reg: "weur", data: { cart: ["after"] } });
  });

  it("failover re-pin", async () => {
    const { a, b, token, oid, origins } = await twoIsolates(newPool(), {}, 2);
    await stopOrigin(oid);
    const moved = await send(a, token);
    expect(moved.echo.origin).not.toBe(oid);
    const to = moved.echo.origin;
    expect((await send(a, token)).echo.origin).toBe(to);
    // The client's new token names the new origin: no isolate sends it back.
    expect((await send(b, moved.token)).echo.origin).toBe(to);
    await startOrigin(oid);
    await afterTheBound();
    // Another copy of the old token, through the other isolate: the session lives on the new origin now.
    expect((await send(b, token)).echo.origin).toBe(to);
    expect(origins.map((o) => o.id)).toContain(to);
  });

  it("operator drain applies to sessions answered from memory", async () => {
    const { a, b, token, oid } = await twoIsolates(newPool(), { POOL_CACHE_SECONDS: "0" }, 2);
    const drained = await admin(a, "POST", `/origins/${oid}/drain`, {
      deadline: new Date(Date.now() - 1000).toISOString(),
    });
    expect(drained.status).toBe(200);
    const moved = await send(b, token);
    expect(moved.echo.origin).not.toBe(oid);
    expect(moved.s).toMatchObject({ prev_oid: oid, reason: "drained", data: { cart: ["tea"] } });
    expect((await send(a, token)).echo.origin).toBe(moved.echo.origin);
  });
});

describe("ends travel through the pool view", () => {
  it("a revoke reaches an isolate holding the session within POOL_CACHE_SECONDS, however long its cache period", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const o = { READ_CACHE_SECONDS: "60", POOL_CACHE_SECONDS: "0" };
    const a = isolate(origins, P, o);
    const b = isolate(origins, P, o);
    const { token, sid } = await storedSession(a);
    expect((await send(b, token)).s.ver).toBe(1);
    expect((await admin(a, "DELETE", `/sessions/${sid}`)).status).toBe(200);
    expect((await send(b, token)).s.sid).not.toBe(sid);
  });

  it("so does a logout made through another isolate", async () => {
    const origins = await spawnOrigins(1);
    const P = newPool();
    const o = { READ_CACHE_SECONDS: "60", POOL_CACHE_SECONDS: "0" };
    const a = isolate(origins, P, o);
    const b = isolate(origins, P, o);
    const { token, sid } = await storedSession(a);
    expect((await send(b, token)).s.ver).toBe(1);
    await send(a, token, logout);
    expect((await send(b, token)).s.sid).not.toBe(sid);
  });
});
