import { describe, expect, it } from "vitest";
import { ApiClient, BrowserClient, edgeEnv } from "./harness.ts";
import { forwardedOf } from "./tokens.ts";

const set = (patch: unknown) => ({ respond: { headers: { "x-edge-session-set": JSON.stringify(patch) } } });

async function state(client: BrowserClient | ApiClient) {
  return forwardedOf((await client.echo()).echo);
}

describe("X-Edge-Session-Set (RFC 7396 merge patch)", () => {
  it("merges objects, replaces arrays, and deletes keys set to null", async () => {
    const client = new BrowserClient();
    await client.send("/", set({ a: 1, nested: { x: 1, y: 2 }, list: [1, 2], gone: true }));
    await client.send("/", set({ nested: { y: null, z: 3 }, list: [3], gone: null, b: "two" }));
    const s = await state(client);
    expect(s.data).toEqual({ a: 1, nested: { x: 1, z: 3 }, list: [3], b: "two" });
    expect(s.ver).toBe(2);
  });

  it("is stripped from the response the client sees", async () => {
    const client = new BrowserClient();
    const res = await client.send("/", {
      respond: {
        headers: {
          "x-edge-session-set": '{"a":1}',
          "x-edge-session-login": '{"sub":"u"}',
          "x-edge-session-other": "x",
        },
      },
    });
    expect([...res.headers.keys()].filter((h) => h.startsWith("x-edge-session"))).toEqual([]);
  });

  it("keeps all 25 of 25 concurrent patches from one session", async () => {
    const client = new BrowserClient();
    await client.send("/", set({ init: true }));
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) => client.send(`/w/${i}`, set({ [`k${i}`]: i }))),
    );
    for (const r of results) expect(r.status).toBe(200);
    const s = await state(client);
    const data = s.data as Record<string, unknown>;
    for (let i = 0; i < 25; i++) expect(data[`k${i}`]).toBe(i);
    expect(s.ver).toBe(26);
  });

  it("applies a compare-and-set write only at the expected version; a stale one is answered 409, never 2xx", async () => {
    const client = new BrowserClient();
    await client.send("/", set({ n: 1 }));
    const stale = await client.send("/", {
      respond: { headers: { "x-edge-session-set": '{"n":2}', "x-edge-session-set-if-version": "0" } },
    });
    // The origin said 200, but its change was not applied: the client must not be told it was.
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ error: { code: "ERR_VERSION_CONFLICT" } });
    expect((await state(client)).data).toEqual({ n: 1 });
    await client.send("/", {
      respond: { headers: { "x-edge-session-set": '{"n":3}', "x-edge-session-set-if-version": "1" } },
    });
    expect(await state(client)).toMatchObject({ data: { n: 3 }, ver: 2 });
  });
});

describe("invalid origin directives leave the session intact and the response served", () => {
  const cases: [string, Record<string, string>][] = [
    ["malformed JSON", { "x-edge-session-set": "{not json" }],
    ["a JSON array instead of an object", { "x-edge-session-set": "[1,2]" }],
    ["a JSON string", { "x-edge-session-set": '"hello"' }],
    ["a patch over the size limit", { "x-edge-session-set": JSON.stringify({ big: "x".repeat(9000) }) }],
    ["a login without sub", { "x-edge-session-login": '{"claims":{}}' }],
    ["a login with an empty sub", { "x-edge-session-login": '{"sub":""}' }],
    ["a login that is not JSON", { "x-edge-session-login": "alice" }],
    [
      "a valid patch next to an invalid login",
      { "x-edge-session-set": '{"secret":"x"}', "x-edge-session-login": "[]" },
    ],
    ["a non-numeric If-Version", { "x-edge-session-set": '{"secret":"x"}', "x-edge-session-set-if-version": "one" }],
  ];

  it.each(cases)("%s", async (_name, headers) => {
    const client = new BrowserClient();
    await client.send("/", {
      respond: { headers: { "x-edge-session-set": '{"keep":"me"}', "x-edge-session-login": '{"sub":"ada"}' } },
    });
    const before = await state(client);
    const res = await client.send("/", { respond: { status: 201, headers, body: "origin body" } });
    expect(res.status).toBe(201);
    expect(await res.text()).toBe("origin body");
    expect([...res.headers.keys()].filter((h) => h.startsWith("x-edge-session"))).toEqual([]);
    const after = await state(client);
    expect(after).toMatchObject({ sid: before.sid, ver: before.ver, data: { keep: "me" }, sub: "ada" });
  });

  it("a session document over MAX_SESSION_BYTES is refused; the session keeps its data", async () => {
    const client = new BrowserClient(edgeEnv({ MAX_SESSION_BYTES: "2048", MAX_PATCH_BYTES: "4096" }));
    await client.send("/", set({ a: "x".repeat(1500) }));
    await client.send("/", set({ b: "y".repeat(1500) }));
    expect(await state(client)).toMatchObject({ ver: 1, data: { a: "x".repeat(1500) } });
  });

  it("an origin cannot overwrite the affinity cookie with Set-Cookie", async () => {
    const client = new BrowserClient();
    await client.send("/");
    const mine = client.cookie;
    const res = await client.send("/", {
      respond: { headers: { "set-cookie": "__Host-edge-session=evil; Path=/; Secure" } },
    });
    expect(res.headers.getSetCookie().some((c) => c.includes("evil"))).toBe(false);
    expect(client.cookie).toBe(mine);
  });
});

