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
 * For the failover, migration and recovery figures (bench/figures/):
 *
 * - a request header `x-bench-reply: {"<header>": "<value>", …}` is copied onto
 *   the response, so a client can make the origin emit any X-Edge-Session-*
 *   directive (a counter write, a login) through the layer;
 * - `?fill=<bytes>&key=<k>` answers `X-Edge-Session-Set: {"<k>": "xxx…"}` with a
 *   value of that many bytes (large sessions, built in patches);
 * - `/session` answers with the claims of the `X-Edge-Session` it received, as JSON;
 * - over the IPC channel: `{id, cmd: "close", index}` really closes that origin's
 *   listening socket and its open connections (a dead origin: connections are
 *   refused), `{id, cmd: "open", index}` listens again on the same port, and
 *   `{id, cmd: "counts"}` / `{id, cmd: "reset"}` read and clear the requests
 *   each origin received, by method.
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
/** Requests received by each origin, by method. */
let received: Record<string, number>[] = Array.from({ length: count }, () => ({}));

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

/** Headers the client asked this origin to answer with (x-bench-reply), if any. */
function requestedReply(req: IncomingMessage): Record<string, string> {
  const raw = req.headers["x-bench-reply"];
  if (typeof raw !== "string") return {};
  try {
    return JSON.parse(raw) as Record<string, string>;
  } catch {
    return {};
  }
}

function handle(index: number, req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? "/";
  if (path.startsWith("/__bench/")) {
    control(path, res);
    return;
  }
  // The body is not read. Drain anything sent so keep-alive keeps working.
  req.resume();
  stats.requests++;
  const byMethod = received[index] ?? {};
  byMethod[req.method ?? "GET"] = (byMethod[req.method ?? "GET"] ?? 0) + 1;
  const session = req.headers["x-edge-session"];
  if (typeof session === "string") {
    stats.withSessionHeader++;
    lastHeader = session;
  }
  let body = BODY;
  if (path === "/session" || path.startsWith("/session?"))
    body = JSON.stringify(typeof session === "string" ? decodeClaims(session) : null);
  const headers: Record<string, string | number> = {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    ...requestedReply(req),
  };
  if (path === "/write" || path.startsWith("/write?")) {
    stats.writes++;
    headers["x-edge-session-set"] = JSON.stringify({ n: ++writeCounter });
  }
  const fill = path.includes("fill=") ? /[?&]fill=(\d+)/.exec(path)?.[1] : undefined;
  if (fill) {
    const key = /[?&]key=(\w+)/.exec(path)?.[1] ?? "fill";
    headers["x-edge-session-set"] = JSON.stringify({ [key]: "x".repeat(Number(fill)) });
  }
  res.writeHead(200, headers).end(body);
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

const servers = Array.from({ length: count }, (_, i) => {
  const server = createServer((req, res) => handle(i, req, res));
  // Proxies keep upstream connections open; don't close them under load.
  server.keepAliveTimeout = 60_000;
  return server;
});
const ports = await Promise.all(servers.map((s) => listen(s)));

/** Dead: no listening socket (new connections are refused) and no open connection. */
function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

interface Command {
  id: number;
  cmd: "close" | "open" | "counts" | "reset";
  index?: number;
}

async function command(c: Command): Promise<unknown> {
  const server = servers[c.index ?? 0];
  const port = ports[c.index ?? 0];
  if ((c.cmd === "close" || c.cmd === "open") && (!server || port === undefined)) throw new Error("no such origin");
  if (c.cmd === "close" && server) await close(server);
  if (c.cmd === "open" && server && !server.listening) await listen(server, port);
  if (c.cmd === "reset") received = received.map(() => ({}));
  return { received };
}

if (process.send) {
  process.send({ ports });
  process.on("message", (m: Command) => {
    command(m).then(
      (result) => process.send?.({ id: m.id, ok: true, result }),
      (e: unknown) => process.send?.({ id: m.id, ok: false, error: String(e) }),
    );
  });
  process.on("disconnect", () => process.exit(0));
} else {
  console.log(`listening ${ports.map((p) => `http://127.0.0.1:${p}`).join(" ")}`);
}
process.on("SIGTERM", () => process.exit(0));
