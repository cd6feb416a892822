import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { PrincipalObject } from "../../src/users/index.ts";
import { overCap, type PrincipalEntry, revocationMoot } from "../../src/users/policy.ts";
import { BrowserClient } from "./harness.ts";
import { admin, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { sessionOf, storedAt } from "./session-admin.ts";

/** A user of this test only: principals are global to the deployment, like real users. */
const newUser = () => `user-${crypto.randomUUID()}`;

const login = (sub: string) => ({ respond: { headers: { "x-edge-session-login": JSON.stringify({ sub }) } } });

async function setup(overrides: Record<string, string> = {}) {
  const origins = await spawnOrigins(1);
  const e = poolEnv(origins, { ENVIRONMENT: "staging", FAULT_INJECTION: "true", AUTO_MIGRATE: "false", ...overrides });
  return { e, sub: newUser() };
}

/** A browser that has logged in as `sub`; returns it with its session id. */
async function loggedIn(e: Env, sub: string): Promise<{ client: BrowserClient; sid: string }> {
  const client = new BrowserClient(e);
  await client.send("/", login(sub));
  const s = await sessionOf(client);
  expect(s.sub).toBe(sub);
  return { client, sid: String(s.sid) };
}

interface Listed {
  sub: string;
  sessions: { sid: string; status: string; region: string; epoch: number; origin: string; lastSeen: string | null }[];
}

async function listed(e: Env, sub: string): Promise<Listed> {
  const res = await admin(e, "GET", `/users/${encodeURIComponent(sub)}/sessions`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Listed;
}

function principal(sub: string): DurableObjectStub<PrincipalObject> {
  const ns = env.PRINCIPALS as unknown as DurableObjectNamespace<PrincipalObject>;
  return ns.get(ns.idFromName(sub));
}

describe("/__edge/users/:sub/sessions", () => {
  it("lists every session a user logged in, from two clients, with where each lives", async () => {
    const { e, sub } = await setup();
    const a = await loggedIn(e, sub);
    const b = await loggedIn(e, sub);
    const list = await listed(e, sub);
    expect(list.sub).toBe(sub);
    expect(list.sessions.map((s) => s.sid).sort()).toEqual([a.sid, b.sid].sort());
    for (const s of list.sessions) expect(s).toMatchObject({ status: "active", region: "enam", epoch: 1 });
    expect(list.sessions.every((s) => s.lastSeen !== null)).toBe(true);
    // Another user's list does not show them.
    expect((await listed(e, newUser())).sessions).toEqual([]);
  });

  it("DELETE revokes them all: each ends on the server, is reported, and both clients are anonymous next", async () => {
    const { e, sub } = await setup();
    const a = await loggedIn(e, sub);
    const b = await loggedIn(e, sub);
    const res = await admin(e, "DELETE", `/users/${sub}/sessions`);
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      revoked: number;
      pending: number;
      sessions: { sid: string; result: string }[];
    };
    expect(report).toMatchObject({ revoked: 2, pending: 0 });
    expect(report.sessions.map((s) => s.result)).toEqual(["revoked", "revoked"]);
    for (const c of [a, b]) {
      const after = await sessionOf(c.client);
      expect(after.sub).toBeUndefined();
      expect(after.sid).not.toBe(c.sid);
    }
    expect((await listed(e, sub)).sessions).toEqual([]);
    // On the dashboard's timeline (the pool's recent events), one line per session.
    const stats = (await (await admin(e, "GET", "/stats")).json()) as { events: { event: string; detail: string }[] };
    const revokedEvents = stats.events.filter((x) => x.event === "user_sessions_revoked").map((x) => x.detail);
    for (const c of [a, b]) expect(revokedEvents.some((d) => d.startsWith(`${c.sid} of ${sub}`))).toBe(true);
    // The session's own audit trail says who ended it.
    const view = (await (await admin(e, "GET", `/sessions/${a.sid}`)).json()) as { audit: { detail: string | null }[] };
    expect(view.audit.map((x) => x.detail)).toContain("all sessions revoked by an operator");
  });

  it("in strict mode, a revoked session's client gets 401 (and any sub works in the path, percent-encoded)", async () => {
    const { e } = await setup({ STRICT_TOKENS: "true" });
    const sub = `tenant/${newUser()} a@x|y?#%`;
    const a = await loggedIn(e, sub);
    expect((await listed(e, sub)).sessions.map((s) => s.sid)).toEqual([a.sid]);
    expect((await admin(e, "DELETE", `/users/${encodeURIComponent(sub)}/sessions`)).status).toBe(200);
    const res = await a.client.send("/echo");
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_SESSION_ENDED");
  });

  it("a revoke while the session's region is down is not lost: recorded, honoured by the restore, then applied", async () => {
    const { e, sub } = await setup();
    const a = await loggedIn(e, sub);
    expect((await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" })).status).toBe(200);

    const res = await admin(e, "DELETE", `/users/${sub}/sessions`);
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ revoked: 0, pending: 1, sessions: [{ sid: a.sid, result: "pending" }] });
    expect((await listed(e, sub)).sessions).toMatchObject([{ sid: a.sid, status: "revoking" }]);

    // The client's next request cannot reach the object; the restore elsewhere refuses the revoked session.
    const after = await sessionOf(a.client);
    expect(after.sub).toBeUndefined();
    expect(after.sid).not.toBe(a.sid);

    // The region comes back: the principal's retry ends the object itself.
    await admin(e, "DELETE", "/faults");
    expect((await storedAt(a.sid, 1))?.status).toBe("active");
    expect(await runDurableObjectAlarm(principal(sub))).toBe(true);
    expect(await storedAt(a.sid, 1)).toMatchObject({ status: "destroyed", reason: "revoked" });
    expect((await listed(e, sub)).sessions).toEqual([]);
  });

  it("a revoke reaches a session that was restored elsewhere while its first region was down", async () => {
    // Strict: the read during the outage must reach the object (and restore it), not a copy in memory.
    const { e, sub } = await setup({ READ_CACHE_SECONDS: "0" });
    const a = await loggedIn(e, sub);
    await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" });
    // Restored into another region (a new epoch the index never heard of): the KV fence names it.
    const restored = await sessionOf(a.client);
    expect(restored).toMatchObject({ sid: a.sid, sub, ep: 2 });
    const res = await admin(e, "DELETE", `/users/${sub}/sessions`);
    expect(res.status).toBe(202);
    const after = await sessionOf(a.client);
    expect(after.sub).toBeUndefined();
  });
});

describe("origins and limits", () => {
  it("X-Edge-Session-Logout: all from one client ends the user's other sessions too", async () => {
    const { e, sub } = await setup();
    const a = await loggedIn(e, sub);
    const b = await loggedIn(e, sub);
    const other = await loggedIn(e, newUser());
    await a.client.send("/", { respond: { headers: { "x-edge-session-logout": "all" } } });
    expect(a.client.cookie).toBeUndefined();
    const bAfter = await sessionOf(b.client);
    expect(bAfter.sub).toBeUndefined();
    expect(bAfter.sid).not.toBe(b.sid);
    expect((await sessionOf(other.client)).sid).toBe(other.sid);
    expect((await listed(e, sub)).sessions).toEqual([]);
  });

  it("a plain logout ends only this session, and the index forgets it", async () => {
    const { e, sub } = await setup();
    const a = await loggedIn(e, sub);
    const b = await loggedIn(e, sub);
    await a.client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    expect((await sessionOf(b.client)).sid).toBe(b.sid);
    expect((await listed(e, sub)).sessions.map((s) => s.sid)).toEqual([b.sid]);
  });

  it("MAX_SESSIONS_PER_USER: a login past the cap ends the oldest session first", async () => {
    const { e, sub } = await setup({ MAX_SESSIONS_PER_USER: "2" });
    const first = await loggedIn(e, sub);
    const second = await loggedIn(e, sub);
    const third = await loggedIn(e, sub);
    expect((await sessionOf(first.client)).sub).toBeUndefined();
    expect((await sessionOf(second.client)).sid).toBe(second.sid);
    expect((await sessionOf(third.client)).sid).toBe(third.sid);
    expect((await listed(e, sub)).sessions.map((s) => s.sid).sort()).toEqual([second.sid, third.sid].sort());
    const view = (await (await admin(e, "GET", `/sessions/${first.sid}`)).json()) as {
      audit: { detail: string | null }[];
    };
    expect(view.audit.map((x) => x.detail)).toContain("over MAX_SESSIONS_PER_USER (2)");
  });

  it("logging in again on the same client replaces its entry instead of adding one", async () => {
    const { e, sub } = await setup({ MAX_SESSIONS_PER_USER: "1" });
    const a = await loggedIn(e, sub);
    await a.client.send("/", login(sub));
    const again = await sessionOf(a.client);
    expect(again.sub).toBe(sub);
    expect((await listed(e, sub)).sessions.map((s) => s.sid)).toEqual([again.sid]);
  });
});

describe("the operator API document", () => {
  it("describes the user routes from the schemas that validate them", async () => {
    const { e } = await setup();
    const doc = (await (await admin(e, "GET", "/openapi.json")).json()) as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(Object.keys(doc.paths["/users/{sub}/sessions"] ?? {}).sort()).toEqual(["delete", "get"]);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(["UserSessions", "UserRevocation"]));
  });
});

