/**
 * The official MCP TypeScript SDK's Streamable HTTP client, unmodified, against
 * three stateful SDK servers behind the layer under `wrangler dev`, with
 * LEARNED_AFFINITY naming Mcp-Session-Id (strict). Without the layer's learned
 * affinity, the second call of a session fails with "Session not found".
 */
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type McpOrigin, startMcpOrigin } from "./support/mcp-server.ts";
import { startWranglerDev, type WranglerDev } from "./support/wrangler-dev.ts";

let servers: McpOrigin[] = [];
let layer: WranglerDev;
const adminToken = randomBytes(24).toString("base64url");

beforeAll(async () => {
  servers = await Promise.all(["mcp-a", "mcp-b", "mcp-c"].map(startMcpOrigin));
  layer = await startWranglerDev({
    vars: {
      ENVIRONMENT: "development",
      ADMIN_TOKEN: adminToken,
      POOL_CACHE_SECONDS: "1",
      LEARNED_AFFINITY: JSON.stringify([{ header: "Mcp-Session-Id", whenGone: "strict" }]),
      ORIGINS: JSON.stringify(
        servers.map((s) => ({ id: s.id, url: s.url, health: { path: "/health", interval: 1, fall: 1, timeout: 500 } })),
      ),
    },
  });
});

afterAll(async () => {
  await layer?.stop();
  await Promise.all(servers.map((s) => s.close()));
});

interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  notes: string[];
}

async function connect(): Promise<Connected> {
  const transport = new StreamableHTTPClientTransport(new URL(`${layer.url}/mcp`));
  const client = new Client({ name: "probe", version: "1.0.0" });
  const notes: string[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void notes.push(String(n.params.data)));
  client.onerror = () => {}; // the GET stream's reconnection attempts after a kill are expected
  await client.connect(transport);
  return { client, transport, notes };
}

async function text(c: Connected, name: string): Promise<string> {
  const result = await c.client.callTool({ name, arguments: {} });
  const [first] = result.content as { type: string; text: string }[];
  return first?.text ?? "";
}

/** Which servers saw requests naming a session this process issued (the origin's own ids, restored by the layer). */
function servedBy(session: string): string[] {
  return servers.filter((s) => s.seen.some((r) => r.session === session)).map((s) => s.id);
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("MCP Streamable HTTP through the layer", () => {
  it("initialize, 100 tool calls, a notification on the GET stream and DELETE all reach the session's server", async () => {
    const c = await connect();
    const home = await text(c, "whoami");
    const server = servers.find((s) => s.id === home);
    const own = server?.sessions().at(-1) ?? "";
    // The client holds the layer's sealed form, never the server's own id.
    expect(c.transport.sessionId).toBeTruthy();
    expect(c.transport.sessionId).not.toBe(own);
    for (let i = 1; i <= 100; i++) expect(await text(c, "count")).toBe(String(i));
    expect(await text(c, "notify-later")).toBe("scheduled");
    await until("the notification on the GET stream", () => (c.notes.includes(`from ${home}`) ? true : undefined));
    await c.transport.terminateSession();
    const methods = server?.seen.filter((r) => r.session === own).map((r) => r.method) ?? [];
    expect(new Set(methods)).toEqual(new Set(["POST", "GET", "DELETE"]));
    expect(methods.filter((m) => m === "POST").length).toBeGreaterThanOrEqual(102);
    expect(servedBy(own)).toEqual([home]);
    await c.client.close();
  });

  it("sessions spread over the servers, each staying on its own", async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, connect));
    const homes = await Promise.all(clients.map((c) => text(c, "whoami")));
    expect(new Set(homes).size).toBeGreaterThan(1);
    for (let round = 0; round < 5; round++)
      for (const [i, c] of clients.entries()) expect(await text(c, "whoami")).toBe(homes[i]);
    await Promise.all(clients.map((c) => c.client.close()));
  });

  it("when its server dies, the client gets MCP's 404, initializes again and continues on another server", async () => {
    let c = await connect();
    const home = await text(c, "whoami");
    for (let i = 1; i <= 3; i++) expect(await text(c, "count")).toBe(String(i));
    const victim = servers.find((s) => s.id === home);
    await victim?.kill();
    // The layer's health checks see it go (what happens in production between a crash and the next call).
    await until("the layer to mark the server unhealthy", async () => {
      const res = await fetch(`${layer.url}/__edge/origins`, { headers: { authorization: `Bearer ${adminToken}` } });
      const { origins } = (await res.json()) as { origins: { id: string; health: { state: string } }[] };
      return origins.find((o) => o.id === home)?.health.state === "unhealthy" ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 1100)); // the layer's pool view is cached for POOL_CACHE_SECONDS

    // What the spec asks of a client on 404 for its session: start a new one (the SDK leaves this to the application).
    const failure = await c.client.callTool({ name: "count", arguments: {} }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StreamableHTTPError);
    expect((failure as StreamableHTTPError).code).toBe(404);
    await c.client.close();
    c = await connect();
    const next = await text(c, "whoami");
    expect(next).not.toBe(home);
    for (let i = 1; i <= 10; i++) expect(await text(c, "count")).toBe(String(i));
    await c.client.close();
  });
});
