/**
 * Calls the real Worker (src/index.ts) inside workerd with the real SESSIONS
 * Durable Object namespace and KV, but with ORIGINS and keys pointing at the
 * origins that globalSetup started on 127.0.0.1:0.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, inject } from "vitest";
import worker from "../../src/index.ts";
import type { RecordedRequest, TestRespond } from "../support/origin-server.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";
export const BASE = "https://edge.test";

export function origins(): { id: string; url: string }[] {
  return inject("origins");
}

export function edgeEnv(overrides: Record<string, string | undefined> = {}): Env {
  const merged: Record<string, unknown> = {
    ...env,
    ENVIRONMENT: "production",
    ORIGINS: JSON.stringify(origins()),
    SESSION_SIGNING_KEYS: inject("keys").mixed,
    ADMIN_TOKEN,
    ...overrides,
  };
  for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete merged[k];
  return merged as unknown as Env;
}

export async function callWorker(request: Request, e: Env = edgeEnv()): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request, e, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export function respondWith(r: TestRespond): string {
  const bytes = new TextEncoder().encode(JSON.stringify(r));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

export interface Echo extends RecordedRequest {}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Response the origin should give (status, headers such as X-Edge-Session-Set, body). */
  respond?: TestRespond;
  cf?: Record<string, unknown>;
}

export function cookieFrom(res: Response, name = "__Host-edge-session"): string | undefined {
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const [k, ...v] = (pair ?? "").split("=");
    if (k?.trim() === name) return v.join("=");
  }
  return undefined;
}

/** A browser-like client: keeps the affinity cookie it is given, like a cookie jar would. */
export class BrowserClient {
  cookie: string | undefined;
  /** The successor cookie a login sets beside the main one; a browser sends it back like any cookie. */
  successor: string | undefined;
  readonly tag = crypto.randomUUID();

  constructor(
    readonly env: Env = edgeEnv(),
    readonly cookieName = "__Host-edge-session",
  ) {}

  async send(path: string, o: SendOptions = {}): Promise<Response> {
    const headers = new Headers(o.headers);
    headers.set("x-test-tag", this.tag);
    const jar = [
      this.cookie !== undefined ? `${this.cookieName}=${this.cookie}` : "",
      this.successor !== undefined ? `${this.cookieName}.next=${this.successor}` : "",
    ].filter(Boolean);
    if (jar.length) headers.set("cookie", [headers.get("cookie"), ...jar].filter(Boolean).join("; "));
    if (o.respond) headers.set("x-test-respond", respondWith(o.respond));
    const init: RequestInit & { cf?: Record<string, unknown> } = { method: o.method ?? "GET", headers };
    if (o.body !== undefined) init.body = o.body;
    if (o.cf) init.cf = o.cf;
    const res = await callWorker(new Request(new URL(path, BASE), init), this.env);
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(";");
      const [k, ...v] = (pair ?? "").split("=");
      const name = k?.trim();
      if (name !== this.cookieName && name !== `${this.cookieName}.next`) continue;
      const cleared = attrs.some((a) => a.trim().toLowerCase() === "max-age=0");
      if (name === this.cookieName) this.cookie = cleared ? undefined : v.join("=");
      else this.successor = cleared ? undefined : v.join("=");
    }
    return res;
  }

  /** Sends and reads the origin's JSON echo of what it received. */
  async echo(path = "/echo", o: SendOptions = {}): Promise<{ res: Response; echo: Echo }> {
    const res = await this.send(path, o);
    expect(res.status, await res.clone().text()).toBe(o.respond?.status ?? 200);
    return { res, echo: (await res.json()) as Echo };
  }
}

/** An API client: no cookies; carries the token in X-Edge-Session-Token. */
export class ApiClient {
  token: string | undefined;
  readonly tag = crypto.randomUUID();
  constructor(readonly env: Env = edgeEnv()) {}

  async echo(path = "/echo", o: SendOptions = {}): Promise<{ res: Response; echo: Echo }> {
    const headers = new Headers(o.headers);
    headers.set("x-test-tag", this.tag);
    headers.set("x-edge-session-token", this.token ?? "new");
    if (o.respond) headers.set("x-test-respond", respondWith(o.respond));
    const res = await callWorker(new Request(new URL(path, BASE), { method: o.method ?? "GET", headers }), this.env);
    // Sent when it changed; absent: keep the one held; empty: cleared (logout).
    const t = res.headers.get("x-edge-session-token");
    if (t !== null) this.token = t || undefined;
    return { res, echo: (await res.json()) as Echo };
  }
}

/** Requests an origin recorded for a tag, read straight from the origin (not through the layer). */
export async function receivedBy(originUrl: string, tag: string): Promise<RecordedRequest[]> {
  const res = await fetch(`${originUrl}/__origin/requests?tag=${encodeURIComponent(tag)}`);
  return (await res.json()) as RecordedRequest[];
}

export function header(echo: Echo, name: string): string | undefined {
  const v = echo.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(", ") : v;
}
