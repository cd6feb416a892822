import { LRUCache } from "lru-cache";
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

/** The names a Connection header nominates as hop-by-hop, in canonical form. */
function connectionTokens(value: string | null): Set<string> | undefined {
  if (!value) return undefined;
  const tokens = new Set<string>();
  for (const t of value.split(",")) {
    const name = t.trim();
    if (name) tokens.add(canonicalHeaderName(name));
  }
  return tokens;
}

/** Removes the named cookies (every occurrence) from a Cookie header value, in one pass; undefined if nothing is left. */
export function withoutCookies(cookieHeader: string, names: ReadonlySet<string>): string | undefined {
  let kept = "";
  for (const part of cookieHeader.split(";")) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf("=");
    if (names.has((eq < 0 ? p : p.slice(0, eq)).trim())) continue;
    kept = kept ? `${kept}; ${p}` : p;
  }
  return kept || undefined;
}

/** The cookies only the layer reads and writes, for one COOKIE_NAME. */
const layerCookiesByName = new Map<string, ReadonlySet<string>>();
function layerCookies(cookieName: string): ReadonlySet<string> {
  let names = layerCookiesByName.get(cookieName);
  if (!names) {
    names = new Set([cookieName, successorCookie(cookieName), ADMIN_COOKIE]);
    layerCookiesByName.set(cookieName, names);
  }
  return names;
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

/** What a request header's name alone says about forwarding it (the Connection header and twins aside). */
const NameRule = {
  Keep: 0,
  Drop: 1,
  /** Spelled with `_`: dropped when its CGI twin (`-`) is also present, so the origin reads one value. */
  Twin: 2,
  Cookie: 3,
} as const;
type NameRule = (typeof NameRule)[keyof typeof NameRule];

/**
 * Header names repeat from request to request: their rule is worked out once
 * per isolate. Bounded, so a client sending random names cannot grow it.
 */
const RULES_MAX = 1024;
const requestRules = new LRUCache<string, NameRule>({ max: RULES_MAX });

function requestRule(name: string): NameRule {
  let rule = requestRules.get(name);
  if (rule !== undefined) return rule;
  const canonical = canonicalHeaderName(name);
  if (HOP_BY_HOP.has(canonical) || isClientControlled(canonical)) rule = NameRule.Drop;
  // `Content_Length` and the like: a CGI-style origin would read it as the framing header.
  else if (canonical !== name) rule = FRAMING.has(canonical) ? NameRule.Drop : NameRule.Twin;
  else rule = name === "cookie" ? NameRule.Cookie : NameRule.Keep;
  requestRules.set(name, rule);
  return rule;
}

/** Header name/value pairs, as fetch takes them: the runtime builds its Headers from them in one step. */
export type HeaderPairs = [string, string][];

export function upstreamRequestHeaders(
  incoming: Headers,
  options: { cookieName: string; sessionHeader: string; forwarded: ForwardedFor; webSocket: boolean },
): HeaderPairs {
  const nominated = connectionTokens(incoming.get("connection"));
  let names: Set<string> | undefined;
  const out: HeaderPairs = [];
  for (const [name, value] of incoming) {
    const rule = requestRule(name);
    if (rule === NameRule.Drop || nominated?.has(canonicalHeaderName(name))) continue;
    if (rule === NameRule.Twin) {
      // `X_App` beside `X-App`: a CGI-style origin would read the one as the other.
      names ??= new Set(incoming.keys());
      if (names.has(canonicalHeaderName(name))) continue;
    }
    if (rule === NameRule.Cookie) {
      const rest = withoutCookies(value, layerCookies(options.cookieName));
      if (rest) out.push(["cookie", rest]);
      continue;
    }
    out.push([name, value]);
  }
  if (options.webSocket)
    // The one hop-by-hop exchange a proxy must pass on for a WebSocket handshake (RFC 6455 §4.1).
    out.push(["upgrade", "websocket"], ["connection", "Upgrade"]);
  const { clientIp, host, proto } = options.forwarded;
  out.push(["forwarded", `for=${forwardedNode(clientIp)};host=${quoted(host)};proto=${proto}`]);
  if (clientIp) out.push(["x-forwarded-for", clientIp], ["x-real-ip", clientIp]);
  out.push(["x-forwarded-host", host], ["x-forwarded-proto", proto], ["x-edge-session", options.sessionHeader]);
  return out;
}

/** Response header names the client never sees: hop-by-hop, and the origin's directives to the layer in any spelling. */
const responseDrops = new LRUCache<string, boolean>({ max: RULES_MAX });

function droppedFromResponse(name: string): boolean {
  let drop = responseDrops.get(name);
  if (drop !== undefined) return drop;
  // Directives are for the layer, in any spelling an origin may have given them (X_Edge_Session_Set).
  drop = HOP_BY_HOP.has(name) || canonicalHeaderName(name).startsWith("x-edge-session");
  responseDrops.set(name, drop);
  return drop;
}

/**
 * Response headers the client may see: no hop-by-hop headers, no X-Edge-Session*
 * (origin → layer directives), and no Set-Cookie for the affinity or operator
 * cookies, which only the layer writes.
 */
export function cleanResponseHeaders(headers: Headers, cookieName: string): void {
  const nominated = connectionTokens(headers.get("connection"));
  let setCookie = false;
  for (const name of [...headers.keys()]) {
    if (droppedFromResponse(name) || nominated?.has(canonicalHeaderName(name))) headers.delete(name);
    else if (name === "set-cookie") setCookie = true;
  }
  if (!setCookie) return;
  const cookies = headers.getSetCookie();
  const layerOwned = layerCookies(cookieName);
  const kept = cookies.filter((c) => !layerOwned.has(c.split("=", 1)[0]?.trim() ?? ""));
  if (kept.length !== cookies.length) {
    headers.delete("set-cookie");
    for (const c of kept) headers.append("set-cookie", c);
  }
}

export function isWebSocketUpgrade(headers: Headers): boolean {
  return (headers.get("upgrade") ?? "").toLowerCase() === "websocket";
}
