import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { BASE, BrowserClient, callWorker, edgeEnv, header, origins, receivedBy } from "./harness.ts";
import { forwardedOf } from "./tokens.ts";

async function publishedJwks() {
  const res = await callWorker(new Request(`${BASE}/.well-known/edge-session/jwks.json`));
  expect(res.status).toBe(200);
  return { res, jwks: (await res.json()) as { keys: Record<string, unknown>[] } };
}

describe("the forwarded X-Edge-Session header", () => {
  it("verifies against the published JWKS with the origin audience and its own typ", async () => {
    const { jwks } = await publishedJwks();
    const client = new BrowserClient();
    const { echo } = await client.echo();
    const value = header(echo, "x-edge-session") ?? "";
    const { payload, protectedHeader } = await jwtVerify(value, createLocalJWKSet(jwks as never), {
      issuer: "edge-session",
      audience: "edge-session:origin",
      typ: "edge-session+jwt",
      algorithms: ["EdDSA", "ES256"],
    });
    expect(protectedHeader.kid).toBe("ed-1");
    expect(payload).toMatchObject({ oid: echo.origin, ver: 0, ep: 1, data: {} });
    expect(String(payload.sid)).toMatch(/^[\w-]{24}$/);
    const exp = Number(payload.exp);
    const iat = Number(payload.iat);
    expect(exp - iat).toBeLessThanOrEqual(300);
    expect(exp).toBeGreaterThan(Date.now() / 1000);
  });

  it("the JWKS holds public members only, never the private or HS256 key, with cache headers", async () => {
    const { res, jwks } = await publishedJwks();
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual(["ed-1", "es-1"]);
    for (const k of jwks.keys) {
      expect(k).not.toHaveProperty("d");
      expect(k).not.toHaveProperty("k");
      expect(k.use).toBe("sig");
    }
  });

  it("carries the session data, the login and the version the origin set", async () => {
    const client = new BrowserClient();
    await client.send("/", {
      respond: {
        headers: {
          "x-edge-session-set": '{"cart":["tea"]}',
          "x-edge-session-login": '{"sub":"ada","claims":{"role":"admin"}}',
        },
      },
    });
    const fwd = forwardedOf((await client.echo()).echo);
    expect(fwd).toMatchObject({ sub: "ada", claims: { role: "admin" }, data: { cart: ["tea"] }, ver: 1 });
  });

  it("leaves data out, and says so, when it is over the size limit", async () => {
    const client = new BrowserClient(edgeEnv({ FORWARDED_DATA_MAX_BYTES: "64" }));
    await client.send("/", {
      respond: { headers: { "x-edge-session-set": JSON.stringify({ blob: "x".repeat(100) }) } },
    });
    const fwd = forwardedOf((await client.echo()).echo);
    expect(fwd.data).toBeUndefined();
    expect(fwd.data_omitted).toBe(true);
    expect(fwd.ver).toBe(1);
  });

  it("is signed with the configured first key, whatever its algorithm", async () => {
    const client = new BrowserClient(edgeEnv({ SESSION_SIGNING_KEYS: (await import("vitest")).inject("keys").es256 }));
    const { echo } = await client.echo();
    expect(decodeProtectedHeader(header(echo, "x-edge-session") ?? "")).toMatchObject({ alg: "ES256", kid: "es-1" });
    // The same client stays sticky with an ES256-signed affinity token.
    expect((await client.echo()).echo.origin).toBe(echo.origin);
  });
});

