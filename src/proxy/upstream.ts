import { EdgeError } from "../errors.ts";

/** A serialized URL's parts after the scheme (Request.url is always serialized: parsed and normalized by the runtime). */
export function urlParts(url: string): { proto: string; host: string; pathAndQuery: string } {
  const colon = url.indexOf(":");
  const authority = colon + 3;
  const slash = url.indexOf("/", authority);
  const end = slash < 0 ? url.length : slash;
  const hash = url.indexOf("#", end);
  return {
    proto: url.slice(0, colon),
    host: url.slice(authority, end),
    pathAndQuery: slash < 0 ? "/" : url.slice(slash, hash < 0 ? undefined : hash),
  };
}

/** Configured origin URL → what a client's path is appended to: no query, no fragment, no trailing slash. */
const bases = new Map<string, string>();
function originBase(originUrl: string): string {
  let base = bases.get(originUrl);
  if (base === undefined) {
    const u = new URL(originUrl);
    u.search = "";
    u.hash = "";
    base = u.href.replace(/\/$/, "");
    bases.set(originUrl, base);
  }
  return base;
}

/**
 * The upstream URL is the configured origin with the client's path and query
 * appended. Only the path and query come from the client; scheme, host and port
 * always come from configuration, so `GET //evil.example/` or an absolute-form
 * target cannot turn the layer into an open proxy: the client's part always
 * starts with `/`, after the configured authority. `requestUrl` is a serialized
 * URL, as Request.url always is; no URL is parsed per request.
 */
export function upstreamUrl(originUrl: string, requestUrl: string): string {
  return originBase(originUrl) + urlParts(requestUrl).pathAndQuery;
}

export interface UpstreamInit {
  method: string;
  headers: HeadersInit;
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
export async function fetchOrigin(originId: string, url: string, init: UpstreamInit): Promise<Response> {
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