describe("the cap's choice (pure)", () => {
  const entry = (sid: string, createdAt: number, seq: number, revoking = false): PrincipalEntry => ({
    sid,
    epoch: 1,
    region: "enam",
    origin: "o",
    createdAt,
    seq,
    expiresAt: Number.MAX_SAFE_INTEGER,
    idleMs: 1,
    absoluteMs: 1,
    pool: "p",
    ...(revoking ? { revoking: { since: 0, why: "x", attempts: 0, next: 0 } } : {}),
  });

  it("ends the oldest past the cap, never the login in progress, and ignores sessions already being revoked", () => {
    const live = [entry("c", 30, 3), entry("a", 10, 1), entry("b", 10, 2), entry("r", 5, 0, true)];
    expect(overCap(live, 0, "c")).toEqual([]);
    expect(overCap(live, 3, "c")).toEqual([]);
    expect(overCap(live, 2, "c").map((x) => x.sid)).toEqual(["a"]);
    expect(overCap(live, 1, "c").map((x) => x.sid)).toEqual(["a", "b"]);
    // The login in progress may be the oldest by clock (a skewed ct): it stays all the same.
    expect(overCap(live, 1, "a").map((x) => x.sid)).toEqual(["b", "c"]);
  });

  it("a pending revocation is retried until the session's idle deadline has passed since it was recorded", () => {
    const pending = { ...entry("p", 0, 1, true), idleMs: 1_800_000 };
    const deadline = 1_800_000 + 60_000 + 10_000;
    expect(revocationMoot(pending, deadline - 1, 10_000)).toBe(false);
    expect(revocationMoot(pending, deadline, 10_000)).toBe(true);
    expect(revocationMoot(entry("q", 0, 2), deadline * 2, 10_000)).toBe(false);
  });
});
