/**
 * Learned affinity: ids that origins issue (a header such as Mcp-Session-Id, a
 * cookie such as JSESSIONID) reach the origin that issued them, sealed on the
 * way to the client and restored on the way back, with real origins.
 */
import { describe, expect, it, vi } from "vitest";
import { sealKeyFrom, sealLearnedId, unsealLearnedId } from "../../src/affinity/index.ts";
import { BASE, BrowserClient, callWorker, type Echo, edgeEnv, header, receivedBy, respondWith } from "./harness.ts";
import { admin, poolEnv, spawnOrigins, stopOrigin, type TestOrigin } from "./pool-harness.ts";

const MCP_RULE = JSON.stringify([{ header: "Mcp-Session-Id", whenGone: "strict" }]);
const JSESSION_RULE = JSON.stringify([{ cookie: "JSESSIONID", whenGone: "failover" }]);

/** A cookie-less client, as MCP clients are: it keeps only the id it is given. */
async function mcpCall(e: Env, tag: string, sessionId?: string, issue?: string) {
  const headers = new Headers({ "x-test-tag": tag });
  if (sessionId) headers.set("mcp-session-id", sessionId);
  if (issue) headers.set("x-test-respond", respondWith({ headers: { "mcp-session-id": issue } }));
  const res = await callWorker(new Request(`${BASE}/mcp`, { method: "POST", headers, body: "{}" }), e);
  const text = await res.text();
  return { res, text, echo: res.status === 200 ? (JSON.parse(text) as Echo) : undefined };
}

async function countsByOrigin(origins: TestOrigin[], tag: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const o of origins) out[o.id] = (await receivedBy(o.url, tag)).length;
  return out;
}

describe("LEARNED_AFFINITY configuration", () => {
  it.each([
    ['[{"header":"Mcp-Session-Id","whenGone":"sometimes"}]', "LEARNED_AFFINITY[0].whenGone"],
    [
      '[{"header":"Mcp-Session-Id","cookie":"JSESSIONID"}]',
      'LEARNED_AFFINITY[0]: needs exactly one of "header" or "cookie"',
    ],
    ['[{"whenGone":"strict"}]', "LEARNED_AFFINITY[0]: needs exactly one"],
    ['[{"cookie":"JSESSIONID"},{"cookie":"JSESSIONID"}]', "LEARNED_AFFINITY[1].cookie: duplicate rule"],
    ['[{"header":"X-Edge-Session-Token"}]', "LEARNED_AFFINITY[0].header: is reserved for the layer"],
    ['[{"cookie":"__Host-edge-session"}]', "LEARNED_AFFINITY[0].cookie: is the layer's own cookie"],
    ['{"header":"Mcp-Session-Id"}', "LEARNED_AFFINITY: "],
    ["[{", "LEARNED_AFFINITY: is not valid JSON"],
  ])("%s is refused, naming the field in the log (the client gets a bare ERR_CONFIG)", async (value, message) => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await callWorker(new Request(`${BASE}/`), edgeEnv({ LEARNED_AFFINITY: value }));
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("ERR_CONFIG");
    expect(body.error.message).not.toContain("LEARNED_AFFINITY");
    const line = logged.mock.calls
      .map((c) => JSON.parse(String(c[0])) as { event?: string; message?: string })
      .find((l) => l.event === "config_invalid");
    expect(line?.message).toContain(message);
    logged.mockRestore();
  });
});

