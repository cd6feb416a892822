import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { decodeSnapshot, importSnapshotKey } from "../../src/replication/codec.ts";
import type { SessionObject } from "../../src/session/index.ts";
import { BrowserClient } from "./harness.ts";
import { admin, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { bookAt, objectAt, sessionOf, snapshotAtLeast, storedAt, strictLoggedInSession } from "./session-admin.ts";

afterEach(() => vi.restoreAllMocks());

const snapshotKey = () => importSnapshotKey((env as unknown as { SNAPSHOT_KEY: string }).SNAPSHOT_KEY);

// With the read cache on, reads it can answer keep being served while an object is down (see read-cache.test.ts).
const setup = (overrides: Record<string, string> = {}) => strictLoggedInSession(2, overrides);

const set = (patch: unknown) => ({ respond: { headers: { "x-edge-session-set": JSON.stringify(patch) } } });

describe("snapshots in KV", () => {
  it("after a change, an encrypted snapshot with listing metadata; it decrypts only as that session", async () => {
    const { sid } = await setup();
    const { value, metadata } = await snapshotAtLeast(sid, 1);
    expect(metadata).toMatchObject({ reg: "enam", ep: 1, ver: 1 });
    expect(value).not.toContain("tea");
    const key = await snapshotKey();
    const decoded = await decodeSnapshot(key, sid, value);
    expect(decoded).toMatchObject({
      ok: true,
      snapshot: { sid, version: 1, data: { cart: ["tea"] }, auth: { sub: "ada" } },
    });
    expect(await decodeSnapshot(key, "B".repeat(24), value)).toMatchObject({
      ok: false,
      code: "ERR_SNAPSHOT_MISMATCH",
    });
  });

  it("stays at or under one KV write per second per session under a burst of 200 writes", async () => {
    const { client, sid } = await setup();
    const started = Date.now();
    for (let i = 0; i < 200; i += 20)
      await Promise.all(Array.from({ length: 20 }, (_, j) => client.send("/", set({ [`k${i + j}`]: i + j }))));
    const { metadata } = await snapshotAtLeast(sid, 201);
    const elapsed = (Date.now() - started) / 1000;
    const t = await bookAt(sid, 1);
    expect(Number(t.snapshotWrites)).toBeLessThanOrEqual(Math.ceil(elapsed) + 1);
    expect(metadata.ver).toBe(201);
  });

  it("logout deletes the snapshot", async () => {
    const { client, sid } = await setup();
    await snapshotAtLeast(sid, 1);
    await client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    expect(await env.SNAPSHOTS.get(`snap:${sid}`)).toBeNull();
  });
});

describe("failover when a session's object is lost", () => {
  it("a region outage mid-session: the next request is served with the data and login of the last snapshot", async () => {
    const { e, client, sid } = await setup();
    await snapshotAtLeast(sid, 1);
    expect((await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" })).status).toBe(200);

    const before = client.cookie;
    const s = await sessionOf(client);
    expect(s).toMatchObject({ sid, sub: "ada", data: { cart: ["tea"] }, ep: 2 });
    expect(s.reg).not.toBe("enam");
    expect(client.cookie).not.toBe(before);
    // It carries on in its new home: writes land there.
    await client.send("/", set({ after: "outage" }));
    expect((await sessionOf(client)).data).toEqual({ cart: ["tea"], after: "outage" });
    const audit = ((await (await admin(e, "GET", `/sessions/${sid}`)).json()) as { audit: { event: string }[] }).audit;
    expect(audit.at(-1)?.event).toBe("restored");
  });

  it("right after a restore the session is at its last snapshot (the recovery point; later writes return by catch-up)", async () => {
    const { e, client, sid } = await setup();
    await snapshotAtLeast(sid, 1);
    await new Promise((r) => setTimeout(r, 1100));
    await client.send("/", set({ late: true }));
    // The outage begins before the coalesced snapshot of version 2 is written.
    await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" });
    const logged = vi.spyOn(console, "warn");
    const s = await sessionOf(client);
    expect(s.data).toEqual({ cart: ["tea"] });
    expect(s.ver).toBe(1);
    const line = logged.mock.calls.map((c) => String(c[0])).find((l) => l.includes('"event":"session_restored"'));
    expect(JSON.parse(line ?? "{}")).toMatchObject({ sid, version: 1, from_epoch: 1, to_epoch: 2 });
    expect(JSON.parse(line ?? "{}").snapshot_age_ms).toBeGreaterThanOrEqual(0);
  });

  it("a slow object (past SESSION_TIMEOUT_MS) is treated as lost too", async () => {
    const { e, client, sid } = await setup({ SESSION_TIMEOUT_MS: "200" });
    await snapshotAtLeast(sid, 1);
    await admin(e, "POST", "/faults", { target: "region:enam", mode: "slow", ms: 1000 });
    expect(await sessionOf(client)).toMatchObject({ sid, ep: 2, sub: "ada" });
  });

  it("after the region returns, the stale object is fenced: an old token's write does not create a second truth", async () => {
    const { e, client, sid } = await setup();
    await snapshotAtLeast(sid, 1);
    const stale = client.cookie;
    await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" });
    await client.send("/", set({ restored: "side" }));
    await admin(e, "DELETE", "/faults");

    const old = new BrowserClient(e);
    old.cookie = stale;
    await old.send("/", set({ stale: "token" }));
    // The write went to the restored object; the old one holds no new truth and forwards.
    expect(await storedAt(sid, 2)).toMatchObject({
      status: "active",
      data: { cart: ["tea"], restored: "side", stale: "token" },
    });
    expect(await storedAt(sid, 1)).toMatchObject({ status: "moved", reason: "fenced", to: { epoch: 2 } });
  });

  it("the KV fence alone stops a stale object's writes (before the restored object's push arrives)", async () => {
    const { client, sid } = await setup();
    await env.SNAPSHOTS.put(`fence:${sid}`, JSON.stringify({ epoch: 7, region: "weur" }));
    const stub = objectAt(sid, 1);
    const result = await runInDurableObject(stub, (o: SessionObject) =>
      o.write(
        {
          sid,
          epoch: 1,
          origin: "x",
          region: "enam",
          createdAt: Date.now(),
          idleMs: 60_000,
          absoluteMs: 600_000,
          maxDataBytes: 1000,
          pool: "p",
        },
        { patch: { evil: true } },
      ),
    );
    expect(result).toEqual({ kind: "moved", to: { epoch: 7, region: "weur" } });
    expect(await storedAt(sid, 1)).toMatchObject({ status: "moved", reason: "fenced" });
    expect(client).toBeDefined();
  });

  it("a flipped byte in a snapshot is refused with a reason code; the session starts fresh and it is logged", async () => {
    const { e, client, sid } = await setup();
    const { value, metadata } = await snapshotAtLeast(sid, 1);
    const envelope = JSON.parse(value) as { ct: string };
    const bytes = atob(envelope.ct);
    const flipped = String.fromCharCode(bytes.charCodeAt(0) ^ 1) + bytes.slice(1);
    await env.SNAPSHOTS.put(`snap:${sid}`, JSON.stringify({ ...envelope, ct: btoa(flipped) }), { metadata });
    await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" });
    const logged = vi.spyOn(console, "error");
    const s = await sessionOf(client);
    expect(s.sid).not.toBe(sid);
    expect(s.sub).toBeUndefined();
    expect(s.data).toEqual({});
    expect(logged.mock.calls.some((c) => String(c[0]).includes('"code":"ERR_SNAPSHOT_CORRUPT"'))).toBe(true);
  });
});

describe("fault injection", () => {
  it("is refused in production", async () => {
    const origins = await spawnOrigins(1);
    const e = poolEnv(origins);
    const res = await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_FAULT_INJECTION_DISABLED");
  });

  it("an origin marked down fails over like a refused connection", async () => {
    const { e, client } = await setup();
    const home = String((await sessionOf(client)).oid);
    await admin(e, "POST", "/faults", { target: `origin:${home}`, mode: "down" });
    const s = await sessionOf(client);
    expect(s).toMatchObject({ prev_oid: home, reason: "connect_failed", sub: "ada" });
  });

  it("validates its input", async () => {
    const { e } = await setup();
    const res = await admin(e, "POST", "/faults", { target: "planet:mars", mode: "down" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/^target: /);
  });
});

describe("snapshots and fences", () => {
  it("a stale object never overwrites a newer epoch's snapshot", async () => {
    const { client, sid } = await setup();
    await snapshotAtLeast(sid, 1);
    // A restore elsewhere wrote its fence and its own snapshot (simulated by the fence; the snapshot stays as is).
    await env.SNAPSHOTS.put(`fence:${sid}`, JSON.stringify({ epoch: 5, region: "weur" }));
    const before = await env.SNAPSHOTS.get(`snap:${sid}`);
    // The old object is owed a snapshot: its alarm must see the fence and stand down instead.
    await runInDurableObject(objectAt(sid, 1), async (o: SessionObject, state) => {
      const book = state.storage.kv.get<Record<string, unknown>>("book") ?? {};
      state.storage.kv.put("book", { ...book, snapshottedVersion: 0, lastSnapshotAt: 0, owedSince: 0 });
      o.dropHeldState();
      await o.alarm();
    });
    expect(await env.SNAPSHOTS.get(`snap:${sid}`)).toBe(before);
    expect(await storedAt(sid, 1)).toMatchObject({ status: "moved", reason: "fenced" });
    expect(client).toBeDefined();
  });
});
