import { describe, expect, it } from "vitest";
import { BASE, BrowserClient, callWorker, edgeEnv, origins } from "./harness.ts";
import { affinityClaims, forwardedOf, signWith } from "./tokens.ts";

describe("the origin pool changing under live sessions", () => {
  it("adding an origin moves no existing session", async () => {
    const two = edgeEnv({ ORIGINS: JSON.stringify(origins().slice(0, 2)) });
    const clients = Array.from({ length: 8 }, () => new BrowserClient(two));
    const before = await Promise.all(clients.map(async (c) => (await c.echo()).echo.origin));
    const three = edgeEnv();
    const after = await Promise.all(
      clients.map(async (c) => {
        const moved = new BrowserClient(three);
        moved.cookie = c.cookie;
        return (await moved.echo()).echo.origin;
      }),
    );
    expect(after).toEqual(before);
  });

  it("a session whose origin leaves the pool moves to another with its data and login", async () => {
    const all = edgeEnv();
    const client = new BrowserClient(all);
    await client.send("/", {
      respond: { headers: { "x-edge-session-set": '{"cart":["tea"]}', "x-edge-session-login": '{"sub":"ada"}' } },
    });
    const home = forwardedOf((await client.echo()).echo);
    const remaining = origins().filter((o) => o.id !== home.oid);
    const shrunk = new BrowserClient(edgeEnv({ ORIGINS: JSON.stringify(remaining) }));
    shrunk.cookie = client.cookie;
    const moved = forwardedOf((await shrunk.echo()).echo);
    expect(moved.oid).not.toBe(home.oid);
    expect(moved).toMatchObject({ sid: home.sid, sub: "ada", data: { cart: ["tea"] } });
    // The move is recorded: the session stays on its new origin.
    for (let i = 0; i < 5; i++) expect(forwardedOf((await shrunk.echo()).echo).oid).toBe(moved.oid);
  });
});

describe("token refresh", () => {
  it("does not re-issue a token in the first half of its life", async () => {
    const client = new BrowserClient();
    await client.send("/");
    const res = await client.send("/");
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it("re-issues the cookie once past half its life, for the same session", async () => {
    const client = new BrowserClient();
    const { echo } = await client.echo();
    const s = forwardedOf(echo);
    const now = Math.floor(Date.now() / 1000);
    client.cookie = await signWith({
      iat: now - 1000,
      exp: now + 600,
      claims: affinityClaims(String(s.sid), { oid: s.oid, ct: now - 1000 }),
    });
    const old = client.cookie;
    const res = await client.send("/");
    expect(res.headers.getSetCookie().some((c) => c.startsWith("__Host-edge-session="))).toBe(true);
    expect(client.cookie).not.toBe(old);
    expect(forwardedOf((await client.echo()).echo).sid).toBe(s.sid);
  });

  it("never lets a refreshed token outlive the absolute lifetime", async () => {
    const client = new BrowserClient(edgeEnv({ SESSION_IDLE_TIMEOUT: "1800", SESSION_ABSOLUTE_TIMEOUT: "3600" }));
    const now = Math.floor(Date.now() / 1000);
    client.cookie = await signWith({
      iat: now - 1700,
      exp: now + 100,
      claims: affinityClaims("B".repeat(24), { oid: "alpha", ct: now - 3500 }),
    });
    const res = await client.send("/");
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("__Host-edge-session=")) ?? "";
    const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)?.[1]);
    expect(maxAge).toBeLessThanOrEqual(100);
    expect(maxAge).toBeGreaterThan(90);
  });
});

describe("token transport", () => {
  it("a header-mode request ignores the cookie, and a cookie-mode response never exposes the token in a header", async () => {
    const browser = new BrowserClient();
    await browser.send("/", { respond: { headers: { "x-edge-session-login": '{"sub":"ada"}' } } });
    const cookieRes = await browser.send("/");
    expect(cookieRes.headers.get("x-edge-session-token")).toBeNull();
    const res = await callWorker(
      new Request(`${BASE}/echo`, {
        headers: { cookie: `__Host-edge-session=${browser.cookie}`, "x-edge-session-token": "new" },
      }),
    );
    const fwd = forwardedOf(await res.json());
    expect(fwd.sub).toBeUndefined();
    expect(res.headers.getSetCookie()).toEqual([]);
  });
});