describe("a header id (MCP Streamable HTTP, strict)", () => {
  it("every later request from a cookie-less client reaches the origin that issued the id, which sees its own id", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins, { LEARNED_AFFINITY: MCP_RULE });
    const tag = crypto.randomUUID();
    const first = await mcpCall(e, tag, undefined, "origin-session-42");
    const home = first.echo?.origin ?? "";
    const sealed = first.res.headers.get("mcp-session-id") ?? "";
    // The client holds the sealed form only: not the origin's id, its name or its address.
    expect(sealed).not.toBe("");
    expect(sealed).not.toContain("origin-session-42");
    for (const part of sealed.split(".")) {
      const text = atob(
        part
          .replaceAll("-", "+")
          .replaceAll("_", "/")
          .padEnd(Math.ceil(part.length / 4) * 4, "="),
      );
      expect(text).not.toContain(home);
      expect(text).not.toContain("127.0.0.1");
    }
    for (let i = 0; i < 20; i++) {
      const next = await mcpCall(e, tag, sealed);
      expect(next.res.status, next.text).toBe(200);
      expect(next.echo?.origin).toBe(home);
      expect(header(next.echo as Echo, "mcp-session-id")).toBe("origin-session-42");
    }
    expect(await countsByOrigin(origins, tag)).toEqual(
      Object.fromEntries(origins.map((o) => [o.id, o.id === home ? 21 : 0])),
    );
  });

  it("an altered or foreign id is the protocol's 404 and reaches no origin", async () => {
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins, { LEARNED_AFFINITY: MCP_RULE });
    const tag = crypto.randomUUID();
    const sealed = (await mcpCall(e, tag, undefined, "abc")).res.headers.get("mcp-session-id") ?? "";
    const flipped = `${sealed.slice(0, -2)}${sealed.at(-2) === "A" ? "B" : "A"}${sealed.slice(-1)}`;
    for (const id of [flipped, "abc", "not.a.sealed.id.at-all"]) {
      const gone = await mcpCall(e, tag, id);
      expect(gone.res.status).toBe(404);
      expect(JSON.parse(gone.text)).toMatchObject({
        jsonrpc: "2.0",
        id: null,
        error: { code: -32001, data: { code: "ERR_LEARNED_SESSION_GONE" } },
      });
    }
    const total = Object.values(await countsByOrigin(origins, tag)).reduce((a, b) => a + b, 0);
    expect(total).toBe(1);
  });

  it("when its origin dies, the next request is the protocol's 404, never another origin", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins, { LEARNED_AFFINITY: MCP_RULE, MAX_RETRIES: "2" });
    const tag = crypto.randomUUID();
    const first = await mcpCall(e, tag, undefined, "s-1");
    const home = first.echo?.origin ?? "";
    const sealed = first.res.headers.get("mcp-session-id") ?? "";
    await stopOrigin(home);
    const others = origins.filter((o) => o.id !== home);
    const before = await countsByOrigin(others, tag);
    // GET (the SSE stream) and DELETE are idempotent: without the pin they would be retried on another origin.
    for (const method of ["POST", "GET", "DELETE"]) {
      const res = await callWorker(
        new Request(`${BASE}/mcp`, {
          method,
          headers: { "x-test-tag": tag, "mcp-session-id": sealed },
          ...(method === "POST" ? { body: "{}" } : {}),
        }),
        e,
      );
      expect(res.status, method).toBe(404);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe("Session not found");
    }
    expect(await countsByOrigin(others, tag)).toEqual(before);
  });

  it("a drain keeps serving bound ids until its deadline, then they are gone; new ids go elsewhere", async () => {
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins, { LEARNED_AFFINITY: MCP_RULE });
    const tag = crypto.randomUUID();
    const first = await mcpCall(e, tag, undefined, "d-1");
    const home = first.echo?.origin ?? "";
    const sealed = first.res.headers.get("mcp-session-id") ?? "";
    expect((await admin(e, "POST", `/origins/${home}/drain`, { in: 3600 })).status).toBe(200);
    expect((await mcpCall(e, tag, sealed)).echo?.origin).toBe(home);
    for (let i = 0; i < 4; i++) expect((await mcpCall(e, tag, undefined, `new-${i}`)).echo?.origin).not.toBe(home);
    expect((await admin(e, "POST", `/origins/${home}/drain`, { in: 0 })).status).toBe(200);
    expect((await mcpCall(e, tag, sealed)).res.status).toBe(404);
  });
});

