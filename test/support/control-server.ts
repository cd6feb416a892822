/**
 * Lets tests inside workerd start, stop, restart and break real origins, which
 * run in Node. Each test spawns its own origins, so a test that kills one does
 * not disturb tests running in parallel.
 *
 *   POST /origins            {"id"}            → {"id","url"}   start a new origin
 *   POST /origins/:id/stop                                   refuse connections
 *   POST /origins/:id/start                                  listen again on the same port
 *   POST /origins/:id/fail   {"status": 503 | null}          answer everything with that status
 *   DELETE /origins/:id                                       stop for good
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type RunningOrigin, startOrigin } from "./origin-server.ts";

async function json(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export async function startControlServer(): Promise<{ url: string; close(): Promise<void> }> {
  const origins = new Map<string, RunningOrigin>();
  const server: Server = createServer(async (req, res) => {
    const parts = (req.url ?? "/").split("/").filter(Boolean);
    const reply = (status: number, body: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    try {
      if (req.method === "POST" && parts.length === 1 && parts[0] === "origins") {
        const { id } = await json(req);
        const name = typeof id === "string" ? id : `o-${crypto.randomUUID().slice(0, 8)}`;
        const origin = await startOrigin(name);
        origins.set(name, origin);
        return reply(200, { id: origin.id, url: origin.url });
      }
      const origin = origins.get(parts[1] ?? "");
      if (parts[0] !== "origins" || !origin) return reply(404, { error: "no such origin" });
      const action = parts[2];
      if (req.method === "DELETE" && !action) {
        await origin.close();
        origins.delete(origin.id);
      } else if (action === "stop") await origin.stop();
      else if (action === "start") await origin.start();
      else if (action === "fail") {
        const { status } = await json(req);
        origin.setFailStatus(typeof status === "number" ? status : undefined);
      } else return reply(404, { error: "no such action" });
      return reply(200, { ok: true });
    } catch (e) {
      return reply(500, { error: String(e) });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await Promise.all([...origins.values()].map((o) => o.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
