import { beforeAll, describe, expect, it } from "vitest";
import { BASE, BrowserClient, callWorker, edgeEnv } from "./harness.ts";
import {
  AFFINITY_TYP,
  affinityClaims,
  attackerKey,
  b64url,
  forwardedOf,
  hmac,
  realSigningJwk,
  signRaw,
  signWith,
} from "./tokens.ts";

/**
 * A victim logs in and stores a secret. Every forged or broken token below is
 * built around the victim's session id; none may reach the victim's session,
 * none may produce a 5xx. Without strict mode each is served as a new session;
 * in strict mode each is refused with 401 and a reason code.
 */
let victimSid = "";
let victimToken = "";

beforeAll(async () => {
  const victim = new BrowserClient();
  await victim.send("/", {
    respond: {
      headers: { "x-edge-session-set": '{"secret":"victim-only"}', "x-edge-session-login": '{"sub":"victim"}' },
    },
  });
  const { echo } = await victim.echo();
  victimSid = String(forwardedOf(echo).sid);
  victimToken = victim.cookie ?? "";
  expect(forwardedOf(echo).sub).toBe("victim");
});

function segments(token: string): [string, string, string] {
  const [h = "", p = "", s = ""] = token.split(".");
  return [h, p, s];
}

const json = (o: unknown) => b64url(JSON.stringify(o));
const now = () => Math.floor(Date.now() / 1000);

const forgeries: [string, () => Promise<string>, string][] = [
  [
    "alg none",
    async () => `${json({ alg: "none", typ: AFFINITY_TYP })}.${json(affinityClaims(victimSid, { exp: now() + 600 }))}.`,
    "ERR_TOKEN_ALG",
  ],
  [
    "alg None",
    async () =>
      `${json({ alg: "None", typ: AFFINITY_TYP, kid: "ed-1" })}.${json(affinityClaims(victimSid, { exp: now() + 600 }))}.`,
    "ERR_TOKEN_ALG",
  ],
  [
    "tampered payload (victim's sid pasted into a valid token)",
    async () => {
      const mine = await signWith({ claims: affinityClaims("A".repeat(24)) });
      const [h, , s] = segments(mine);
      return `${h}.${json(affinityClaims(victimSid, { iat: now(), exp: now() + 600 }))}.${s}`;
    },
    "ERR_TOKEN_SIGNATURE",
  ],
  [
    "stripped signature",
    async () => {
      const [h, p] = segments(victimToken);
      return `${h}.${p}.`;
    },
    "ERR_TOKEN_SIGNATURE",
  ],
  [
    "HS256 signed with the Ed25519 public key (algorithm confusion)",
    async () => {
      const pub = realSigningJwk();
      const head = json({ alg: "HS256", kid: "ed-1", typ: AFFINITY_TYP });
      const body = json(affinityClaims(victimSid, { iat: now(), exp: now() + 600 }));
      const publicOnly = JSON.stringify({ kty: pub.kty, crv: pub.crv, x: pub.x });
      return `${head}.${body}.${await hmac(new TextEncoder().encode(publicOnly), `${head}.${body}`)}`;
    },
    "ERR_TOKEN_ALG",
  ],
  [
    "another key under the same kid",
    async () => {
      const impostor = (
        JSON.parse((await import("vitest")).inject("keys").impostor) as { keys: [Record<string, string>] }
      ).keys[0];
      return signWith({ key: impostor, claims: affinityClaims(victimSid) });
    },
    "ERR_TOKEN_SIGNATURE",
  ],
  [
    "embedded jwk (attacker's own key)",
    async () => {
      const { priv, pub } = await attackerKey();
      return signWith({ key: { ...priv, kid: "ed-1" }, header: { jwk: pub }, claims: affinityClaims(victimSid) });
    },
    "ERR_TOKEN_SIGNATURE",
  ],
  [
    "jku pointing at an attacker's key set",
    async () => {
      const { priv } = await attackerKey();
      return signWith({
        key: { ...priv, kid: "evil" },
        header: { jku: "https://evil.example/jwks.json" },
        claims: affinityClaims(victimSid),
      });
    },
    "ERR_TOKEN_KID",
  ],
  [
    "expired",
    () => signWith({ iat: now() - 7200, exp: now() - 3600, claims: affinityClaims(victimSid) }),
    "ERR_TOKEN_EXPIRED",
  ],
  [
    "nbf in the future",
    () => signWith({ claims: affinityClaims(victimSid, { nbf: now() + 3600 }) }),
    "ERR_TOKEN_CLAIMS",
  ],
  ["wrong aud", () => signWith({ claims: affinityClaims(victimSid, { aud: "someone-else" }) }), "ERR_TOKEN_CLAIMS"],
  ["wrong iss", () => signWith({ claims: affinityClaims(victimSid, { iss: "evil" }) }), "ERR_TOKEN_CLAIMS"],
  ["wrong typ", () => signWith({ header: { typ: "JWT" }, claims: affinityClaims(victimSid) }), "ERR_TOKEN_CLAIMS"],
  [
    "unknown crit",
    () =>
      signRaw(
        { alg: "EdDSA", kid: "ed-1", typ: AFFINITY_TYP, crit: ["x-evil"], "x-evil": true },
        affinityClaims(victimSid, { iat: now(), exp: now() + 600 }),
      ),
    "ERR_TOKEN_UNSUPPORTED",
  ],
  [
    "unknown kid",
    () => signWith({ key: { ...realSigningJwk(), kid: "nope" }, claims: affinityClaims(victimSid) }),
    "ERR_TOKEN_KID",
  ],
  [
    "path-like kid",
    () => signWith({ key: { ...realSigningJwk(), kid: "../../../etc/passwd" }, claims: affinityClaims(victimSid) }),
    "ERR_TOKEN_KID",
  ],
  ["garbage", async () => "this is not a token", "ERR_TOKEN_MALFORMED"],
  ["four segments", async () => `${victimToken}.AAAA`, "ERR_TOKEN_MALFORMED"],
  ["bad base64", async () => "eyJ!!!.eyJ***.%%%", "ERR_TOKEN_MALFORMED"],
  ["a 16 KB cookie", async () => "a".repeat(16 * 1024), "ERR_TOKEN_TOO_LARGE"],
];

