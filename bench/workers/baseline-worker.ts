/**
 * The floor every figure is compared with: what workerd costs to receive a
 * request, fetch the origin with the same path and stream its response back.
 * No token, no Durable Object, no header rewriting.
 */
interface BaselineEnv {
  ORIGIN_URL: string;
}

export default {
  fetch(request: Request, env: BaselineEnv): Promise<Response> {
    const incoming = new URL(request.url);
    const target = new URL(incoming.pathname + incoming.search, env.ORIGIN_URL);
    return fetch(target, { method: request.method, headers: request.headers, body: request.body, redirect: "manual" });
  },
} satisfies ExportedHandler<BaselineEnv>;
