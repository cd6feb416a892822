/**
 * The floor every figure is compared with: what workerd costs to receive a
 * request, fetch the origin with the same path and stream its response back.
 * No token, no Durable Object, no header rewriting.
 *
 * With an `X-Floor-Key` header it first makes one trivial RPC (a method that
 * returns a number) to the Durable Object named by that key: the floor of any
 * design that calls a session's object on every request (docs/performance.md),
 * measured beside strict mode in the same run.
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

export default {
  async fetch(request: Request, env: BaselineEnv): Promise<Response> {
    const key = request.headers.get("x-floor-key");
    if (key) await env.FLOOR.get(env.FLOOR.idFromName(key)).ping();
    const incoming = new URL(request.url);
    const target = new URL(incoming.pathname + incoming.search, env.ORIGIN_URL);
    return fetch(target, { method: request.method, headers: request.headers, body: request.body, redirect: "manual" });
  },
} satisfies ExportedHandler<BaselineEnv>;
