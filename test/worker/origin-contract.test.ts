/**
 * What an origin can rely on: the forwarded header stays within its bound,
 * every document is readable through the document endpoint, client-sent
 * headers never reach it under a forwarding or reserved name, and health
 * probes say who they are.
 */
import fc from "fast-check";
import { decodeJwt } from "jose";
import { describe, expect, inject, it } from "vitest";
import { ForwardedSigner } from "../../src/token/forwarded.ts";
import { buildKeyRing } from "../../src/token/keys.ts";
import { BASE, BrowserClient, callWorker, edgeEnv, header } from "./harness.ts";
import { poolEnv, runHealthChecks, spawnOrigins } from "./pool-harness.ts";
import { forwardedOf } from "./tokens.ts";

const DOCUMENT = `${BASE}/.well-known/edge-session/document`;

/** JSON for a header value, as the origin package writes it: every character above U+007E as a \u escape. */
const headerJson = (v: unknown) =>
  JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

const set = (patch: unknown) => ({ respond: { headers: { "x-edge-session-set": headerJson(patch) } } });

/** Writes `kb` kilobytes of data in patches that fit MAX_PATCH_BYTES. */
async function grow(client: BrowserClient, kb: number, note = "ü"): Promise<void> {
  for (let i = 0; i * 6 < kb; i++) await client.send("/", set({ [`part${i}`]: `${note}${"x".repeat(6 * 1024)}` }));
}

