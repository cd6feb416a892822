/**
 * The floor every figure is compared with: what workerd costs to receive a
 * request, fetch the origin with the same path and stream its response back.
 * No token, no Durable Object, no header rewriting.
 *
 * With an `X-Floor-Key` header it first makes one trivial RPC (a method that
 * returns a number) to the Durable Object named by that key: the floor of any
 * design that calls a session's object on every request (docs/performance.md),
 * measured beside strict mode in the same run.
 *
 * With `X-Floor-Rewrite: 1` it does what any proxy that owns a trust boundary
 * must do on every request, and nothing about sessions: the request's headers
 * are copied less the affinity cookie and client-sent forwarding headers, with
 * the forwarding headers and a signed session header (a fixed string here)
 * added; the origin's answer waits under a timeout; the response is rebuilt so
 * that its headers can be pruned (hop-by-hop, directives to the layer) and a
 * Server-Timing entry added. The floor of the read cache's path.
 */
import { DurableObject } from "cloudflare:workers";

interface BaselineEnv {
  ORIGIN_URL: string;
  FLOOR: DurableObjectNamespace<Floor>;
}

export class Floor extends DurableObject {
  ping(): number {
    return 1;
  }
}

/** About the size of a forwarded session header for a 300-byte session (EdDSA). */
const SESSION_HEADER = `eyJhbGciOiJFZERTQSJ9.${"x".repeat(560)}.${"s".repeat(86)}`;
const DROPPED_REQUEST = new Set(["cookie", "forwarded", "x-forwarded-for", "x-real-ip", "connection", "keep-alive"]);
const DROPPED_RESPONSE = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "trailer"]);

async function rewritten(request: Request, target: URL): Promise<Response> {
  const headers: [string, string][] = [];
  for (const [name, value] of request.headers) if (!DROPPED_REQUEST.has(name)) headers.push([name, value]);
  headers.push(
    ["forwarded", "for=unknown;host=edge;proto=http"],
    ["x-forwarded-host", "edge"],
    ["x-forwarded-proto", "http"],
    ["x-edge-session", SESSION_HEADER],
  );
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  const started = performance.now();
  let upstream: Response;
  try {
    upstream = await fetch(target, { method: request.method, headers, redirect: "manual", signal: abort.signal });
  } finally {
    clearTimeout(timer);
  }
  const response = new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: upstream.headers,
  });
  for (const name of [...response.headers.keys()])
    if (DROPPED_RESPONSE.has(name) || name.startsWith("x-edge-session")) response.headers.delete(name);
  response.headers.append("server-timing", `origin;dur=${(performance.now() - started).toFixed(1)}`);
  return response;
}

export default {
  async fetch(request: Request, env: BaselineEnv): Promise<Response> {
    const key = request.headers.get("x-floor-key");
    if (key) await env.FLOOR.get(env.FLOOR.idFromName(key)).ping();
    const incoming = new URL(request.url);
    const target = new URL(incoming.pathname + incoming.search, env.ORIGIN_URL);
    if (request.headers.get("x-floor-rewrite") === "1") return rewritten(request, target);
    return fetch(target, { method: request.method, headers: request.headers, body: request.body, redirect: "manual" });
  },
} satisfies ExportedHandler<BaselineEnv>;
