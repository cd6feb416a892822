/**
 * The layer as an operator sees it: real origins (test/support/origin-server.ts)
 * and the real Worker under `wrangler dev`, with an admin token, a signing key,
 * and helpers for the operator API and for sessions that store state.
 */
import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair } from "jose";
import { type RunningOrigin, startOrigin } from "../../support/origin-server.ts";
import { startWranglerDev, type WranglerDev } from "./wrangler-dev.ts";

export interface OriginStatus {
  id: string;
  sessions: number;
  status: { state: string; reason: string; conditions: string[] };
  health: { state: string; recentErrors: { at: string; error: string }[] };
  ejectedUntil: string | null;
  drain: { status: string; deadline: string | null } | null;
}

export interface Stats {
  origins: OriginStatus[];
  regions: { region: string; sessions: number }[];
  totals: { sessions: number; onListedOrigins: number; byRegion: number; unlisted: { id: string; sessions: number }[] };
  events: { event: string; oid: string; lane: string | null; detail: string | null }[];
}

export interface FixtureOptions {
  /** Extra fields per origin in ORIGINS (health checks, weight, region), by id. */
  origins?: Record<string, Record<string, unknown>>;
  /** Extra Worker vars. */
  vars?: Record<string, string>;
}

export interface EdgeFixture {
  url: string;
  adminToken: string;
  origins: RunningOrigin[];
  layer: WranglerDev;
  /** The operator API with the Bearer token; throws on any non-2xx. */
  admin<T>(path: string, init?: { method?: string; body?: unknown }): Promise<T>;
  /** One API-client request whose origin answers with X-Edge-Session-Set: `data` (token "new" starts a session). */
  store(token: string, data: Record<string, unknown>): Promise<{ token: string; origin: string }>;
  stop(): Promise<void>;
}

export async function startEdgeFixture(
  ids = ["origin-a", "origin-b", "origin-c"],
  options: FixtureOptions = {},
): Promise<EdgeFixture> {
  const adminToken = randomBytes(24).toString("base64url");
  const origins = await Promise.all(ids.map((id) => startOrigin(id)));
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const keys = { keys: [{ ...(await exportJWK(privateKey)), kid: "dash-ed-1", alg: "EdDSA" }] };
  let layer: WranglerDev;
  try {
    layer = await startWranglerDev({
      vars: {
        ENVIRONMENT: "development",
        ORIGINS: JSON.stringify(origins.map((o) => ({ id: o.id, url: o.url, ...options.origins?.[o.id] }))),
        ...options.vars,
      },
      secrets: { SESSION_SIGNING_KEYS: JSON.stringify(keys), ADMIN_TOKEN: adminToken },
    });
  } catch (e) {
    await Promise.all(origins.map((o) => o.close()));
    throw e;
  }
  const url = layer.url;

  async function admin<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
    const method = init.method ?? "GET";
    const res = await fetch(`${url}/__edge/${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} /__edge/${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async function store(token: string, data: Record<string, unknown>): Promise<{ token: string; origin: string }> {
    const respond = { headers: { "x-edge-session-set": JSON.stringify(data) } };
    const res = await fetch(`${url}/cart`, {
      headers: {
        "x-edge-session-token": token,
        "x-test-respond": Buffer.from(JSON.stringify(respond)).toString("base64url"),
      },
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /cart: ${res.status} ${text}`);
    const echo = JSON.parse(text) as { origin: string };
    return { token: res.headers.get("x-edge-session-token") ?? "", origin: echo.origin };
  }

  return {
    url,
    adminToken,
    origins,
    layer,
    admin,
    store,
    stop: async () => {
      await layer.stop();
      await Promise.all(origins.map((o) => o.close()));
    },
  };
}

/** Polls `probe` until it returns something other than undefined. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

export const totalSessions = (s: Stats) => s.origins.reduce((n, o) => n + o.sessions, 0);
