import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { SessionObject } from "../../src/session/index.ts";
import type { SessionRecord } from "../../src/session/record.ts";
import { BrowserClient, edgeEnv } from "./harness.ts";
import { forwardedOf } from "./tokens.ts";

function stubFor(sid: string, ep = 1): DurableObjectStub<SessionObject> {
  const ns = env.SESSIONS as unknown as DurableObjectNamespace<SessionObject>;
  return ns.get(ns.idFromName(`${sid}:${ep}`));
}

async function stored(sid: string) {
  return runInDurableObject(stubFor(sid), (_o: SessionObject, state) => ({
    record: state.storage.kv.get<SessionRecord>("session"),
    alarm: state.storage.getAlarm(),
  }));
}

/** Moves the session's clock back: as if `ms` had passed since it was last seen and created. */
async function age(sid: string, ms: number, field: "lastSeen" | "createdAt") {
  await runInDurableObject(stubFor(sid), (o: SessionObject, state) => {
    const r = state.storage.kv.get<SessionRecord>("session");
    if (!r) throw new Error("no record");
    state.storage.kv.put("session", { ...r, [field]: r[field] - ms });
    o.dropHeldState();
  });
}

async function sessionWithData() {
  // Strict reads: these tests end sessions inside the object and expect the next request to see it at once.
  const client = new BrowserClient(edgeEnv({ READ_CACHE_SECONDS: "0" }));
  await client.send("/", {
    respond: { headers: { "x-edge-session-set": '{"cart":["tea"]}', "x-edge-session-login": '{"sub":"ada"}' } },
  });
  const s = forwardedOf((await client.echo()).echo);
  return { client, sid: String(s.sid) };
}

describe("session storage", () => {
  it("is not created for a session that never stores anything", async () => {
    const client = new BrowserClient();
    const { echo } = await client.echo();
    await client.echo();
    const { record, alarm } = await stored(String(forwardedOf(echo).sid));
    expect(record).toBeUndefined();
    expect(await alarm).toBeNull();
  });

  it("is created by the first write, with an alarm for its idle deadline", async () => {
    const { sid } = await sessionWithData();
    const { record, alarm } = await stored(sid);
    expect(record).toMatchObject({ status: "active", sub: "ada", data: { cart: ["tea"] }, version: 1 });
    expect(await alarm).toBeGreaterThan(Date.now());
  });
});

describe("idle and absolute timeouts", () => {
  it("the idle alarm ends a session left alone past SESSION_IDLE_TIMEOUT and deletes its storage", async () => {
    const { client, sid } = await sessionWithData();
    await age(sid, 2 * 3600 * 1000, "lastSeen");
    expect(await runDurableObjectAlarm(stubFor(sid))).toBe(true);
    const { record, alarm } = await stored(sid);
    expect(record).toBeUndefined();
    expect(await alarm).toBeNull();
    // In real time the client's token (exp = last refresh + idle) has expired by now; this test
    // only aged the server's clock, so the token still verifies. Either way the login and the
    // data are gone: the session is empty and anonymous.
    const after = forwardedOf((await client.echo()).echo);
    expect(after.sub).toBeUndefined();
    expect(after.data).toEqual({});
    expect(after.ver).toBe(0);
  });

  it("an active session past its absolute lifetime ends on the next request even before the alarm", async () => {
    const { client, sid } = await sessionWithData();
    await age(sid, 9 * 3600 * 1000, "createdAt");
    const after = forwardedOf((await client.echo()).echo);
    expect(after.sid).not.toBe(sid);
    expect(after.data).toEqual({});
    expect((await stored(sid)).record).toBeUndefined();
  });

  it("the alarm leaves a recently active session alone and re-arms", async () => {
    const { sid } = await sessionWithData();
    await runInDurableObject(stubFor(sid), (o: SessionObject) => o.alarm());
    const { record, alarm } = await stored(sid);
    expect(record?.status).toBe("active");
    expect(await alarm).toBeGreaterThan(Date.now());
  });

  it("logout keeps only a data-free tombstone, purged by the alarm once every token has expired", async () => {
    const { client, sid } = await sessionWithData();
    await client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    const { record } = await stored(sid);
    expect(record).toMatchObject({ status: "destroyed", reason: "logout" });
    expect(JSON.stringify(record)).not.toContain("tea");
    await runInDurableObject(stubFor(sid), (o: SessionObject, state) => {
      const t = state.storage.kv.get<{ purgeAt: number }>("session");
      state.storage.kv.put("session", { ...t, purgeAt: Date.now() - 1 });
      o.dropHeldState();
    });
    expect(await runDurableObjectAlarm(stubFor(sid))).toBe(true);
    expect((await stored(sid)).record).toBeUndefined();
  });
});
