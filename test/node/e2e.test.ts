/**
 * End to end, nothing simulated: three real origins (Node HTTP servers), the
 * real Worker under `wrangler dev` (workerd, Durable Objects on disk), Node's
 * fetch as the client, and the forwarded header checked with the helper that
 * origins use (origin/verify.ts) against the layer's published JWKS.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { decodeProtectedHeader, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEdgeSessionVerifier,
  type EdgeSession,
  type EdgeSessionVerifier,
  login,
  logout,
  setSession,
} from "../../origin/verify.ts";
import { type RecordedRequest, type RunningOrigin, startOrigin, type TestRespond } from "../support/origin-server.ts";
import { startWranglerDev, type WranglerDev } from "./support/wrangler-dev.ts";

const COOKIE = "__Host-edge-session";
const KID = "e2e-ed-1";
const ADMIN_TOKEN = randomBytes(24).toString("base64url");
const ORIGIN_AUTH_SECRET = randomBytes(32).toString("base64url");

let origins: RunningOrigin[] = [];
let layer: WranglerDev | undefined;
let verify: EdgeSessionVerifier;

beforeAll(async () => {
  origins = await Promise.all(["origin-a", "origin-b", "origin-c"].map((id) => startOrigin(id)));
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const signingKeys = { keys: [{ ...(await exportJWK(privateKey)), kid: KID, alg: "EdDSA" }] };
  layer = await startWranglerDev({
    vars: {
      ENVIRONMENT: "development",
      // origin-a is probed every second: probes must carry the origin-auth secret too.
      ORIGINS: JSON.stringify(
        origins.map((o, i) => ({
          id: o.id,
          url: o.url,
          ...(i === 0 ? { health: { path: "/healthz", interval: 1 } } : {}),
        })),
      ),
    },
    secrets: { SESSION_SIGNING_KEYS: JSON.stringify(signingKeys), ADMIN_TOKEN, ORIGIN_AUTH_SECRET },
  });
  verify = createEdgeSessionVerifier({ jwksUrl: layer.jwksUrl });
});

afterAll(async () => {
  await layer?.stop();
  await Promise.all(origins.map((o) => o.close()));
});

function edge(): WranglerDev {
  if (!layer) throw new Error("wrangler dev did not start");
  return layer;
}

interface Sent {
  res: Response;
  /** What the origin received, as its JSON echo. */
  echo: RecordedRequest;
  /** The forwarded X-Edge-Session, exactly as the origin got it. */
  header: string;
  /** That header, verified with origin/verify.ts against the layer's JWKS; null if it did not verify. */
  session: EdgeSession | null;
}

/** A client that keeps the affinity cookie by hand, as a browser's jar would (Node's fetch has none). */
class CookieClient {
  readonly tag = randomUUID();
  cookie: string | undefined;
  constructor(cookie?: string) {
    this.cookie = cookie;
  }

  async send(path = "/", o: { respond?: TestRespond; headers?: Record<string, string> } = {}): Promise<Sent> {
    return received(await this.raw(path, o));
  }

