/**
 * Key rotation end to end (runbook in docs/keys.md), through the real
 * Worker, with real Durable Objects and origins. SESSION_SIGNING_KEYS is a
 * private JWK Set: the first key signs, every key verifies, public members are
 * published at /.well-known/edge-session/jwks.json.
 *
 *   phase 0  [old]        old signs
 *   phase 1  [old, new]   new is published, old still signs
 *   phase 2  [new, old]   new signs; old is retired but still verifies
 *   phase 3  [new]        old is gone: its tokens start fresh sessions (401 in strict mode)
 *
 * Each phase is a new env, as a `wrangler secret put` followed by new isolates
 * would be; the session objects (and so the sessions) carry over.
 */
import { createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK, jwtVerify } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { ApiClient, BASE, BrowserClient, callWorker, type Echo, edgeEnv, header } from "./harness.ts";
import { forwardedOf } from "./tokens.ts";

const JWKS_PATH = "/.well-known/edge-session/jwks.json";
/** What docs/keys.md tells operators to wait for between publishing and promoting a key. */
const JWKS_MAX_AGE = 300;

type Jwks = { keys: JWK[] };

async function privateKey(alg: "EdDSA" | "ES256", kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
  });
  return { ...(await exportJWK(privateKey)), kid };
}

function phaseEnv(keys: JWK[], strict = false): Env {
  // Strict reads: with the read cache on, every write re-issues the token (naming the new version), signed by
  // the key of the day; these phases follow tokens that are only re-issued when they must be.
  return edgeEnv({
    SESSION_SIGNING_KEYS: JSON.stringify({ keys }),
    READ_CACHE_SECONDS: "0",
    ...(strict ? { STRICT_TOKENS: "true" } : {}),
  });
}

async function fetchJwks(env: Env): Promise<{ jwks: Jwks; cacheControl: string }> {
  const res = await callWorker(new Request(`${BASE}${JWKS_PATH}`), env);
  expect(res.status).toBe(200);
  return { jwks: (await res.json()) as Jwks, cacheControl: res.headers.get("cache-control") ?? "" };
}

const kidOf = (jws: string | undefined) => decodeProtectedHeader(jws ?? "").kid;
const forwardedHeader = (echo: Echo) => header(echo, "x-edge-session") ?? "";

/** An origin that cached the JWKS at some moment and verifies with that copy only. */
function originVerifying(jwks: Jwks) {
  const keySet = createLocalJWKSet(jwks);
  return (jws: string) =>
    jwtVerify(jws, keySet, {
      issuer: "edge-session",
      audience: "edge-session:origin",
      typ: "edge-session+jwt",
      algorithms: ["EdDSA", "ES256"],
    });
}

/** The same browser (same cookie jar) talking to the Worker after a deploy. */
function browserIn(env: Env, cookie: string | undefined): BrowserClient {
  const c = new BrowserClient(env);
  c.cookie = cookie;
  return c;
}

function apiIn(env: Env, token: string | undefined): ApiClient {
  const c = new ApiClient(env);
  c.token = token;
  return c;
}

