/**
 * The dashboard's sign-in and CSRF rules, over plain HTTP against the real
 * Worker under `wrangler dev`: the cookie, what a forged one gets, and which
 * cookie-signed changes are refused. Node's fetch sends exactly the Origin and
 * Sec-Fetch-Site headers each case sets, as a browser would or would not.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EdgeFixture, type Stats, startEdgeFixture } from "./support/edge-fixture.ts";

const COOKIE = "__Secure-edge-admin";

let edge: EdgeFixture;

beforeAll(async () => {
  edge = await startEdgeFixture();
});

afterAll(async () => {
  await edge?.stop();
});

interface Post {
  form?: Record<string, string>;
  json?: unknown;
  cookie?: string;
  origin?: string;
  site?: string;
  csrf?: boolean;
}

function post(path: string, o: Post = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (o.cookie) headers.cookie = o.cookie;
  if (o.origin) headers.origin = o.origin;
  if (o.site) headers["sec-fetch-site"] = o.site;
  if (o.csrf) headers["x-edge-admin"] = "1";
  if (o.json !== undefined) headers["content-type"] = "application/json";
  const body = o.json !== undefined ? JSON.stringify(o.json) : o.form ? new URLSearchParams(o.form) : undefined;
  return fetch(`${edge.url}/__edge/${path}`, {
    method: "POST",
    headers,
    redirect: "manual",
    ...(body ? { body } : {}),
  });
}

/** Signs in as the form does; returns the cookie as `name=value`. */
async function signIn(): Promise<string> {
  const res = await post("login", { form: { token: edge.adminToken }, origin: edge.url });
  expect(res.status).toBe(303);
  return res.headers.getSetCookie()[0]?.split(";")[0] ?? "";
}

const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
const view = async (cookie?: string) => {
  const html = await (await fetch(`${edge.url}/__edge/`, { headers: cookie ? { cookie } : {} })).text();
  return /data-view="(\w+)"/.exec(html)?.[1];
};