describe("the forwarded header is bounded as a whole (FORWARDED_MAX_BYTES)", () => {
  it("leaves out data first, then login claims, never sid or sub, and never exceeds the bound", async () => {
    const e = edgeEnv({ FORWARDED_MAX_BYTES: "4096", LOGIN_CLAIMS_MAX_BYTES: "8192", MAX_PATCH_BYTES: "16384" });
    const client = new BrowserClient(e);
    await client.send("/", set({ small: "ok" }));
    const claims = { groups: Array.from({ length: 40 }, (_, i) => `group-${i}`) };
    await client.send("/", { respond: { headers: { "x-edge-session-login": headerJson({ sub: "ada", claims }) } } });
    let fwd = forwardedOf((await client.echo()).echo);
    expect(fwd).toMatchObject({ sub: "ada", claims, data: { small: "ok" } });

    await client.send("/", set({ blob: "x".repeat(3000) }));
    let { echo } = await client.echo();
    fwd = forwardedOf(echo);
    expect(header(echo, "x-edge-session")?.length).toBeLessThanOrEqual(4096);
    expect(fwd).toMatchObject({ sub: "ada", claims, data_omitted: true });
    expect(fwd.data).toBeUndefined();

    // Claims that alone overflow the bound (this deployment allows large ones) go too; sid and sub stay.
    const big = { blob: "y".repeat(5000) };
    await client.send("/", {
      respond: { headers: { "x-edge-session-login": headerJson({ sub: "bob", claims: big }) } },
    });
    ({ echo } = await client.echo());
    fwd = forwardedOf(echo);
    expect(header(echo, "x-edge-session")?.length).toBeLessThanOrEqual(4096);
    expect(fwd).toMatchObject({ sub: "bob", data_omitted: true, claims_omitted: true });
    expect(fwd.claims).toBeUndefined();
    expect(typeof fwd.sid).toBe("string");

    // A logout always gets through: the origin got a header it could read, and the logout applies.
    await client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    fwd = forwardedOf((await client.echo()).echo);
    expect(fwd.sub).toBeUndefined();
    expect(fwd.ver).toBe(0);
  });

  it("by default stays under 8 KiB header lines: a 7.9 KB login is refused, a large document is left out", async () => {
    const e = edgeEnv({ MAX_PATCH_BYTES: "16384" });
    const client = new BrowserClient(e);
    const claims = { blob: "z".repeat(7900) };
    const res = await client.send("/", {
      respond: { headers: { "x-edge-session-login": headerJson({ sub: "ada", claims }) } },
    });
    expect(res.status).toBe(200);
    let { echo } = await client.echo();
    expect(forwardedOf(echo).sub).toBeUndefined();
    await grow(client, 12);
    ({ echo } = await client.echo());
    expect(header(echo, "x-edge-session")?.length).toBeLessThanOrEqual(6144);
    expect(forwardedOf(echo).data_omitted).toBe(true);
  });

  it("a session's signed header is reused for its state, with thousands of other sessions in between", async () => {
    const keys = await buildKeyRing(JSON.parse(inject("keys").mixed).keys);
    const signer = new ForwardedSigner(keys, "edge-session", "edge-session:origin", 6144);
    const claims = (sid: string) => ({ sid, ver: 1, oid: "origin-1", reg: "enam", ep: 1, data: {} });
    const t0 = Date.now();
    const first = await signer.sign(claims("kept"), t0);
    // As many sessions as a busy isolate serves between two requests of one client.
    for (let i = 0; i < 3000; i++) await signer.sign(claims(`other-${i}`), t0);
    // A second later the same state is answered with the same header: no new signature.
    expect(await signer.sign(claims("kept"), t0 + 1000)).toBe(first);
  });

  it("fits the smallest allowed bound (3072) even with every fixed claim at its longest", async () => {
    const keys = await buildKeyRing(JSON.parse(inject("keys").mixed).keys);
    const longest = "x".repeat(256);
    const signer = new ForwardedSigner(keys, longest, longest, 3072);
    const jws = await signer.sign({
      sid: "s".repeat(64),
      ver: 2 ** 52,
      oid: "o".repeat(64),
      reg: "r".repeat(16),
      ep: 2 ** 52,
      jur: "eu",
      // 256 UTF-16 units (the most a login accepts), each 3 bytes of UTF-8.
      sub: "€".repeat(256),
      claims: { c: "c".repeat(3000) },
      data: { d: "d".repeat(3000) },
      prev_oid: "p".repeat(64),
      reason: "connect_failed",
    });
    expect(jws.length).toBeLessThanOrEqual(3072);
  });

  it("never exceeds the bound, and leaves out only what does not fit (any claims, data, key and bound)", async () => {
    const sets = JSON.parse(inject("keys").mixed).keys as { kty: string }[];
    const rings = await Promise.all(
      [sets.filter((k) => k.kty === "OKP"), sets.filter((k) => k.kty === "EC")].map((keys) =>
        buildKeyRing(keys as never),
      ),
    );
    const text = fc.string({ unit: "grapheme", maxLength: 400 });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...rings),
        fc.integer({ min: 3072, max: 12_000 }),
        fc.option(text, { nil: undefined }),
        fc.option(fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 12 }), { nil: undefined }),
        fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 30 }),
        async (keys, maxBytes, sub, claims, data) => {
          const signer = new ForwardedSigner(keys, "edge-session", "edge-session:origin", maxBytes);
          const base = { sid: crypto.randomUUID(), ver: 3, oid: "o", reg: "enam", ep: 1 };
          const jws = await signer.sign({
            ...base,
            ...(sub ? { sub: sub.slice(0, 256) || "x" } : {}),
            ...(claims ? { claims } : {}),
            data,
          });
          expect(jws.length).toBeLessThanOrEqual(maxBytes);
          const payload = decodeJwt(jws);
          expect(payload).toMatchObject(base);
          // A signer per measurement: a signer reuses its signature for the same (sid, version).
          const unbounded = {
            sign: (c: Parameters<ForwardedSigner["sign"]>[0]) =>
              new ForwardedSigner(keys, "edge-session", "edge-session:origin", Number.POSITIVE_INFINITY).sign(c),
          };
          const who = sub ? { sub: sub.slice(0, 256) || "x" } : {};
          if (payload.data === undefined) {
            expect(payload.data_omitted).toBe(true);
            const whole = await unbounded.sign({ ...base, ...who, ...(payload.claims ? { claims } : {}), data });
            expect(whole.length).toBeGreaterThan(maxBytes);
          } else expect(payload.data).toEqual(data);
          if (claims && payload.claims === undefined) {
            expect(payload).toMatchObject({ claims_omitted: true, data_omitted: true });
            // Claims go only when even without data they would not fit.
            const withClaims = new ForwardedSigner(
              keys,
              "edge-session",
              "edge-session:origin",
              Number.POSITIVE_INFINITY,
            );
            const full = await withClaims.sign({ ...base, ...(sub ? { sub: sub.slice(0, 256) || "x" } : {}), claims });
            expect(full.length).toBeGreaterThan(maxBytes);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("refuses login claims over LOGIN_CLAIMS_MAX_BYTES and keeps the session as it was", async () => {
    const client = new BrowserClient(edgeEnv({ LOGIN_CLAIMS_MAX_BYTES: "100" }));
    await client.send("/", {
      respond: {
        headers: {
          "x-edge-session-login": headerJson({ sub: "ada", claims: { note: "n".repeat(120) } }),
          "x-edge-session-set": '{"kept":false}',
        },
      },
    });
    const fwd = forwardedOf((await client.echo()).echo);
    expect(fwd.sub).toBeUndefined();
    expect(fwd.data).toEqual({});
    await client.send("/", {
      respond: { headers: { "x-edge-session-login": headerJson({ sub: "ada", claims: { note: "short" } }) } },
    });
    expect(forwardedOf((await client.echo()).echo)).toMatchObject({ sub: "ada", claims: { note: "short" } });
  });

  it("a merge patch with \\u escapes stores any Unicode exactly, emoji (surrogate pairs) included", async () => {
    const client = new BrowserClient();
    const note = "café — grüße € 😀 𝄞 \u0000 \u2028";
    await client.send("/", set({ note }));
    expect(forwardedOf((await client.echo()).echo).data).toEqual({ note });
  });
});

