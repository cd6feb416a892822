/** Typed unavailability: a session that cannot be reached is a 503 with Retry-After, never a 500. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.ts";
import { Trace } from "../../src/observe/index.ts";
import { Router, repin } from "../../src/proxy/route.ts";
import { type RequestScope, runtimeFor } from "../../src/proxy/steps.ts";
import { objectCaller } from "../../src/replication/failover.ts";
import type { LiveSession } from "../../src/session/index.ts";
import { BrowserClient } from "./harness.ts";
import { admin } from "./pool-harness.ts";
import { migrate, sessionOf, snapshotAtLeast, storedAt, strictLoggedInSession } from "./session-admin.ts";

const setup = () => strictLoggedInSession(2);

async function snapshotOfEpoch(sid: string, ep: number): Promise<void> {
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const { metadata } = await env.SNAPSHOTS.getWithMetadata<{ ep: number }>(`snap:${sid}`);
    if (metadata?.ep === ep) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no snapshot of epoch ${ep}`);
}

async function expectUnavailable(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(res.status, JSON.stringify(body)).toBe(503);
  expect(body.error.code).toBe("ERR_SESSION_UNAVAILABLE");
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  return body.error;
}

describe("operator calls on a session whose region is down", () => {
  it("inspect and migrate answer 503 ERR_SESSION_UNAVAILABLE with Retry-After", async () => {
    const { e, sid } = await setup();
    await snapshotAtLeast(sid, 1);
    await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" });
    await expectUnavailable(await admin(e, "GET", `/sessions/${sid}`));
    await expectUnavailable(await migrate(e, sid, { region: "weur" }));
    await admin(e, "DELETE", "/faults");
    expect((await admin(e, "GET", `/sessions/${sid}`)).status).toBe(200);
  });

  it("revoke answers 503 instead of silently not happening, and no restore brings the session back meanwhile", async () => {
    const { e, client, sid } = await setup();
    await snapshotAtLeast(sid, 1);
    const stolen = client.cookie;
    await admin(e, "POST", "/faults", { target: "region:enam", mode: "down" });
    const refused = await expectUnavailable(await admin(e, "DELETE", `/sessions/${sid}`));
    expect(refused.message).toMatch(/repeat it/);
    // During the outage a request would restore the session from its snapshot: not a revoked one.
    const during = await sessionOf(client);
    expect(during.sid).not.toBe(sid);
    expect(during.sub).toBeUndefined();
    // Once the region is back, the repeated call ends it where it lives; its token opens nothing.
    await admin(e, "DELETE", "/faults");
    expect((await admin(e, "DELETE", `/sessions/${sid}`)).status).toBe(200);
    const thief = new BrowserClient(e);
    thief.cookie = stolen;
    expect(await sessionOf(thief)).not.toMatchObject({ sid });
    expect(await storedAt(sid, 1)).toMatchObject({ status: "destroyed", reason: "revoked" });
  });
});

describe("hop limit", () => {
  it("a token more migrations old than the hop limit gets 503 ERR_SESSION_UNAVAILABLE, not a 500", async () => {
    const { e, client, sid } = await setup();
    const regions = Array.from({ length: 13 }, (_, i) => ["apac", "weur", "enam"][i % 3] ?? "apac");
    for (const [i, region] of regions.entries()) {
      expect((await migrate(e, sid, { region })).status).toBe(200);
      // The operator finds the session through its latest snapshot; the client's token stays at epoch 1.
      await snapshotOfEpoch(sid, i + 2);
    }
    const res = await client.send("/echo");
    await expectUnavailable(res);
  });
});

describe("re-pin of a session whose object cannot be reached", () => {
  it("still serves the request on the new origin (the move is stored by a later request), never an untyped failure", async () => {
    const { e, client } = await setup();
    const s = await sessionOf(client);
    const cfg = await loadConfig(e);
    const session: LiveSession = {
      sid: String(s.sid),
      epoch: 1,
      origin: String(s.oid),
      region: "enam",
      createdSec: Math.floor(Date.now() / 1000),
      version: 1,
      data: {},
      dataBytes: 2,
    };
    const to = new Router(cfg).pick(undefined, "enam", new Set([session.origin]));
    if (!to) throw new Error("no other origin");
    const call = objectCaller(env, cfg, [{ target: "region:enam", mode: "down" }]);
    const request = new Request("https://edge.test/");
    const x: RequestScope = {
      env: e,
      cfg,
      rt: runtimeFor(cfg),
      request,
      region: "enam",
      view: undefined,
      waitUntil: () => {},
      call,
      binding: undefined,
      longLived: undefined,
      trace: new Trace(),
    };
    const moved = await repin(x, session, to, "drained");
    expect(moved).toMatchObject({
      sid: session.sid,
      origin: to.id,
      moved: { from: session.origin, reason: "drained" },
    });
  });
});
