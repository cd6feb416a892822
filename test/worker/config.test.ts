import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMIN_TOKEN, BASE, BrowserClient, callWorker, edgeEnv } from "./harness.ts";

afterEach(() => vi.restoreAllMocks());

const PUBLIC_CONFIG_MESSAGE = "the layer is misconfigured; the operator's log has the details (event config_invalid)";

async function errorFor(overrides: Record<string, string | undefined>, path = "/") {
  const res = await callWorker(
    new Request(`${BASE}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
    edgeEnv(overrides),
  );
  return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
}

describe("configuration is validated, and a bad value is named", () => {
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ["ORIGINS that is not JSON", { ORIGINS: "[{oops" }, /^invalid configuration: ORIGINS: is not valid JSON/],
    ["ORIGINS missing", { ORIGINS: undefined }, /ORIGINS: is required/],
    ["an empty ORIGINS", { ORIGINS: "[]" }, /ORIGINS: must list at least one origin/],
    [
      "an origin URL that is not http(s)",
      { ORIGINS: '[{"id":"a","url":"http://127.0.0.1:1"},{"id":"b","url":"ftp://x"}]' },
      /ORIGINS\[1\]\.url: must be an absolute http\(s\) URL/,
    ],
    ["an origin URL with a query", { ORIGINS: '[{"id":"a","url":"http://x/?q=1"}]' }, /ORIGINS\[0\]\.url/],
    [
      "duplicate origin ids",
      { ORIGINS: '[{"id":"a","url":"http://x"},{"id":"a","url":"http://y"}]' },
      /ORIGINS\[1\]\.id: duplicate origin id "a"/,
    ],
    ["an unknown origin field", { ORIGINS: '[{"id":"a","url":"http://x","wieght":2}]' }, /ORIGINS\[0\]/],
    ["a bad region", { ORIGINS: '[{"id":"a","url":"http://x","region":"mars"}]' }, /ORIGINS\[0\]\.region/],
    ["a negative weight", { ORIGINS: '[{"id":"a","url":"http://x","weight":-1}]' }, /ORIGINS\[0\]\.weight/],
    ["keys that are not JSON", { SESSION_SIGNING_KEYS: "nope" }, /SESSION_SIGNING_KEYS: is not valid JSON/],
    [
      "an RSA key (not on the allow-list)",
      { SESSION_SIGNING_KEYS: '{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB","d":"AQAB"}]}' },
      /SESSION_SIGNING_KEYS\.keys\[0\]/,
    ],
    [
      "a public key without its private part",
      {
        SESSION_SIGNING_KEYS:
          '{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"x","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}',
      },
      /SESSION_SIGNING_KEYS\.keys\[0\]\.d/,
    ],
    [
      "an HS256 key under 256 bits",
      { SESSION_SIGNING_KEYS: '{"keys":[{"kty":"oct","kid":"h","k":"c2hvcnQ"}]}' },
      /SESSION_SIGNING_KEYS\.keys\[0\]\.k: must be at least 256 bits/,
    ],
    [
      "a key without kid",
      { SESSION_SIGNING_KEYS: '{"keys":[{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}' },
      /SESSION_SIGNING_KEYS\.keys\[0\]\.kid/,
    ],
    ["an idle timeout that is not a number", { SESSION_IDLE_TIMEOUT: "soon" }, /SESSION_IDLE_TIMEOUT/],
    [
      "an absolute timeout shorter than idle",
      { SESSION_IDLE_TIMEOUT: "600", SESSION_ABSOLUTE_TIMEOUT: "60" },
      /SESSION_ABSOLUTE_TIMEOUT: must not be shorter/,
    ],
    ["a read cache period over a minute", { READ_CACHE_SECONDS: "61" }, /READ_CACHE_SECONDS/],
    ["a negative read cache period", { READ_CACHE_SECONDS: "-1" }, /READ_CACHE_SECONDS/],
    [
      "a read cache period longer than half the idle timeout",
      { SESSION_IDLE_TIMEOUT: "20", READ_CACHE_SECONDS: "11" },
      /READ_CACHE_SECONDS: must be at most half of SESSION_IDLE_TIMEOUT/,
    ],
    ["a cookie name with a space", { COOKIE_NAME: "bad name" }, /COOKIE_NAME/],
    ["an unknown ENVIRONMENT", { ENVIRONMENT: "prod" }, /ENVIRONMENT/],
    ["a MAX_SESSION_DEPTH past what every codec carries", { MAX_SESSION_DEPTH: "5000" }, /MAX_SESSION_DEPTH/],
    ["STRICT_TOKENS that is not a boolean", { STRICT_TOKENS: "yes" }, /STRICT_TOKENS/],
    ["no signing key outside development", { SESSION_SIGNING_KEYS: undefined }, /SESSION_SIGNING_KEYS: is not set/],
  ];

  it.each(cases)(
    "%s: every request gets a bare 500 ERR_CONFIG, and the log names the field",
    async (_name, overrides, pattern) => {
      const logged = vi.spyOn(console, "error").mockImplementation(() => {});
      for (const path of ["/", "/.well-known/edge-session/jwks.json", "/__edge/status"]) {
        const { status, body } = await errorFor(overrides, path);
        expect(status).toBe(500);
        expect(body.error).toEqual({ code: "ERR_CONFIG", message: PUBLIC_CONFIG_MESSAGE });
      }
      const lines = logged.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
      const line = lines.find((l) => l.event === "config_invalid");
      expect(line?.message).toMatch(pattern);
    },
  );

  it("names every problem at once in the log, and none of them to the client", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const { status, body } = await errorFor({
      ORIGINS: '[{"id":"a","url":"ftp://x"},{"id":"b","url":"http://y","weight":-1}]',
      SESSION_IDLE_TIMEOUT: "soon",
      COOKIE_NAME: "bad name",
      SESSION_SIGNING_KEYS: '{"keys":[{"kty":"oct","kid":"h","k":"c2hvcnQ"}]}',
      SNAPSHOT_KEY: "too-short",
    });
    expect(status).toBe(500);
    expect(body.error).toEqual({ code: "ERR_CONFIG", message: PUBLIC_CONFIG_MESSAGE });
    const line = logged.mock.calls
      .map((c) => JSON.parse(String(c[0])) as { event: string; problems?: { field: string }[] })
      .find((l) => l.event === "config_invalid");
    expect(line?.problems?.map((p) => p.field).sort()).toEqual([
      "COOKIE_NAME",
      "ORIGINS[0].url",
      "ORIGINS[1].weight",
      "SESSION_IDLE_TIMEOUT",
      "SESSION_SIGNING_KEYS.keys[0].k",
      "SNAPSHOT_KEY",
    ]);
  });

  it("in development with no signing key, serves with a generated key and warns loudly", async () => {
    const warned = vi.spyOn(console, "warn").mockImplementation(() => {});
    const client = new BrowserClient(edgeEnv({ ENVIRONMENT: "development", SESSION_SIGNING_KEYS: undefined }));
    const first = await client.echo();
    expect((await client.echo()).echo.origin).toBe(first.echo.origin);
    const jwks = await callWorker(new Request(`${BASE}/.well-known/edge-session/jwks.json`), client.env);
    const keys = ((await jwks.json()) as { keys: { kid: string }[] }).keys;
    expect(keys).toHaveLength(1);
    expect(keys[0]?.kid).toMatch(/^dev-/);
    const warning = warned.mock.calls.map((c) => String(c[0])).find((l) => l.includes("config_dev_signing_key"));
    expect(warning).toMatch(/Never run like this in production/);
  });
});

describe("/__edge/status", () => {
  it("answers 401 without the admin token, or with a wrong one", async () => {
    for (const auth of [
      undefined,
      "Bearer wrong-token-wrong-token-wrong",
      `Basic ${btoa("a:b")}`,
      `Bearer ${ADMIN_TOKEN}x`,
    ]) {
      const headers: Record<string, string> = auth ? { authorization: auth } : {};
      const res = await callWorker(new Request(`${BASE}/__edge/status`, { headers }));
      expect([400, 401]).toContain(res.status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_ADMIN_UNAUTHORIZED");
    }
  });

  it("shows origins, key ids and the version to the operator", async () => {
    const res = await callWorker(
      new Request(`${BASE}/__edge/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      version: expect.stringMatching(/^\d+\.\d+\.\d+$/),
      origins: [{ id: "alpha" }, { id: "bravo" }, { id: "charlie" }],
      keys: {
        signing: "ed-1",
        kids: [
          { kid: "ed-1", alg: "EdDSA" },
          { kid: "es-1", alg: "ES256" },
          { kid: "hs-1", alg: "HS256", published: false },
        ],
      },
    });
    expect(JSON.stringify(body)).not.toMatch(/"d":|"k":/);
  });

  it("is disabled (503) when no ADMIN_TOKEN is configured", async () => {
    const res = await callWorker(
      new Request(`${BASE}/__edge/status`, { headers: { authorization: "Bearer anything-anything-anything" } }),
      edgeEnv({ ADMIN_TOKEN: undefined }),
    );
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_ADMIN_DISABLED");
  });
});