describe.each([
  { from: "EdDSA", to: "EdDSA", removed: "ERR_TOKEN_KID" },
  // Changing algorithm too: once the old key is gone, EdDSA leaves the allow-list before its kid is looked up.
  { from: "EdDSA", to: "ES256", removed: "ERR_TOKEN_ALG" },
] as const)("key rotation $from → $to through the real Worker", ({ from, to, removed }) => {
  const stamp = crypto.randomUUID().slice(0, 8);
  const oldKid = `old-${stamp}`;
  const newKid = `new-${stamp}`;
  let OLD: JWK;
  let NEW: JWK;
  const env: Env[] = [];
  const jwksAt: Jwks[] = [];

  /** A logged-in browser with a cart, and an API client, both from phase 0. */
  const alice = { cookie: undefined as string | undefined, sid: "" };
  const api = { token: undefined as string | undefined, sid: "" };
  /** A browser that first came in phase 2, with a token signed by the new key. */
  const dora = { cookie: undefined as string | undefined, sid: "" };

  beforeAll(async () => {
    OLD = await privateKey(from, oldKid);
    NEW = await privateKey(to, newKid);
    env.push(phaseEnv([OLD]), phaseEnv([OLD, NEW]), phaseEnv([NEW, OLD]), phaseEnv([NEW]));
  });

  it("phase 0 [old]: tokens and forwarded headers are signed by the only key, published with a max-age", async () => {
    const { jwks, cacheControl } = await fetchJwks(env[0] as Env);
    jwksAt[0] = jwks;
    expect(jwks.keys.map((k) => k.kid)).toEqual([oldKid]);
    expect(cacheControl).toBe(`public, max-age=${JWKS_MAX_AGE}`);

    const a = browserIn(env[0] as Env, undefined);
    await a.send("/", {
      respond: {
        headers: { "x-edge-session-set": '{"cart":["tea"]}', "x-edge-session-login": '{"sub":"alice"}' },
      },
    });
    const { echo } = await a.echo();
    const fwd = forwardedOf(echo);
    expect(fwd).toMatchObject({ sub: "alice", data: { cart: ["tea"] } });
    expect(kidOf(a.cookie)).toBe(oldKid);
    expect(kidOf(forwardedHeader(echo))).toBe(oldKid);
    await originVerifying(jwks)(forwardedHeader(echo));
    Object.assign(alice, { cookie: a.cookie, sid: String(fwd.sid) });

    const b = apiIn(env[0] as Env, undefined);
    await b.echo("/", { respond: { headers: { "x-edge-session-set": '{"api":1}' } } });
    const again = await b.echo();
    expect(kidOf(b.token)).toBe(oldKid);
    Object.assign(api, { token: b.token, sid: String(forwardedOf(again.echo).sid) });
  });

  it("phase 1 [old, new]: the new key is published before it signs anything", async () => {
    const { jwks, cacheControl } = await fetchJwks(env[1] as Env);
    jwksAt[1] = jwks;
    expect(jwks.keys.map((k) => k.kid)).toEqual([oldKid, newKid]);
    expect(cacheControl).toMatch(/max-age=\d+/);
    for (const k of jwks.keys) expect(k).not.toHaveProperty("d");

    const a = browserIn(env[1] as Env, alice.cookie);
    const { echo } = await a.echo();
    expect(forwardedOf(echo)).toMatchObject({ sid: alice.sid, sub: "alice", data: { cart: ["tea"] } });
    expect(kidOf(forwardedHeader(echo))).toBe(oldKid);
    expect(a.cookie).toBe(alice.cookie);

    // A session that starts now still gets an old-key token: nothing is signed by a key origins may not have yet.
    const c = browserIn(env[1] as Env, undefined);
    const first = await c.echo();
    expect(kidOf(c.cookie)).toBe(oldKid);
    // An origin still holding the phase-0 JWKS verifies everything signed in phase 1.
    await originVerifying(jwksAt[0] as Jwks)(forwardedHeader(first.echo));
  });

  it("phase 2 [new, old]: the new key signs; old-key tokens keep their session, data and login", async () => {
    const { jwks } = await fetchJwks(env[2] as Env);
    expect(jwks.keys.map((k) => k.kid)).toEqual([newKid, oldKid]);

    const d = browserIn(env[2] as Env, undefined);
    const first = await d.echo("/", { respond: { headers: { "x-edge-session-set": '{"dora":true}' } } });
    expect(kidOf(d.cookie)).toBe(newKid);
    expect(kidOf(forwardedHeader(first.echo))).toBe(newKid);
    Object.assign(dora, { cookie: d.cookie, sid: String(forwardedOf(first.echo).sid) });

    const a = browserIn(env[2] as Env, alice.cookie);
    await a.send("/", { respond: { headers: { "x-edge-session-set": '{"cart":["tea","jam"]}' } } });
    const { echo } = await a.echo();
    expect(forwardedOf(echo)).toMatchObject({ sid: alice.sid, sub: "alice", data: { cart: ["tea", "jam"] }, ver: 2 });
    expect(kidOf(a.cookie)).toBe(oldKid);
    expect(kidOf(forwardedHeader(echo))).toBe(newKid);

    const b = apiIn(env[2] as Env, api.token);
    const fromApi = await b.echo();
    expect(fromApi.res.status).toBe(200);
    expect(forwardedOf(fromApi.echo)).toMatchObject({ sid: api.sid, data: { api: 1 } });
  });

  it("phase 2: an origin that fetched the JWKS in phase 1 verifies headers signed by the new key; one from phase 0 could not", async () => {
    const a = browserIn(env[2] as Env, alice.cookie);
    const signedByNew = forwardedHeader((await a.echo()).echo);
    expect(kidOf(signedByNew)).toBe(newKid);
    const { payload } = await originVerifying(jwksAt[1] as Jwks)(signedByNew);
    expect(payload).toMatchObject({ sid: alice.sid, sub: "alice" });
    // This is why publishing must come one JWKS max-age (plus the origin's own caching) before promoting.
    await expect(originVerifying(jwksAt[0] as Jwks)(signedByNew)).rejects.toMatchObject({
      code: "ERR_JWKS_NO_MATCHING_KEY",
    });
  });

  it("phase 3 [new]: old-key tokens start fresh sessions, never a 5xx; new-key tokens carry on", async () => {
    const { jwks } = await fetchJwks(env[3] as Env);
    expect(jwks.keys.map((k) => k.kid)).toEqual([newKid]);

    const a = browserIn(env[3] as Env, alice.cookie);
    const res = await a.send("/echo");
    expect(res.status).toBe(200);
    const fresh = forwardedOf((await res.json()) as Echo);
    expect(fresh.sid).not.toBe(alice.sid);
    expect(fresh.sub).toBeUndefined();
    expect(fresh.data).toEqual({});
    expect(kidOf(a.cookie)).toBe(newKid);

    const b = apiIn(env[3] as Env, api.token);
    const fromApi = await b.echo();
    expect(fromApi.res.status).toBe(200);
    expect(forwardedOf(fromApi.echo).sid).not.toBe(api.sid);
    expect(kidOf(b.token)).toBe(newKid);

    const d = browserIn(env[3] as Env, dora.cookie);
    expect(forwardedOf((await d.echo()).echo)).toMatchObject({ sid: dora.sid, data: { dora: true } });
  });

  it(`phase 3, strict mode: an old-key token is refused with 401 ${removed}`, async () => {
    const strict = phaseEnv([NEW], true);
    const a = browserIn(strict, alice.cookie);
    const res = await a.send("/echo");
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: removed } });

    const b = await callWorker(
      new Request(`${BASE}/echo`, { headers: { "x-edge-session-token": api.token ?? "" } }),
      strict,
    );
    expect(b.status).toBe(401);
    expect(await b.json()).toMatchObject({ error: { code: removed } });

    const d = browserIn(strict, dora.cookie);
    expect((await d.send("/echo")).status).toBe(200);
  });
});
