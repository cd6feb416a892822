/**
 * One client request through the layer, as a browser (cookie) or an API client
 * (X-Edge-Session-Token) sends it, and what came back: the status, the token
 * the client must keep from now on, the layer's error if it answered itself,
 * and the session as the origin saw it (the forwarded X-Edge-Session header,
 * which the test origin echoes back in its body).
 */
import { readFileSync } from "node:fs";
import { decodeJwt } from "jose";
import type { TestRespond } from "../support/origin-server.ts";

export const COOKIE = "__Host-edge-session";
/** The successor cookie a login sets beside the main one (src/proxy/transport.ts). */
export const SUCCESSOR = `${COOKIE}.next`;

export type TokenMode = "api" | "cookie";

/** The session as the origin saw it, from the forwarded header. */
export interface Seen {
  sid: string;
  ver: number;
  ep: number;
  reg: string;
  oid: string;
  sub?: string;
  data: Record<string, unknown>;
  dataOmitted: boolean;
}

export interface Exchange {
  method: string;
  status: number;
  ok: boolean;
  sentAt: number;
  at: number;
  /** What the origin saw; undefined when the layer answered itself or nothing answered. */
  seen?: Seen;
  /** undefined: keep the token you have; null: the layer cleared it; a string: keep this one from now on. */
  token?: string | null;
  /** Cookie mode: the successor cookie a login sets (as `token`: undefined keep, null cleared). */
  successor?: string | null;
  /** The layer's own error answer. */
  error?: { code: string; message: string; retryAfter: string | null };
  /** The request did not complete (connection refused, reset, timed out). */
  network?: string;
}

export interface SendOptions {
  method?: "GET" | "POST";
  path?: string;
  respond?: TestRespond;
  /** Origin holds its answer back this long (so that it can be killed mid-request). */
  delayMs?: number;
  /** X-Edge-Dev-Region: where the client pretends to be (development only). */
  region?: string;
  /** A unique id per request, so that deliveries to origins can be counted. */
  requestId?: string;
  timeoutMs?: number;
  /** Cookie mode: the successor cookie the jar holds, sent beside the main one as a browser would. */
  successor?: string;
}

/** Claims of an affinity token (the client reads them only for bookkeeping: which session, epoch, region). */
export interface TokenClaims {
  sid: string;
  ep: number;
  reg: string;
}

export function tokenClaims(token: string): TokenClaims | undefined {
  try {
    const c = decodeJwt(token) as Partial<TokenClaims>;
    if (typeof c.sid !== "string" || typeof c.ep !== "number" || typeof c.reg !== "string") return undefined;
    return { sid: c.sid, ep: c.ep, reg: c.reg };
  } catch {
    return undefined;
  }
}

function seenFrom(body: string): Seen | undefined {
  try {
    const echo = JSON.parse(body) as { headers?: Record<string, unknown> };
    const header = echo.headers?.["x-edge-session"];
    if (typeof header !== "string") return undefined;
    const c = decodeJwt(header) as Record<string, unknown>;
    return {
      sid: String(c.sid),
      ver: Number(c.ver),
      ep: Number(c.ep),
      reg: String(c.reg),
      oid: String(c.oid),
      ...(typeof c.sub === "string" ? { sub: c.sub } : {}),
      data: (c.data as Record<string, unknown> | undefined) ?? {},
      dataOmitted: c.data_omitted === true,
    };
  } catch {
    return undefined;
  }
}

function tokenFrom(headers: Headers, mode: TokenMode, name = COOKIE): string | null | undefined {
  if (mode === "api") {
    if (name !== COOKIE) return undefined;
    const value = headers.get("x-edge-session-token");
    if (value === null) return undefined;
    return value === "" ? null : value;
  }
  for (const line of headers.getSetCookie()) {
    const [pair = "", ...attributes] = line.split(";");
    const eq = pair.indexOf("=");
    if (pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
    return value === "" || expired ? null : value;
  }
  return undefined;
}

export async function send(
  base: string,
  mode: TokenMode,
  token: string | undefined,
  o: SendOptions,
  clock: () => number,
): Promise<Exchange> {
  const method = o.method ?? "GET";
  const headers = new Headers();
  if (mode === "api") headers.set("x-edge-session-token", token ?? "new");
  else if (token || o.successor)
    headers.set(
      "cookie",
      [token ? `${COOKIE}=${token}` : "", o.successor ? `${SUCCESSOR}=${o.successor}` : ""].filter(Boolean).join("; "),
    );
  if (o.respond) headers.set("x-test-respond", Buffer.from(JSON.stringify(o.respond)).toString("base64url"));
  if (o.delayMs) headers.set("x-test-delay-ms", String(o.delayMs));
  if (o.region) headers.set("x-edge-dev-region", o.region);
  if (o.requestId) headers.set("x-test-tag", o.requestId);
  const sentAt = clock();
  try {
    const res = await fetch(`${base}${o.path ?? "/chaos"}`, {
      method,
      headers,
      ...(method === "POST" ? { body: "{}" } : {}),
      redirect: "manual",
      signal: AbortSignal.timeout(o.timeoutMs ?? 20_000),
    });
    const body = await res.text();
    const fromOrigin = res.headers.has("x-origin");
    const ex: Exchange = { method, status: res.status, ok: res.status >= 200 && res.status < 300, sentAt, at: clock() };
    const t = tokenFrom(res.headers, mode);
    if (t !== undefined) ex.token = t;
    const next = tokenFrom(res.headers, mode, SUCCESSOR);
    if (next !== undefined) ex.successor = next;
    if (fromOrigin) {
      const seen = seenFrom(body);
      if (seen) ex.seen = seen;
    } else {
      try {
        const { error } = JSON.parse(body) as { error?: { code?: string; message?: string } };
        ex.error = {
          code: error?.code ?? "(no code)",
          message: error?.message ?? "",
          retryAfter: res.headers.get("retry-after"),
        };
      } catch {
        ex.error = { code: "(not JSON)", message: body.slice(0, 200), retryAfter: res.headers.get("retry-after") };
      }
    }
    return ex;
  } catch (e) {
    return { method, status: 0, ok: false, sentAt, at: clock(), network: (e as Error).message };
  }
}

let documented: Set<string> | undefined;

/** The error codes the README's "Errors" section documents: a 503 must carry one of them. */
export function documentedCodes(): Set<string> {
  if (documented) return documented;
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const start = readme.indexOf("\n## Errors");
  const end = readme.indexOf("\n## ", start + 1);
  const section = start < 0 ? "" : readme.slice(start, end < 0 ? undefined : end);
  documented = new Set(section.match(/ERR_[A-Z0-9_]+/g) ?? []);
  return documented;
}

/**
 * Whether a layer answer ≥ 500 is one the contract allows: a documented 503
 * with Retry-After, or (documented too) a 502/504 for a non-idempotent request
 * whose origin failed before answering, which the layer must not send twice.
 */
export function judge5xx(status: number, code: string, retryAfter: string | null, method: string) {
  const known = documentedCodes().has(code);
  if (status === 503 && known && retryAfter) return { allowed: true, kind: "typed503" as const };
  if ((status === 502 || status === 504) && known && method !== "GET" && code.startsWith("ERR_ORIGIN_"))
    return { allowed: true, kind: "originFailed" as const };
  return { allowed: false, kind: "bad5xx" as const };
}