describe("what reaches the origin", () => {
  it("never passes on client-sent X-Edge-Session* headers, and they do not change the session", async () => {
    const client = new BrowserClient();
    await client.send("/", { respond: { headers: { "x-edge-session-set": '{"role":"user"}' } } });
    const { echo } = await client.echo("/echo", {
      headers: {
        "x-edge-session": "forged.header.value",
        "x-edge-session-set": '{"role":"admin"}',
        "x-edge-session-login": '{"sub":"root"}',
        "x-edge-session-logout": "1",
        "x-edge-session-whatever": "x",
      },
    });
    const names = Object.keys(echo.headers).filter((h) => h.startsWith("x-edge-session"));
    expect(names).toEqual(["x-edge-session"]);
    expect(header(echo, "x-edge-session")).not.toBe("forged.header.value");
    const fwd = forwardedOf(echo);
    expect(fwd.data).toEqual({ role: "user" });
    expect(fwd.sub).toBeUndefined();
    expect(client.cookie).toBeDefined();
  });

  it("strips hop-by-hop headers and those named in Connection, keeps end-to-end ones", async () => {
    const client = new BrowserClient();
    const { echo } = await client.echo("/echo", {
      headers: {
        connection: "keep-alive, x-secret-hop",
        "keep-alive": "timeout=5",
        "x-secret-hop": "1",
        te: "trailers",
        "x-app": "kept",
        "proxy-authorization": "Basic Zm9v",
      },
    });
    expect(echo.headers["x-secret-hop"]).toBeUndefined();
    expect(echo.headers["keep-alive"]).toBeUndefined();
    expect(echo.headers["proxy-authorization"]).toBeUndefined();
    expect(echo.headers.te).toBeUndefined();
    expect(echo.headers["x-app"]).toBe("kept");
  });

  it("removes the affinity cookie from Cookie but keeps the application's cookies", async () => {
    const client = new BrowserClient();
    await client.send("/");
    const { echo } = await client.echo("/echo", { headers: { cookie: "theme=dark; lang=en" } });
    expect(header(echo, "cookie")).toBe("theme=dark; lang=en");
    const only = await client.echo("/echo");
    expect(only.echo.headers.cookie).toBeUndefined();
  });

  it("replaces client-sent Forwarded / X-Forwarded-* with the layer's own", async () => {
    const client = new BrowserClient();
    const { echo } = await client.echo("/echo", {
      headers: {
        forwarded: "for=1.2.3.4;host=evil",
        "x-forwarded-host": "evil.example",
        "cf-connecting-ip": "203.0.113.9",
      },
    });
    expect(header(echo, "forwarded")).toBe('for=203.0.113.9;host="edge.test";proto=https');
    expect(header(echo, "x-forwarded-host")).toBe("edge.test");
    expect(header(echo, "x-forwarded-proto")).toBe("https");
  });

  it("cannot be pointed at another host: the path and query are all a client chooses", async () => {
    const client = new BrowserClient();
    const [self] = origins();
    const other = new URL(self?.url ?? "").host;
    for (const path of [`//${other}/x`, `/..//${other}/x`, "/%2F%2Fevil.example/", "/@evil.example/"]) {
      const res = await client.send(path);
      expect(res.status).toBe(200);
      const echo = (await res.json()) as { url: string };
      expect(echo.url.startsWith("/")).toBe(true);
    }
    // An absolute-form target names the layer's own host; the upstream is still the configured origin.
    const res = await callWorker(new Request("https://evil.example/abs?q=1"));
    expect(((await res.json()) as { url: string }).url).toBe("/abs?q=1");
  });

  it("streams request and response bodies through", async () => {
    const client = new BrowserClient();
    const body = "x".repeat(256 * 1024);
    const { echo } = await client.echo("/upload", { method: "POST", body, headers: { "content-type": "text/plain" } });
    expect(echo.body.length).toBe(body.length);
    const res = await client.send("/stream");
    const reader = res.body?.getReader();
    const chunks: string[] = [];
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = (await reader?.read()) ?? { done: true, value: undefined };
      if (done) break;
      chunks.push(decoder.decode(value));
    }
    expect(chunks.join("")).toBe("one\ntwo\nthree\n");
  });

  it("passes a WebSocket upgrade through to the session's origin", async () => {
    const client = new BrowserClient();
    const { echo } = await client.echo();
    const res = await client.send("/ws", { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const ws = res.webSocket;
    if (!ws) throw new Error("no webSocket on the 101 response");
    ws.accept();
    const reply = new Promise<string>((resolve) => ws.addEventListener("message", (e) => resolve(String(e.data))));
    ws.send("hello");
    expect(await reply).toBe(`${echo.origin}:hello`);
    ws.close();
    const seen = await receivedBy(origins().find((o) => o.id === echo.origin)?.url ?? "", client.tag);
    const upgrade = seen.find((r) => r.method === "UPGRADE");
    expect(upgrade?.headers["x-edge-session"]).toBeTruthy();
  });
});

describe("the layer's own paths and cookies", () => {
  it("a mistyped operator path is a 404 from the layer, never forwarded with the admin token", async () => {
    const { ADMIN_TOKEN } = await import("./harness.ts");
    for (const path of ["/__edge/stat", "/__edge/origins/x/y/z", "/__edge", "/.well-known/edge-session/other"]) {
      const res = await callWorker(
        new Request(`${BASE}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
      );
      expect([404, 308]).toContain(res.status);
      expect(res.headers.get("x-origin")).toBeNull();
    }
  });

  it("the operator's sign-in cookie never reaches an origin, and an origin cannot set it", async () => {
    const client = new BrowserClient();
    const { echo } = await client.echo("/echo", {
      headers: { cookie: "__Secure-edge-admin=123.abc; app=1" },
      respond: { headers: { "set-cookie": "__Secure-edge-admin=evil; Path=/__edge/; Secure" } },
    });
    expect(header(echo, "cookie")).toBe("app=1");
    const res = await client.send("/", {
      respond: { headers: { "set-cookie": "__Secure-edge-admin=evil; Path=/__edge/; Secure" } },
    });
    expect(res.headers.getSetCookie().some((c) => c.startsWith("__Secure-edge-admin"))).toBe(false);
  });
});