describe("a bad ADMIN_TOKEN disables the operator API, never the layer", () => {
  const bad: [string, string, RegExp][] = [
    ["too short", "short-token", /must be at least 24 characters/],
    ["a character outside A-Za-z0-9._~+/-", "admin-token-with-a-space inside", /may only hold the characters/],
    ["base64 padding", "YWRtaW4tdG9rZW4tMDEyMzQ1Njc4OQ==", /may only hold the characters/],
  ];

  it.each(bad)("%s: proxied traffic stays 200, /__edge/ answers 503 and the log says why", async (_n, token, why) => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const env = edgeEnv({ ADMIN_TOKEN: token });
    const client = new BrowserClient(env);
    const first = await client.echo();
    expect(first.res.status).toBe(200);
    expect((await client.echo()).echo.origin).toBe(first.echo.origin);
    const jwks = await callWorker(new Request(`${BASE}/.well-known/edge-session/jwks.json`), env);
    expect(jwks.status).toBe(200);
    for (const auth of [`Bearer ${token}`, `Bearer ${ADMIN_TOKEN}`]) {
      const res = await callWorker(new Request(`${BASE}/__edge/status`, { headers: { authorization: auth } }), env);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("ERR_ADMIN_DISABLED");
      expect(body.error.message).toMatch(/ADMIN_TOKEN is set but invalid/);
      expect(body.error.message).not.toContain(token);
    }
    const page = await callWorker(new Request(`${BASE}/__edge/`), env);
    expect(page.status).toBe(503);
    expect(await page.text()).toMatch(/ADMIN_TOKEN is set but invalid/);
    const line = logged.mock.calls
      .map((c) => JSON.parse(String(c[0])) as { event: string; message?: string })
      .find((l) => l.event === "config_admin_invalid");
    expect(line?.message).toMatch(why);
    expect(line?.message).not.toContain(token);
  });
});