describe("X-Edge-Session-Login", () => {
  it("rotates the session id, carries the data over, and the pre-login cookie is not logged in", async () => {
    const client = new BrowserClient();
    await client.send("/", set({ cart: ["tea"] }));
    const anonymous = await state(client);
    const preLoginCookie = client.cookie;
    await client.send("/login", { method: "POST", respond: { headers: { "x-edge-session-login": '{"sub":"ada"}' } } });
    expect(client.cookie).not.toBe(preLoginCookie);
    const loggedIn = await state(client);
    expect(loggedIn.sid).not.toBe(anonymous.sid);
    expect(loggedIn).toMatchObject({ sub: "ada", data: { cart: ["tea"] }, oid: anonymous.oid });

    // Someone holding the pre-login cookie (session fixation) gets a fresh, anonymous session.
    const fixer = new BrowserClient();
    fixer.cookie = preLoginCookie;
    const fixed = await state(fixer);
    expect(fixed.sid).not.toBe(loggedIn.sid);
    expect(fixed.sid).not.toBe(anonymous.sid);
    expect(fixed.sub).toBeUndefined();
    expect(fixed.data).toEqual({});
  });

  it("works for API clients: the new token comes back in X-Edge-Session-Token", async () => {
    const api = new ApiClient();
    await api.echo();
    const before = api.token;
    await api.echo("/login", { respond: { headers: { "x-edge-session-login": '{"sub":"bot"}' } } });
    expect(api.token).not.toBe(before);
    expect((await state(api)).sub).toBe("bot");
  });
});

describe("X-Edge-Session-Logout", () => {
  it("destroys the session server-side: the cookie is cleared and a replayed copy is not logged in", async () => {
    const client = new BrowserClient();
    await client.send("/", {
      respond: { headers: { "x-edge-session-login": '{"sub":"ada"}', "x-edge-session-set": '{"secret":1}' } },
    });
    const loggedIn = await state(client);
    const stolen = client.cookie;
    const res = await client.send("/logout", {
      method: "POST",
      respond: { headers: { "x-edge-session-logout": "1" } },
    });
    expect(res.headers.getSetCookie().find((c) => c.startsWith("__Host-edge-session="))).toMatch(/Max-Age=0/);
    expect(client.cookie).toBeUndefined();

    const replay = new BrowserClient();
    replay.cookie = stolen;
    const after = await state(replay);
    expect(after.sid).not.toBe(loggedIn.sid);
    expect(after.sub).toBeUndefined();
    expect(after.data).toEqual({});
  });

  it("wins over a Set in the same response", async () => {
    const client = new BrowserClient();
    await client.send("/", { respond: { headers: { "x-edge-session-login": '{"sub":"ada"}' } } });
    const stolen = client.cookie;
    await client.send("/", { respond: { headers: { "x-edge-session-logout": "", "x-edge-session-set": '{"a":1}' } } });
    const replay = new BrowserClient();
    replay.cookie = stolen;
    expect((await state(replay)).sub).toBeUndefined();
  });

  it("tells an API client to drop its token with an empty X-Edge-Session-Token", async () => {
    const api = new ApiClient();
    await api.echo("/", { respond: { headers: { "x-edge-session-login": '{"sub":"bot"}' } } });
    const old = api.token;
    const { res } = await api.echo("/", { respond: { headers: { "x-edge-session-logout": "1" } } });
    expect(res.headers.get("x-edge-session-token")).toBe("");
    api.token = old;
    expect((await state(api)).sub).toBeUndefined();
  });
});