describe("forged and broken affinity tokens", () => {
  it.each(forgeries)("%s: served as a new session, never the victim's", async (_name, forge) => {
    const attacker = new BrowserClient();
    attacker.cookie = await forge();
    const res = await attacker.send("/echo");
    expect(res.status).toBe(200);
    const fwd = forwardedOf(await res.json());
    expect(fwd.sid).not.toBe(victimSid);
    expect(fwd.sub).toBeUndefined();
    expect(JSON.stringify(fwd.data)).not.toContain("victim-only");
    // The client is given a fresh token in place of the bad one.
    expect(attacker.cookie).toBeDefined();
  });

  it.each(forgeries)("%s: refused with 401 and a reason code in strict mode", async (_name, forge, code) => {
    const attacker = new BrowserClient(edgeEnv({ STRICT_TOKENS: "true" }));
    attacker.cookie = await forge();
    const res = await attacker.send("/echo");
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code } });
  });

  it("the forwarded header replayed as an affinity token is refused (distinct typ and aud)", async () => {
    const client = new BrowserClient();
    await client.send("/");
    const { echo } = await client.echo();
    const forwarded = String(echo.headers["x-edge-session"]);
    const replay = new BrowserClient(edgeEnv({ STRICT_TOKENS: "true" }));
    replay.cookie = forwarded;
    const res = await replay.send("/echo");
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/^ERR_TOKEN_/);
  });

  it("a valid token with correct claims is still accepted (the forging helper is honest)", async () => {
    const client = new BrowserClient();
    await client.send("/", { respond: { headers: { "x-edge-session-set": '{"n":1}' } } });
    const { echo } = await client.echo();
    const sid = String(forwardedOf(echo).sid);
    const reforged = new BrowserClient();
    reforged.cookie = await signWith({ claims: affinityClaims(sid, { oid: forwardedOf(echo).oid }) });
    const fwd = forwardedOf((await reforged.echo()).echo);
    expect(fwd.sid).toBe(sid);
    expect(fwd.data).toEqual({ n: 1 });
  });

  it("a bad X-Edge-Session-Token from an API client is never a 5xx", async () => {
    for (const bad of ["garbage", "a.b.c", "a".repeat(20000)]) {
      const res = await callWorker(new Request(`${BASE}/echo`, { headers: { "x-edge-session-token": bad } }));
      expect(res.status).toBe(200);
      expect(res.headers.get("x-edge-session-token")).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    }
  });
});
