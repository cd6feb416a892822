import { EdgeError } from "../errors.ts";

/**
 * The upstream URL is the configured origin with the client's path and query
 * appended. Only the path and query come from the client; scheme, host and port
 * always come from configuration, so `GET //evil.example/` or an absolute-form
 * target cannot turn the layer into an open proxy.
 */
export function upstreamUrl(originUrl: string, requestUrl: string): URL {
  const target = new URL(originUrl);
  const incoming = new URL(requestUrl);
  target.pathname = target.pathname.replace(/\/$/, "") + incoming.pathname;
  target.search = incoming.search;
  return target;
}

export async function fetchOrigin(originId: string, url: URL, request: Request, headers: Headers): Promise<Response> {
  const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  try {
    // The body streams through: it is neither buffered nor read here.
    return await fetch(url, {
      method: request.method,
      headers,
      body: hasBody ? request.body : null,
      redirect: "manual",
    });
  } catch (e) {
    throw new EdgeError("ERR_ORIGIN_UNREACHABLE", `origin ${originId} could not be reached`, { status: 502, cause: e });
  }
}
