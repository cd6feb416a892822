/**
 * The origin side on its own, without the layer: origin/verify.ts against a
 * JWKS served from this test, and origin/demo.ts as a real process.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEdgeSessionVerifier, login, logout, setSession } from "../../origin/verify.ts";
import { type DemoOrigin, startDemoOrigin } from "./support/wrangler-dev.ts";

const KID = "test-ed-1";
const CLAIMS = { sid: "s3ss10n-1d-0123456789abcdef", ver: 3, oid: "demo-1", reg: "weur", ep: 1, data: {} };

let signingKey: CryptoKey;
let impostorKey: CryptoKey;
let jwksServer: Server;
let jwksUrl: string;

beforeAll(async () => {
  const pair = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  signingKey = pair.privateKey;
  impostorKey = (await generateKeyPair("EdDSA", { crv: "Ed25519" })).privateKey;
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: KID, alg: "EdDSA", use: "sig" }] });
  jwksServer = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(jwks));
  await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/edge-session/jwks.json`;
});

afterAll(async () => {
  jwksServer.closeAllConnections();
  await new Promise((resolve) => jwksServer.close(resolve));
});

/** An X-Edge-Session as the layer signs it; `o` changes one thing to make it wrong. */
function sign(
  claims: JWTPayload = CLAIMS,
  o: { aud?: string; iss?: string; typ?: string; key?: CryptoKey; expiresIn?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "EdDSA", kid: KID, typ: o.typ ?? "edge-session+jwt" })
    .setIssuer(o.iss ?? "edge-session")
    .setAudience(o.aud ?? "edge-session:origin")
    .setIssuedAt(now)
    .setExpirationTime(now + (o.expiresIn ?? 120))
    .sign(o.key ?? signingKey);
}

describe("createEdgeSessionVerifier", () => {
  it("accepts a correctly signed header and returns its claims", async () => {
    const verify = createEdgeSessionVerifier({ jwksUrl });
    const session = await verify(await sign({ ...CLAIMS, sub: "alice", claims: { role: "admin" } }));
    expect(session).toMatchObject({ ...CLAIMS, sub: "alice", claims: { role: "admin" }, aud: "edge-session:origin" });
  });

  it("returns null for a missing, empty or repeated header", async () => {
    const verify = createEdgeSessionVerifier({ jwksUrl });
    const token = await sign();
    for (const value of [undefined, null, "", [token, token]]) expect(await verify(value)).toBeNull();
  });

  it("returns null for garbage, without throwing, and says why", async () => {
    const reasons: unknown[] = [];
    const verify = createEdgeSessionVerifier({ jwksUrl, onError: (e) => reasons.push(e) });
    for (const value of ["garbage", "a.b.c", "..", `${await sign()}x`, "x".repeat(10_000)])
      expect(await verify(value)).toBeNull();
    expect(reasons).toHaveLength(5);
  });

  it("returns null for the wrong audience, issuer or typ, an expired header, or another key under the same kid", async () => {
    const verify = createEdgeSessionVerifier({ jwksUrl });
    expect(await verify(await sign(CLAIMS, { aud: "edge-session:affinity" }))).toBeNull();
    expect(await verify(await sign(CLAIMS, { iss: "someone-else" }))).toBeNull();
    expect(await verify(await sign(CLAIMS, { typ: "edge-affinity+jwt" }))).toBeNull();
    expect(await verify(await sign(CLAIMS, { expiresIn: -60 }))).toBeNull();
    expect(await verify(await sign(CLAIMS, { key: impostorKey }))).toBeNull();
    expect(await verify(await sign({ ...CLAIMS, ver: "3" }))).toBeNull();
  });

  it("returns null when the JWKS cannot be fetched", async () => {
    const verify = createEdgeSessionVerifier({ jwksUrl: "http://127.0.0.1:9/jwks.json" });
    expect(await verify(await sign())).toBeNull();
  });
});

describe("response header helpers", () => {
  it("build the X-Edge-Session-* headers, with non-ASCII escaped so they are valid header values", () => {
    expect(setSession({ cart: ["a"] }, { ifVersion: 4 })).toEqual({
      "X-Edge-Session-Set": '{"cart":["a"]}',
      "X-Edge-Session-Set-If-Version": "4",
    });
    const escaped = setSession({ note: "grüße € 😀" })["X-Edge-Session-Set"] ?? "";
    expect(escaped).toMatch(/^[\x20-\x7e]+$/);
    expect(JSON.parse(escaped)).toEqual({ note: "grüße € 😀" });
    expect(login("alice")).toEqual({ "X-Edge-Session-Login": '{"sub":"alice"}' });
    expect(JSON.parse(login("bob", { role: "admin" })["X-Edge-Session-Login"] ?? "")).toEqual({
      sub: "bob",
      claims: { role: "admin" },
    });
    expect(logout()).toEqual({ "X-Edge-Session-Logout": "1" });
  });
});

describe("origin/demo.ts", () => {
  let demo: DemoOrigin;
  beforeAll(async () => {
    demo = await startDemoOrigin("demo-1", jwksUrl);
  });
  afterAll(() => demo?.stop());

  const post = async (path: string, form: Record<string, string>, header?: string) =>
    fetch(`${demo.url}${path}`, {
      method: "POST",
      body: new URLSearchParams(form),
      redirect: "manual",
      headers: header ? { "x-edge-session": header } : {},
    });

  it("shows the verified session, and refuses requests that did not come through the layer", async () => {
    expect((await fetch(`${demo.url}/api/session`)).status).toBe(401);
    expect((await fetch(`${demo.url}/`)).status).toBe(401);
    expect(
      (await fetch(`${demo.url}/`, { headers: { "x-edge-session": await sign(CLAIMS, { key: impostorKey }) } })).status,
    ).toBe(401);

    const header = await sign({ ...CLAIMS, sub: "alice", data: { cart: ["<apple>"] } });
    const api = await fetch(`${demo.url}/api/session`, { headers: { "x-edge-session": header } });
    expect(api.status).toBe(200);
    expect(await api.json()).toMatchObject({ sid: CLAIMS.sid, sub: "alice" });

    const page = await fetch(`${demo.url}/`, { headers: { "x-edge-session": header } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("demo-1");
    expect(html).toContain(CLAIMS.sid);
    expect(html).toContain("<b>alice</b>");
    expect(html).toContain("&lt;apple&gt;");
  });

  it("answers the forms with X-Edge-Session-* headers and a 303 to /", async () => {
    const header = await sign({ ...CLAIMS, data: { cart: ["apple"] } });

    const cart = await post("/cart", { item: "pear" }, header);
    expect(cart.status).toBe(303);
    expect(cart.headers.get("location")).toBe("/");
    // The full array (merge patch replaces arrays), conditional on the version it was built from.
    expect(JSON.parse(cart.headers.get("x-edge-session-set") ?? "")).toEqual({ cart: ["apple", "pear"] });
    expect(cart.headers.get("x-edge-session-set-if-version")).toBe("3");

    const loggedIn = await post("/login", { user: "alice" }, header);
    expect(loggedIn.status).toBe(303);
    expect(JSON.parse(loggedIn.headers.get("x-edge-session-login") ?? "")).toMatchObject({ sub: "alice" });

    const loggedOut = await post("/logout", {}, header);
    expect(loggedOut.status).toBe(303);
    expect(loggedOut.headers.get("x-edge-session-logout")).toBe("1");

    expect((await post("/login", { user: "alice" })).status).toBe(401);
    expect((await post("/login", { user: " " }, header)).status).toBe(400);
  });
});