describe("the document endpoint (/.well-known/edge-session/document)", () => {
  const read = (value: string | undefined, e = edgeEnv()) =>
    callWorker(new Request(DOCUMENT, { headers: value ? { "x-edge-session": value } : {} }), e);

  it("gives an origin the whole 50 KB document its header left out, at exactly that version", async () => {
    const client = new BrowserClient();
    await grow(client, 50, "😀");
    await client.send("/", { respond: { headers: { "x-edge-session-login": '{"sub":"ada","claims":{"r":1}}' } } });
    const { echo } = await client.echo();
    const value = header(echo, "x-edge-session");
    const fwd = forwardedOf(echo);
    expect(fwd.data_omitted).toBe(true);

    const res = await read(value);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const doc = (await res.json()) as { sid: string; ver: number; data: Record<string, string>; sub: string };
    expect(doc).toMatchObject({ sid: fwd.sid, ver: fwd.ver, sub: "ada", claims: { r: 1 } });
    expect(JSON.stringify(doc.data).length).toBeGreaterThan(50_000);
    expect(doc.data.part0?.startsWith("😀x")).toBe(true);

    // Once the session has moved on, that header reads nothing: no newer data for an old header.
    await client.send("/", set({ more: 1 }));
    const stale = await read(value);
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe("ERR_VERSION_CONFLICT");

    await client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    const ended = await read(header((await client.echo()).echo, "x-edge-session"));
    // A fresh (logged-out) session reads as empty; the old session's header reads nothing at all.
    expect(ended.status).toBe(200);
    expect(await ended.json()).toMatchObject({ ver: 0, data: {} });
  });

  it("refuses anything but a fresh forwarded header of ours: missing, forged, an affinity token, another audience", async () => {
    const client = new BrowserClient();
    await client.send("/", set({ secret: 1 }));
    const { res, echo } = await client.echo();
    expect(res.status).toBe(200);
    const value = header(echo, "x-edge-session") ?? "";
    const [h, p] = value.split(".");
    for (const bad of [undefined, "garbage", `${h}.${p}.AAAA`, client.cookie]) {
      const r = await read(bad);
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("ERR_DOCUMENT_UNAUTHORIZED");
    }
    expect((await read(value, edgeEnv({ FORWARDED_AUDIENCE: "another-deployment" }))).status).toBe(401);
    expect((await read(value)).status).toBe(200);
  });
});

