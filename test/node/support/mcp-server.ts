/**
 * A stateful MCP server (the official SDK's Streamable HTTP transport) on
 * 127.0.0.1:0, as MCP servers behind a load balancer run: one transport per
 * session id, kept in this process, and 404 for an id it does not know (the
 * spec's "session gone"). It records which session each request named, so a
 * test can tell which process served what.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

export interface McpOrigin {
  id: string;
  url: string;
  /** Every request: its method and the Mcp-Session-Id it carried (undefined for initialize). */
  seen: { method: string; session: string | undefined }[];
  /** Sessions this process created. */
  sessions(): string[];
  /** The process dies: every connection is dropped and the port refuses new ones. */
  kill(): Promise<void>;
  close(): Promise<void>;
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : undefined;
}

function mcpServerFor(id: string, counters: Map<string, number>): McpServer {
  const server = new McpServer({ name: id, version: "1.0.0" }, { capabilities: { logging: {} } });
  server.registerTool("whoami", { description: "which server process answers" }, () => ({
    content: [{ type: "text", text: id }],
  }));
  server.registerTool("count", { description: "a counter kept in this session, in this process" }, (extra) => {
    const sid = extra.sessionId ?? "";
    const n = (counters.get(sid) ?? 0) + 1;
    counters.set(sid, n);
    return { content: [{ type: "text", text: String(n) }] };
  });
  server.registerTool("notify-later", { description: "a notification on the GET stream, after the call" }, (extra) => {
    const sid = extra.sessionId;
    setTimeout(() => void server.sendLoggingMessage({ level: "info", data: `from ${id}` }, sid).catch(() => {}), 50);
    return { content: [{ type: "text", text: "scheduled" }] };
  });
  return server;
}

export async function startMcpOrigin(id: string): Promise<McpOrigin> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const counters = new Map<string, number>();
  const seen: McpOrigin["seen"] = [];
  const http: Server = createServer(async (req, res) => {
    if (req.url === "/health") return void res.writeHead(200).end("ok");
    const header = req.headers["mcp-session-id"];
    const sid = typeof header === "string" ? header : undefined;
    seen.push({ method: req.method ?? "", session: sid });
    let transport = sid ? transports.get(sid) : undefined;
    if (sid && !transport) {
      res.writeHead(404, { "content-type": "application/json" });
      return void res.end(
        JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }),
      );
    }
    const body = req.method === "POST" ? await jsonBody(req) : undefined;
    if (!transport) {
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (newId) => void transports.set(newId, created),
      });
      created.onclose = () => {
        if (created.sessionId) transports.delete(created.sessionId);
      };
      await mcpServerFor(id, counters).connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as AddressInfo;
  const kill = () =>
    new Promise<void>((resolve) => {
      if (!http.listening) return resolve();
      http.closeAllConnections();
      http.close(() => resolve());
    });
  return {
    id,
    url: `http://127.0.0.1:${port}`,
    seen,
    sessions: () => [...transports.keys()],
    kill,
    close: async () => {
      await Promise.all([...transports.values()].map((t) => t.close().catch(() => {})));
      await kill();
    },
  };
}