describe("dashboard sign-in", () => {
  it("shows the sign-in form, not the dashboard, without a cookie; the API stays 401", async () => {
    const page = await fetch(`${edge.url}/__edge/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'self'/);
    expect(page.headers.get("cache-control")).toBe("no-store");
    const html = await page.text();
    expect(html).toMatch(/data-view="signin"/);
    expect(html).toMatch(/<form method="post" action="\/__edge\/login"/);
    expect(html).not.toMatch(/id="origins"/);
    const bare = await fetch(`${edge.url}/__edge`, { redirect: "manual" });
    expect([bare.status, bare.headers.get("location")]).toEqual([308, "/__edge/"]);

    for (const path of ["stats", "status", "origins"]) {
      const res = await fetch(`${edge.url}/__edge/${path}`);
      expect(res.status).toBe(401);
      expect(await errorCode(res)).toBe("ERR_ADMIN_UNAUTHORIZED");
    }
  });

  it("sets a Secure, HttpOnly, SameSite=Strict cookie for /__edge/ that is not the token", async () => {
    const res = await post("login", { form: { token: edge.adminToken }, origin: edge.url });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/__edge/");
    const [cookie = ""] = res.headers.getSetCookie();
    expect(cookie).toMatch(
      new RegExp(`^${COOKIE}=\\d+\\.[\\w-]{43}; Max-Age=28800; Path=/__edge/; HttpOnly; Secure; SameSite=Strict$`),
    );
    expect(cookie).not.toContain(edge.adminToken);
    const pair = cookie.split(";")[0] ?? "";
    expect(await view(pair)).toBe("dashboard");
    expect((await fetch(`${edge.url}/__edge/stats`, { headers: { cookie: pair } })).status).toBe(200);
  });

  it("refuses a wrong token, an oversized form, and a sign-in posted from another origin", async () => {
    const wrong = await post("login", { form: { token: `${edge.adminToken}x` }, origin: edge.url });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.getSetCookie()).toEqual([]);
    const huge = await post("login", { form: { token: "x".repeat(5000) }, origin: edge.url });
    expect(huge.status).toBe(413);
    for (const o of [{ origin: "https://evil.example" }, { origin: "null" }, { site: "cross-site" }, {}]) {
      const res = await post("login", { form: { token: edge.adminToken }, ...o });
      expect(res.status, JSON.stringify(o)).toBe(403);
      expect(res.headers.getSetCookie()).toEqual([]);
    }
  });

  it("answers 401 to forged, tampered and expired cookies, and shows them the sign-in form", async () => {
    const good = (await signIn()).split("=")[1] ?? "";
    const [exp = "", mac = ""] = good.split(".");
    const flipped = `${mac.slice(0, 10)}${mac[10] === "A" ? "B" : "A"}${mac.slice(11)}`;
    const forged = [
      edge.adminToken,
      `${exp}.${flipped}`,
      `${Number(exp) + 3600}.${mac}`,
      `${Math.floor(Date.now() / 1000) - 10}.${mac}`,
      `${exp}.${"A".repeat(43)}`,
      "1.x",
    ];
    for (const value of forged) {
      const res = await fetch(`${edge.url}/__edge/stats`, { headers: { cookie: `${COOKIE}=${value}` } });
      expect(res.status, value).toBe(401);
      expect(await errorCode(res)).toBe("ERR_ADMIN_UNAUTHORIZED");
      expect(await view(`${COOKIE}=${value}`)).toBe("signin");
    }
  });

  it("refuses cookie-signed changes without the X-Edge-Admin header or from another origin (403)", async () => {
    const cookie = await signIn();
    const self = edge.url;
    const refused: Post[] = [
      { cookie, origin: self, site: "same-origin" },
      { cookie, csrf: true, origin: "https://evil.example" },
      { cookie, csrf: true, site: "cross-site", origin: self },
      { cookie, csrf: true, site: "same-site" },
      { cookie, csrf: true },
    ];
    for (const o of refused) {
      const res = await post("origins/origin-c/drain", { ...o, json: { in: 60 } });
      expect(res.status, JSON.stringify({ ...o, cookie: undefined })).toBe(403);
      expect(await errorCode(res)).toBe("ERR_ADMIN_CSRF");
    }
    expect((await edge.admin<Stats>("stats")).origins.find((o) => o.id === "origin-c")?.drain).toBeNull();

    const drained = await post("origins/origin-c/drain", {
      cookie,
      csrf: true,
      origin: self,
      site: "same-origin",
      json: {},
    });
    expect(drained.status).toBe(200);
    expect((await post("origins/origin-c/undrain", { cookie, csrf: true, origin: self })).status).toBe(200);
    // Bearer needs no CSRF header: browsers never attach it by themselves.
    expect((await post("origins/origin-c/undrain")).status).toBe(401);
    await edge.admin("origins/origin-c/undrain", { method: "POST" });
  });

  it("signs out by clearing the cookie", async () => {
    const cookie = await signIn();
    expect((await post("logout", { cookie })).status).toBe(403);
    const res = await post("logout", { cookie, csrf: true, origin: edge.url });
    expect(res.status).toBe(204);
    expect(res.headers.getSetCookie()[0]).toMatch(new RegExp(`^${COOKIE}=; Max-Age=0; Path=/__edge/;`));
  });

  it("serves its assets content-addressed and immutable, and 404 for others", async () => {
    const html = await (await fetch(`${edge.url}/__edge/`)).text();
    const paths = [...html.matchAll(/(?:href|src)="(\/__edge\/assets\/[^"]+)"/g)].map((m) => m[1]);
    expect(paths).toHaveLength(2);
    for (const path of paths) {
      const res = await fetch(`${edge.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("content-type")).toMatch(/^text\/(css|javascript)/);
    }
    expect((await fetch(`${edge.url}/__edge/assets/dashboard.00000000.js`)).status).toBe(404);
  });
});
