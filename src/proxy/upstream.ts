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

export interface UpstreamInit {
  method: string;
  headers: Headers;
  body: ReadableStream | ArrayBuffer | null;
  /** Milliseconds to wait for the response headers. */
  timeoutMs: number;
}

/**
 * One attempt at the origin. Fails with ERR_ORIGIN_UNREACHABLE or
 * ERR_ORIGIN_TIMEOUT only before any response byte, which is when a retry on
 * another origin is safe for an idempotent request. Once headers arrive the
 * timer stops: a long streamed body is not cut off.
 */
export async function fetchOrigin(originId: string, url: URL, init: UpstreamInit): Promise<Response> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), init.timeoutMs);
  try {
    return await fetch(url, {
      method: init.method,
      headers: init.headers,
      body: init.body,
      redirect: "manual",
      signal: abort.signal,
    });
  } catch (e) {
    if (abort.signal.aborted)
      throw new EdgeError("ERR_ORIGIN_TIMEOUT", `origin ${originId} did not answer within ${init.timeoutMs} ms`, {
        status: 504,
        cause: e,
      });
    throw new EdgeError("ERR_ORIGIN_UNREACHABLE", `origin ${originId} could not be reached`, { status: 502, cause: e });
  } finally {
    clearTimeout(timer);
  }
}