describe("header hygiene: what the origin receives", () => {
  it("drops client headers that a CGI-style server would read as a reserved or forwarding header", async () => {
    const client = new BrowserClient();
    await client.send("/", set({ role: "user" }));
    const { echo } = await client.echo("/echo", {
      headers: {
        X_Edge_Session: "forged",
        "X-Edge_Session-Set": '{"role":"admin"}',
        "X-Forwarded_For": "10.6.6.6",
        x_forwarded_host: "evil.example",
        X_Forwarded_Proto: "http",
        "X-Real-IP": "10.6.6.6",
        X_Real_IP: "10.6.6.6",
        "True-Client-IP": "10.6.6.6",
        "X-Client-IP": "10.6.6.6",
        "X-Cluster-Client-IP": "10.6.6.6",
        Content_Length: "5",
        "X-App": "kept",
        X_App: "ambiguous",
        X_Other: "kept too",
        "cf-connecting-ip": "203.0.113.7",
      },
    });
    const names = Object.keys(echo.headers);
    const cgi = (n: string) => `HTTP_${n.toUpperCase().replaceAll("-", "_")}`;
    for (const forbidden of [
      "HTTP_X_EDGE_SESSION_SET",
      "HTTP_CONTENT_LENGTH",
      "HTTP_TRUE_CLIENT_IP",
      "HTTP_X_CLIENT_IP",
    ])
      expect(names.map(cgi)).not.toContain(forbidden);
    expect(names.filter((n) => n.includes("_")).sort()).toEqual(["x_other"]);
    expect(echo.headers["x-app"]).toBe("kept");
    expect(echo.headers["x-cluster-client-ip"]).toBeUndefined();
    expect(echo.headers["cf-connecting-ip"]).toBeUndefined();
    // The layer's own account of the client, and only that.
    expect(echo.headers["x-forwarded-for"]).toBe("203.0.113.7");
    expect(echo.headers["x-real-ip"]).toBe("203.0.113.7");
    expect(echo.headers["x-forwarded-host"]).toBe("edge.test");
    expect(echo.headers["x-forwarded-proto"]).toBe("https");
    expect(forwardedOf(echo).data).toEqual({ role: "user" });
  });

  it("never shows the client directive headers an origin sent in another spelling", async () => {
    const client = new BrowserClient();
    const res = await client.send("/", {
      respond: { headers: { X_Edge_Session_Set: '{"secret":"for the layer only"}', "X-App_Header": "kept" } },
    });
    expect(res.headers.get("x_edge_session_set")).toBeNull();
    expect(res.headers.get("x-app_header")).toBe("kept");
  });

  it("drops headers nominated by Connection in any spelling", async () => {
    const { echo } = await new BrowserClient().echo("/echo", {
      headers: { connection: "x_secret_hop", "x-secret-hop": "1" },
    });
    expect(echo.headers["x-secret-hop"]).toBeUndefined();
  });
});

describe("health probes", () => {
  it("carry a documented User-Agent and X-Edge-Session-Probe, and no session", async () => {
    const [origin] = await spawnOrigins(1, () => ({ health: { path: "/healthz", interval: 60 } }));
    if (!origin) throw new Error("no origin");
    const e = poolEnv([origin]);
    await new BrowserClient(e).echo(); // the pool object learns its origins from the first request
    await runHealthChecks(e);
    const res = await fetch(`${origin.url}/__origin/requests`);
    const probes = ((await res.json()) as { url: string; headers: Record<string, string> }[]).filter(
      (r) => r.url === "/healthz",
    );
    expect(probes.length).toBeGreaterThan(0);
    for (const p of probes) {
      expect(p.headers["user-agent"]).toMatch(/^edge-session-health\/\d+\.\d+\.\d+$/);
      expect(p.headers["x-edge-session-probe"]).toBe("1");
      expect(p.headers["x-edge-session"]).toBeUndefined();
    }
  });
});