describe("a cookie id (JSESSIONID, failover)", () => {
  function jsessionFrom(res: Response): string | undefined {
    for (const c of res.headers.getSetCookie()) if (c.startsWith("JSESSIONID=")) return c;
    return undefined;
  }

  it("is sealed with the origin's attributes, restored for the origin, and re-bound to a healthy origin when its own dies", async () => {
    const origins = await spawnOrigins(3);
    const e = poolEnv(origins, { LEARNED_AFFINITY: JSESSION_RULE });
    const client = new BrowserClient(e);
    const issue = { headers: { "set-cookie": "JSESSIONID=tomcat-7.node1; Path=/app; HttpOnly; Max-Age=600" } };
    const first = await client.send("/app/login", { respond: issue });
    const home = ((await first.json()) as Echo).origin;
    const line = jsessionFrom(first) ?? "";
    expect(line).toMatch(/^JSESSIONID=[\w-]+\.\.[\w-]+\.[\w-]+\.[\w-]+; Path=\/app; HttpOnly; Max-Age=600$/);
    expect(line).not.toContain("tomcat-7");
    const sealed = line.slice("JSESSIONID=".length).split(";")[0] ?? "";
    const jar = { cookie: `JSESSIONID=${sealed}; theme=dark` };

    const again = await client.echo("/app/cart", { headers: jar });
    expect(again.echo.origin).toBe(home);
    expect(header(again.echo, "cookie")).toBe("JSESSIONID=tomcat-7.node1; theme=dark");

    await stopOrigin(home);
    const moved = await client.send("/app/cart", { headers: jar });
    expect(moved.status).toBe(200);
    const movedTo = ((await moved.json()) as Echo).origin;
    expect(movedTo).not.toBe(home);
    // The new origin gets the id (an application with a shared session store keeps the user's session)...
    const seen = await receivedBy(origins.find((o) => o.id === movedTo)?.url ?? "", client.tag);
    expect(seen.at(-1)?.headers.cookie).toBe("JSESSIONID=tomcat-7.node1; theme=dark");
    // ...and the client a re-sealed one naming it, with the origin's attributes, for the browser session.
    const rebound = jsessionFrom(moved) ?? "";
    expect(rebound).toMatch(/^JSESSIONID=[^;]+; Path=\/app; HttpOnly$/);
    const resealed = rebound.slice("JSESSIONID=".length).split(";")[0] ?? "";
    for (let i = 0; i < 3; i++) {
      const next = await client.echo("/app/cart", { headers: { cookie: `JSESSIONID=${resealed}` } });
      expect(next.echo.origin).toBe(movedTo);
    }
  });

  it("is bound to the edge session it was issued under: another session cannot carry it", async () => {
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins, { LEARNED_AFFINITY: JSESSION_RULE });
    const alice = new BrowserClient(e);
    const issued = await alice.send("/", { respond: { headers: { "set-cookie": "JSESSIONID=alice-1; Path=/" } } });
    const sealed = (jsessionFrom(issued) ?? "").slice("JSESSIONID=".length).split(";")[0] ?? "";
    expect(header((await alice.echo("/", { headers: { cookie: `JSESSIONID=${sealed}` } })).echo, "cookie")).toBe(
      "JSESSIONID=alice-1",
    );
    const mallory = new BrowserClient(e);
    await mallory.echo("/");
    const { echo } = await mallory.echo("/", { headers: { cookie: `JSESSIONID=${sealed}; x=1` } });
    expect(header(echo, "cookie")).toBe("x=1");
  });
});

describe("the sealed form", () => {
  const keyOf = (byte: number) => sealKeyFrom(new Uint8Array(32).fill(byte));

  it("opens only under its own key and for its own rule", async () => {
    const k = await keyOf(1);
    const sealed = await sealLearnedId(k, { n: "header:mcp-session-id", o: "a", i: "id-1" });
    expect(await unsealLearnedId(k, sealed, "header:mcp-session-id")).toEqual({
      n: "header:mcp-session-id",
      o: "a",
      i: "id-1",
    });
    expect(await unsealLearnedId(k, sealed, "cookie:JSESSIONID")).toBeUndefined();
    expect(await unsealLearnedId(await keyOf(2), sealed, "header:mcp-session-id")).toBeUndefined();
    expect(await unsealLearnedId(k, `${sealed}x`, "header:mcp-session-id")).toBeUndefined();
    expect(await unsealLearnedId(k, "a".repeat(5000), "header:mcp-session-id")).toBeUndefined();
  });

  it("is fresh each time (random IV): two seals of one id do not compare equal", async () => {
    const k = await keyOf(3);
    const b = { n: "cookie:JSESSIONID", o: "a", i: "same" };
    expect(await sealLearnedId(k, b)).not.toBe(await sealLearnedId(k, b));
  });
});
