import { ADMIN_COOKIE } from "../admin/auth.ts";
import { successorCookie } from "./transport.ts";

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, formerly RFC 2616 §13.5.1) belong to one
 * connection and must not be forwarded by a proxy.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
]);

/**
 * What a CGI-style server (CGI, WSGI, Rack, PHP-FPM) makes of a header name:
 * `HTTP_` + upper case, with `-` and `_` alike, so `X_Forwarded_For` and
 * `X-Forwarded-For` are the same variable there. Names are compared in this form.
 */
/**
 * The shared secret that proves to an origin that a request came through the
 * layer (ORIGIN_AUTH_SECRET). Client-sent copies are dropped like any header
 * the layer owns.
 */
export const ORIGIN_AUTH_HEADER = "x-edge-origin-auth";

export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replaceAll("_", "-");
}

/**
 * Client addresses as various proxies and CDNs name them. A client can send any
 * of them; the origin gets only the layer's own account of the client
 * (Forwarded, X-Forwarded-For, X-Real-IP).
 */
const CLIENT_ADDRESS_HEADERS = new Set([
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "cf-connecting-ip",
  "cf-connecting-ipv6",
  "x-cluster-client-ip",
  "client-ip",
  "fastly-client-ip",
  "x-original-forwarded-for",
  "x-originating-ip",
  "x-remote-ip",
  "x-remote-addr",
]);

/** Headers whose meaning is the message's framing or target: never taken from a differently spelled twin. */
const FRAMING = new Set(["host", "content-length", "content-type", "transfer-encoding"]);

/**
 * The layer is the trust boundary: whatever a client claims about the session
 * (X-Edge-Session*), about where it came from (Forwarded, X-Forwarded-*,
 * X-Real-IP and the like) or about how the message is framed is dropped, in
 * any spelling an origin could read as one of those, and only what the layer
 * itself adds reaches the origin.
 */
function isClientControlled(canonical: string): boolean {
  return (
    canonical.startsWith("x-edge-session") ||
    canonical === ORIGIN_AUTH_HEADER ||
    canonical.startsWith("x-edge-dev-") ||
    canonical === "forwarded" ||
    canonical.startsWith("x-forwarded-") ||
    CLIENT_ADDRESS_HEADERS.has(canonical)
  );
}

function connectionTokens(headers: Headers): Set<string> {
  const value = headers.get("connection") ?? "";
  return new Set(
    value
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** Removes one cookie (every occurrence) from a Cookie header value; undefined if nothing is left. */
export function withoutCookie(cookieHeader: string, name: string): string | undefined {
  const kept = cookieHeader
    .split(";")
    .map((p) => p.trim())
    .filter((p) => p && p.split("=", 1)[0]?.trim() !== name);
  return kept.length ? kept.join("; ") : undefined;
}

export interface ForwardedFor {
  clientIp: string | undefined;
  host: string;
  proto: string;
}

/** RFC 7239 §6: IPv6 addresses are bracketed and quoted; unknown clients are "unknown". */
function forwardedNode(ip: string | undefined): string {
  if (!ip) return "unknown";
  return ip.includes(":") ? `"[${ip}]"` : ip;
}

function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, "")}"`;
}

export function upstreamRequestHeaders(
  incoming: Headers,
  options: { cookieName: string; sessionHeader: string; forwarded: ForwardedFor; webSocket: boolean },
): Headers {
  const drop = new Set([...connectionTokens(incoming)].map(canonicalHeaderName));
  const names = new Set([...incoming.keys()]);
  const out = new Headers();
  for (const [name, value] of incoming) {
    const canonical = canonicalHeaderName(name);
    if (HOP_BY_HOP.has(canonical) || drop.has(canonical) || isClientControlled(canonical)) continue;
    // `X_App` beside `X-App`, or `Content_Length`: a CGI-style origin would read the one as the other.
    if (canonical !== name && (FRAMING.has(canonical) || names.has(canonical))) continue;
    if (name === "cookie") {
      const layerFree = withoutCookie(withoutCookie(value, ADMIN_COOKIE) ?? "", successorCookie(options.cookieName));
      const rest = withoutCookie(layerFree ?? "", options.cookieName);
      if (rest) out.append("cookie", rest);
      continue;
    }
    out.append(name, value);
  }
  if (options.webSocket) {
    // The one hop-by-hop exchange a proxy must pass on for a WebSocket handshake (RFC 6455 §4.1).
    out.set("upgrade", "websocket");
    out.set("connection", "Upgrade");
  }
  const { clientIp, host, proto } = options.forwarded;
  out.set("forwarded", `for=${forwardedNode(clientIp)};host=${quoted(host)};proto=${proto}`);
  if (clientIp) {
    out.set("x-forwarded-for", clientIp);
    out.set("x-real-ip", clientIp);
  }
  out.set("x-forwarded-host", host);
  out.set("x-forwarded-proto", proto);
  out.set("x-edge-session", options.sessionHeader);
  return out;
}

/**
 * Response headers the client may see: no hop-by-hop headers, no X-Edge-Session*
 * (origin → layer directives), and no Set-Cookie for the affinity or operator
 * cookies, which only the layer writes.
 */
export function cleanResponseHeaders(headers: Headers, cookieName: string): void {
  const drop = connectionTokens(headers);
  for (const name of [...headers.keys()]) {
    const canonical = canonicalHeaderName(name);
    // Directives are for the layer, in any spelling an origin may have given them (X_Edge_Session_Set).
    if (HOP_BY_HOP.has(name) || drop.has(name) || canonical.startsWith("x-edge-session")) headers.delete(name);
  }
  const cookies = headers.getSetCookie();
  const layerOwned = new Set([cookieName, successorCookie(cookieName), ADMIN_COOKIE]);
  const kept = cookies.filter((c) => !layerOwned.has(c.split("=", 1)[0]?.trim() ?? ""));
  if (kept.length !== cookies.length) {
    headers.delete("set-cookie");
    for (const c of kept) headers.append("set-cookie", c);
  }
}

export function isWebSocketUpgrade(headers: Headers): boolean {
  return (headers.get("upgrade") ?? "").toLowerCase() === "websocket";
}
