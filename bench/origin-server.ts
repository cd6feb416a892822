/**
 * The benchmark's origin, run as its own process so that its event loop does
 * not share a thread with the load generator:
 *
 *   node bench/origin-server.ts [--ports 2]
 *
 * It listens on N loopback ports (origin-1, origin-2, …) with one event loop and
 * answers every request with a small 200. `/write` also answers with
 * `X-Edge-Session-Set: {"n": <counter>}`, so the layer applies a session write
 * on every such request. `/__bench/stats` (asked directly, never through a proxy)
 * returns counters that the runner uses to check that a scenario did what it
 * claims: how many requests carried `X-Edge-Session`, and the claims of the last one.
 *
 * Started with an IPC channel (fork), it sends `{ports}` when listening and
 * exits as soon as the channel closes, so it never outlives the runner.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { ports: { type: "string", default: "2" } } });
const count = Math.max(1, Number(values.ports));

const BODY = "hello from the bench origin\n";

interface OriginStats {
  requests: number;
  writes: number;
  withSessionHeader: number;
  /** Claims of the last X-Edge-Session seen (decoded, not verified: the tests verify it). */
  lastSession: Record<string, unknown> | null;
}

let stats: Omit<OriginStats, "lastSession"> = { requests: 0, writes: 0, withSessionHeader: 0 };
let lastHeader: string | undefined;
let writeCounter = 0;

function decodeClaims(jws: string): Record<string, unknown> | null {
  const payload = jws.split(".")[1];
  if (!payload) return null;
  try {
    return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function control(path: string, res: ServerResponse): void {
  if (path === "/__bench/stats") {
    // Decoded lazily: the hot path only keeps the raw header.
    const body = { ...stats, lastSession: lastHeader ? decodeClaims(lastHeader) : null };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  } else if (path === "/__bench/reset") {
    stats = { requests: 0, writes: 0, withSessionHeader: 0 };
    lastHeader = undefined;
    res.writeHead(204).end();
  } else res.writeHead(404).end();
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? "/";
  if (path.startsWith("/__bench/")) {
    control(path, res);
    return;
  }
  // The body is not read: GET only. Drain anything sent so keep-alive keeps working.
  req.resume();
  stats.requests++;
  const session = req.headers["x-edge-session"];
  if (typeof session === "string") {
    stats.withSessionHeader++;
    lastHeader = session;
  }
  const headers: Record<string, string | number> = {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(BODY),
  };
  if (path === "/write" || path.startsWith("/write?")) {
    stats.writes++;
    headers["x-edge-session-set"] = JSON.stringify({ n: ++writeCounter });
  }
  res.writeHead(200, headers).end(BODY);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

const servers = Array.from({ length: count }, () => {
  const server = createServer(handle);
  // Proxies keep upstream connections open; don't close them under load.
  server.keepAliveTimeout = 60_000;
  return server;
});
const ports = await Promise.all(servers.map(listen));

if (process.send) {
  process.send({ ports });
  process.on("disconnect", () => process.exit(0));
} else {
  console.log(`listening ${ports.map((p) => `http://127.0.0.1:${p}`).join(" ")}`);
}
process.on("SIGTERM", () => process.exit(0));
