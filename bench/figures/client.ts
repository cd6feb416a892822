/**
 * A browser-like client for the figures: one session (its affinity cookie,
 * updated from every Set-Cookie), timed requests, and the operator API.
 */
import { COOKIE_NAME } from "../scenarios.ts";

export interface Timed {
  status: number;
  /** Milliseconds from sending the request to the end of the response body. */
  ms: number;
  /** When the response ended (performance.now()). */
  at: number;
  body: string;
  headers: Headers;
}

export interface RequestOptions {
  method?: string;
  /** Headers the bench origin copies onto its response (see bench/origin-server.ts). */
  reply?: Record<string, string>;
  headers?: Record<string, string>;
}

export class Client {
  cookie: string | undefined;
  readonly base: string;

  constructor(base: string) {
    this.base = base;
  }

  async request(path: string, o: RequestOptions = {}): Promise<Timed> {
    const headers: Record<string, string> = { ...o.headers };
    if (this.cookie) headers.cookie = this.cookie;
    if (o.reply) headers["x-bench-reply"] = JSON.stringify(o.reply);
    const started = performance.now();
    const res = await fetch(`${this.base}${path}`, { method: o.method ?? "GET", headers, redirect: "manual" });
    const body = await res.text();
    const at = performance.now();
    const set = res.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE_NAME}=`));
    if (set) this.cookie = set.split(";", 1)[0];
    return { status: res.status, ms: at - started, at, body, headers: res.headers };
  }

  /** The affinity token's claims (decoded, not verified). */
  claims(): Record<string, unknown> {
    const payload = this.cookie?.split("=")[1]?.split(".")[1];
    if (!payload) throw new Error("no session cookie yet");
    return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  }

  /** A new session with stored state: one request for the cookie, one origin write. */
  async stored(patch: Record<string, unknown> = { started: true }): Promise<this> {
    await this.ok("/");
    await this.ok("/", { reply: { "x-edge-session-set": JSON.stringify(patch) } });
    return this;
  }

  async ok(path: string, o: RequestOptions = {}): Promise<Timed> {
    const r = await this.request(path, o);
    if (r.status !== 200) throw new Error(`${o.method ?? "GET"} ${path} answered ${r.status}: ${r.body.slice(0, 300)}`);
    return r;
  }
}

/** The operator API (`/__edge/…`) with the admin token. */
export function adminApi(base: string, token: string) {
  const call = async (method: string, path: string, body?: unknown) => {
    const started = performance.now();
    const res = await fetch(`${base}/__edge${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const ms = performance.now() - started;
    if (res.status >= 300) throw new Error(`${method} /__edge${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return { status: res.status, ms, json: (text ? JSON.parse(text) : null) as Record<string, unknown> };
  };
  return {
    session: (sid: string) => call("GET", `/sessions/${sid}`),
    migrate: (sid: string, region: string) => call("POST", `/sessions/${sid}/migrate`, { region }),
    fault: (target: string, mode: "down" | "slow", ms?: number) =>
      call("POST", "/faults", { target, mode, ...(ms ? { ms } : {}) }),
    clearFaults: () => call("DELETE", "/faults"),
  };
}
export type AdminApi = ReturnType<typeof adminApi>;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
