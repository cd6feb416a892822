import { describe, expect, it } from "vitest";
import { rateLimitKey } from "../../src/abuse/index.ts";
import { BrowserClient, edgeEnv } from "./harness.ts";
import { forwardedOf } from "./tokens.ts";

describe("abuse limits", () => {
  it("bounds new sessions per client address with 429 and a reason code; a client that keeps its cookie is never limited", async () => {
    const ip = `198.51.100.${Math.floor(Math.random() * 250)}`;
    const keeper = new BrowserClient();
    await keeper.send("/", { headers: { "cf-connecting-ip": ip } });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++)
      statuses.push((await new BrowserClient().send("/", { headers: { "cf-connecting-ip": ip } })).status);
    // The test configuration allows 5 new sessions a minute per address (wrangler.toml: 300).
    expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
    expect(statuses.at(-1)).toBe(429);
    const limited = await new BrowserClient().send("/", { headers: { "cf-connecting-ip": ip } });
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe("ERR_SESSION_RATE_LIMITED");
    for (let i = 0; i < 10; i++)
      expect((await keeper.send("/", { headers: { "cf-connecting-ip": ip } })).status).toBe(200);
    // Another address is not affected.
    expect((await new BrowserClient().send("/", { headers: { "cf-connecting-ip": "192.0.2.77" } })).status).toBe(200);
  });

  it("refuses a document with more keys than MAX_SESSION_KEYS; the session keeps its data", async () => {
    const client = new BrowserClient(edgeEnv({ MAX_SESSION_KEYS: "10" }));
    await client.send("/", { respond: { headers: { "x-edge-session-set": JSON.stringify({ a: { b: 1, c: 2 } }) } } });
    const many = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i]));
    await client.send("/", { respond: { headers: { "x-edge-session-set": JSON.stringify(many) } } });
    expect(forwardedOf((await client.echo()).echo)).toMatchObject({ data: { a: { b: 1, c: 2 } }, ver: 1 });
  });
});

describe("client binding (CLIENT_BINDING)", () => {
  const chrome = "Mozilla/5.0 (X11; Linux x86_64) Chrome/141.0.0.0 Safari/537.36";

  it("is off by default: a token works from any client", async () => {
    const client = new BrowserClient();
    const { echo } = await client.echo("/", { headers: { "user-agent": chrome } });
    const thief = new BrowserClient();
    thief.cookie = client.cookie;
    expect(forwardedOf((await thief.echo("/", { headers: { "user-agent": "curl/8.5.0" } })).echo).sid).toBe(
      forwardedOf(echo).sid,
    );
  });

  it("with ua+ip, a token stolen to another client starts a new session; browser updates and same-network addresses keep it", async () => {
    const e = edgeEnv({ CLIENT_BINDING: "ua+ip" });
    const client = new BrowserClient(e);
    const headers = { "user-agent": chrome, "cf-connecting-ip": "203.0.113.10" };
    await client.send("/", { headers, respond: { headers: { "x-edge-session-login": '{"sub":"ada"}' } } });
    const sid = forwardedOf((await client.echo("/", { headers })).echo).sid;
    const updated = { "user-agent": chrome.replace("141.0.0.0", "142.0.1.2"), "cf-connecting-ip": "203.0.77.1" };
    expect(forwardedOf((await client.echo("/", { headers: updated })).echo)).toMatchObject({ sid, sub: "ada" });

    const thief = new BrowserClient(e);
    thief.cookie = client.cookie;
    const stolen = forwardedOf(
      (await thief.echo("/", { headers: { "user-agent": "curl/8.5.0", "cf-connecting-ip": "192.0.2.1" } })).echo,
    );
    expect(stolen.sid).not.toBe(sid);
    expect(stolen.sub).toBeUndefined();
    const strict = new BrowserClient(edgeEnv({ CLIENT_BINDING: "ua+ip", STRICT_TOKENS: "true" }));
    strict.cookie = client.cookie;
    const refused = await strict.send("/", {
      headers: { "user-agent": "curl/8.5.0", "cf-connecting-ip": "192.0.2.1" },
    });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("ERR_TOKEN_BINDING");
  });
});

describe("the new-session limit and IPv6", () => {
  it("counts every address of one /64 against one limit, and another /64 apart", async () => {
    const net = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:42`;
    const statuses: number[] = [];
    // Privacy addresses: a new one for every request, all in one /64 (the test limit is 5 a minute).
    for (let i = 1; i <= 12; i++) {
      const ip = `${net}:${i.toString(16)}:${(i * 7919).toString(16)}::${i}`;
      statuses.push((await new BrowserClient().send("/", { headers: { "cf-connecting-ip": ip } })).status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    const neighbour = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:43::1`;
    expect((await new BrowserClient().send("/", { headers: { "cf-connecting-ip": neighbour } })).status).toBe(200);
  });

  it("keys by /64 however the address is written", () => {
    const key = "2001:db8:0:42::/64";
    for (const ip of [
      "2001:db8::42:1:2:3:4",
      "2001:0db8:0000:0042:ffff:ffff:ffff:ffff",
      "2001:DB8:0:42::1",
      "2001:db8:0:42::1.2.3.4",
      "2001:db8:0:42::1%eth0",
    ])
      expect(rateLimitKey(ip), ip).toBe(key);
    expect(rateLimitKey("2001:db8:0:43::1")).not.toBe(key);
    expect(rateLimitKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(rateLimitKey("192.0.2.7")).toBe("192.0.2.7");
    expect(rateLimitKey("::1")).toBe("0:0:0:0::/64");
  });
});