  /** Sends and keeps the cookie, without assuming the answer is the origin's. */
  async raw(path = "/", o: { respond?: TestRespond; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers(o.headers);
    headers.set("x-test-tag", this.tag);
    if (this.cookie !== undefined) headers.set("cookie", `${COOKIE}=${this.cookie}`);
    if (o.respond) headers.set("x-test-respond", Buffer.from(JSON.stringify(o.respond)).toString("base64url"));
    const res = await fetch(new URL(path, edge().url), { headers, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair = "", ...attributes] = c.split(";");
      const [name, ...value] = pair.split("=");
      if (name?.trim() !== COOKIE) continue;
      const cleared = attributes.some((a) => a.trim().toLowerCase() === "max-age=0");
      this.cookie = cleared ? undefined : value.join("=");
    }
    return res;
  }
}

async function received(res: Response): Promise<Sent> {
  const text = await res.text();
  expect(res.status, text).toBeLessThan(400);
  const echo = JSON.parse(text) as RecordedRequest;
  const header = echo.headers["x-edge-session"];
  if (typeof header !== "string") throw new Error(`the origin got no X-Edge-Session: ${text}`);
  return { res, echo, header, session: await verify(header) };
}

function layerCookie(res: Response): string | undefined {
  return res.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE}=`));
}

function verified(sent: Sent): EdgeSession {
  if (!sent.session) throw new Error(`X-Edge-Session did not verify: ${sent.header}`);
  return sent.session;
}

describe("edge-session under wrangler dev", () => {
  it("publishes the configured signing key, public part only, and reports it to the operator", async () => {
    const res = await fetch(edge().jwksUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    const jwks = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", kid: KID, alg: "EdDSA" });
    expect(jwks.keys[0]).not.toHaveProperty("d");

    expect((await fetch(`${edge().url}/__edge/status`)).status).toBe(401);
    const status = await fetch(`${edge().url}/__edge/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({
      environment: "development",
      keys: { signing: KID, generated: false },
      origins: origins.map((o) => ({ id: o.id, url: o.url })),
    });
  });

  it("spreads new sessions over all three origins", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await new CookieClient().send("/")).echo.origin);
    expect([...seen].sort()).toEqual(origins.map((o) => o.id).sort());
  });

  it("keeps a cookie client on one origin for 10 requests, with one verified session", async () => {
    const client = new CookieClient();
    const first = await client.send("/");
    const cookie = layerCookie(first.res);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).toMatch(/; Path=\//);
    expect(client.cookie).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

    const s = verified(first);
    expect(s).toMatchObject({
      oid: first.echo.origin,
      ver: 0,
      data: {},
      iss: "edge-session",
      aud: "edge-session:origin",
    });
    expect(s.sub).toBeUndefined();
    expect(s.exp - s.iat).toBe(120);
    expect(decodeProtectedHeader(first.header)).toMatchObject({ alg: "EdDSA", kid: KID, typ: "edge-session+jwt" });

    for (let i = 0; i < 10; i++) {
      const next = await client.send(`/page/${i}?n=${i}`);
      expect(next.echo.origin).toBe(first.echo.origin);
      expect(next.echo.url).toBe(`/page/${i}?n=${i}`);
      expect(verified(next).sid).toBe(s.sid);
      // The affinity cookie is the layer's business: origins never see it.
      expect(String(next.echo.headers.cookie ?? "")).not.toContain(COOKIE);
    }

    // Counted at the origins themselves, not from the echoes: all 11 requests reached one origin.
    const counts = await Promise.all(
      origins.map(async (o) => {
        const res = await fetch(`${o.url}/__origin/requests?tag=${client.tag}`);
        return [o.id, ((await res.json()) as unknown[]).length] as const;
      }),
    );
    expect(Object.fromEntries(counts)).toEqual(
      Object.fromEntries(origins.map((o) => [o.id, o.id === first.echo.origin ? 11 : 0])),
    );
  });

  it("forwards only its own X-Edge-Session, never one the client sent", async () => {
    const victim = await new CookieClient().send("/");
    const attacker = new CookieClient();
    const replayed = await attacker.send("/", { headers: { "x-edge-session": victim.header } });
    expect(replayed.header).not.toBe(victim.header);
    expect(verified(replayed).sid).not.toBe(verified(victim).sid);
  });

  it("stores what the origin sets with X-Edge-Session-Set and forwards it on the next request", async () => {
    const client = new CookieClient();
    const s0 = verified(await client.send("/"));

    const set = await client.send("/cart", { respond: { headers: setSession({ cart: ["apple"], note: "grüße €" }) } });
    // Directives are for the layer only (the status header is the layer's own, on in development).
    expect([...set.res.headers.keys()].filter((k) => k.startsWith("x-edge-session"))).toEqual([
      "x-edge-session-status",
    ]);
    expect(set.res.headers.get("x-edge-session-status")).toBe("hit");

    const s1 = verified(await client.send("/"));
    expect(s1).toMatchObject({ sid: s0.sid, ver: 1, data: { cart: ["apple"], note: "grüße €" } });

    // A patch conditional on a version the session has moved past is refused, and the client is told so
    // (409, never the origin's 2xx); null deletes a key (RFC 7396).
    const stale = await client.raw("/", { respond: { headers: setSession({ cart: ["pear"] }, { ifVersion: 0 }) } });
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ error: { code: "ERR_VERSION_CONFLICT" } });
    await client.send("/", { respond: { headers: setSession({ note: null }, { ifVersion: 1 }) } });
    const s2 = verified(await client.send("/"));
    expect(s2).toMatchObject({ sid: s0.sid, ver: 2 });
    expect(s2.data).toEqual({ cart: ["apple"] });
  });

  it("logs in with X-Edge-Session-Login: new session id and cookie; the old cookie is not logged in", async () => {
    const client = new CookieClient();
    const before = verified(await client.send("/"));
    await client.send("/", { respond: { headers: setSession({ cart: ["apple"] }) } });
    const anonymousCookie = client.cookie;

    const res = await client.send("/login", { respond: { headers: login("alice", { role: "admin" }) } });
    expect(layerCookie(res.res)).toBeDefined();
    expect(client.cookie).toBeDefined();
    expect(client.cookie).not.toBe(anonymousCookie);

    const after = await client.send("/");
    expect(verified(after)).toMatchObject({
      sub: "alice",
      claims: { role: "admin" },
      data: { cart: ["apple"] },
      oid: before.oid,
    });
    expect(verified(after).sid).not.toBe(before.sid);
    expect(after.echo.origin).toBe(before.oid);

    // Replaying the pre-login cookie (a fixated or stolen id) opens nothing: an anonymous stand-in. Moments
    // after the login it gets no cookie either (it may be the same browser racing its own login).
    const replay = new CookieClient(anonymousCookie);
    const replayed = await replay.send("/");
    expect(verified(replayed).sub).toBeUndefined();
    expect(verified(replayed).sid).not.toBe(before.sid);
    expect(verified(replayed).sid).not.toBe(verified(after).sid);
    expect(verified(replayed)).toMatchObject({ ver: 0, data: {} });
    expect(layerCookie(replayed.res)).toBeUndefined();
  });

  it("logs out with X-Edge-Session-Logout: the cookie is cleared and replaying it is not logged in", async () => {
    const client = new CookieClient();
    await client.send("/");
    await client.send("/login", { respond: { headers: login("bob") } });
    const loggedIn = verified(await client.send("/"));
    expect(loggedIn.sub).toBe("bob");
    const loggedInCookie = client.cookie;

    const out = await client.send("/logout", { respond: { headers: logout() } });
    expect(layerCookie(out.res)).toMatch(new RegExp(`^${COOKIE}=;.*Max-Age=0`));
    expect(out.res.headers.has("x-edge-session-logout")).toBe(false);
    expect(client.cookie).toBeUndefined();

    const replayed = verified(await new CookieClient(loggedInCookie).send("/"));
    expect(replayed.sub).toBeUndefined();
    expect(replayed.sid).not.toBe(loggedIn.sid);
    expect(replayed).toMatchObject({ ver: 0, data: {} });
  });

  it("serves API clients through X-Edge-Session-Token, without cookies", async () => {
    const first = await received(await fetch(`${edge().url}/`, { headers: { "x-edge-session-token": "new" } }));
    expect(first.res.headers.getSetCookie()).toEqual([]);
    const token = first.res.headers.get("x-edge-session-token") ?? "";
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

    for (let i = 0; i < 3; i++) {
      const next = await received(await fetch(`${edge().url}/`, { headers: { "x-edge-session-token": token } }));
      expect(next.echo.origin).toBe(first.echo.origin);
      expect(verified(next).sid).toBe(verified(first).sid);
    }

    const respond = Buffer.from(JSON.stringify({ headers: logout() })).toString("base64url");
    const out = await fetch(`${edge().url}/logout`, {
      headers: { "x-edge-session-token": token, "x-test-respond": respond },
    });
    await out.body?.cancel();
    expect(out.headers.get("x-edge-session-token")).toBe("");
  });

  it("explains each response (development turns the status header on) and revokes a user's sessions in one call", async () => {
    const sub = `e2e-${randomUUID()}`;
    const phone = new CookieClient();
    const first = await phone.send("/");
    expect(first.res.headers.get("x-edge-session-status")).toBe("new");
    expect(first.res.headers.get("server-timing")).toMatch(/(^|,)origin;dur=\d+(\.\d+)?(,|$)/);
    const laptop = new CookieClient();
    for (const c of [phone, laptop]) await c.send("/login", { respond: { headers: login(sub) } });
    const hit = await phone.send("/");
    expect(hit.res.headers.get("x-edge-session-status")).toBe("hit");
    expect(hit.res.headers.get("server-timing")).toMatch(/token;dur=.*session;dur=.*origin;dur=.*total;dur=/);

    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const url = `${edge().url}/__edge/users/${sub}/sessions`;
    const listed = (await (await fetch(url, { headers: auth })).json()) as { sessions: { sid: string }[] };
    expect(listed.sessions.map((s) => s.sid).sort()).toEqual(
      [verified(hit).sid, verified(await laptop.send("/")).sid].sort(),
    );
    const revoked = await fetch(url, { method: "DELETE", headers: auth });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({ revoked: 2, pending: 0 });
    for (const c of [phone, laptop]) expect(verified(await c.send("/")).sub).toBeUndefined();
  });
});

describe("origins locked to the layer", () => {
  it("every request an origin receives, health probes included, carries the shared secret", async () => {
    const res = await fetch(`${edge().url}/locked`, { headers: { "x-edge-session-token": "new" } });
    const echo = (await res.json()) as RecordedRequest;
    expect(echo.headers["x-edge-origin-auth"]).toBe(ORIGIN_AUTH_SECRET);
    const [a] = origins;
    const deadline = Date.now() + 15_000;
    let probes: RecordedRequest[] = [];
    while (!probes.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      const seen = (await (await fetch(`${a?.url}/__origin/requests`)).json()) as RecordedRequest[];
      probes = seen.filter((r) => r.url === "/healthz");
    }
    expect(probes.length).toBeGreaterThan(0);
    for (const p of probes) expect(p.headers["x-edge-origin-auth"]).toBe(ORIGIN_AUTH_SECRET);
  });
});
