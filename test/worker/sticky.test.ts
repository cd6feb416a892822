import { describe, expect, it } from "vitest";
import { ApiClient, BrowserClient, cookieFrom, origins } from "./harness.ts";

describe("affinity", () => {
  it("keeps a browser on one origin for 25 requests, with one session id", async () => {
    const client = new BrowserClient();
    const first = await client.echo();
    const origin = first.echo.origin;
    expect(client.cookie).toBeTruthy();
    const seen = new Set<string>();
    for (let i = 0; i < 25; i++) {
      const { echo } = await client.echo(`/page/${i}`);
      seen.add(echo.origin);
    }
    expect([...seen]).toEqual([origin]);
  });

  it("spreads new sessions over the origins by weight", async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const { echo } = await new BrowserClient().echo();
      counts.set(echo.origin, (counts.get(echo.origin) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(
      origins()
        .map((o) => o.id)
        .sort(),
    );
    for (const n of counts.values()) expect(n).toBeGreaterThanOrEqual(5);
  });

  it("keeps API clients that send X-Edge-Session-Token sticky too, without cookies", async () => {
    const api = new ApiClient();
    const { res, echo } = await api.echo();
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(api.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    for (let i = 0; i < 20; i++) expect((await api.echo()).echo.origin).toBe(echo.origin);
  });

  it("sets the affinity cookie HttpOnly, Secure, SameSite=Lax, Path=/ under the __Host- name", async () => {
    const res = await new BrowserClient().send("/");
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("__Host-edge-session="));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/Domain=/i);
    expect(cookieFrom(res)).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });
});
