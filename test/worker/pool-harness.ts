/** Origins of a test's own (started, stopped, broken through the control server) and the pool object that watches them. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { inject } from "vitest";
import type { PoolObject } from "../../src/origins/index.ts";
import type { PoolState } from "../../src/origins/pool-object.ts";
import { ADMIN_TOKEN, BASE, callWorker, edgeEnv } from "./harness.ts";

export interface TestOrigin {
  id: string;
  url: string;
  region?: string;
  weight?: number;
  health?: { path: string; interval?: number; rise?: number; fall?: number; timeout?: number };
}

async function control(path: string, method = "POST", body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${inject("controlUrl")}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`control ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

export async function spawnOrigins(
  n: number,
  extra: (i: number) => Partial<TestOrigin> = () => ({}),
): Promise<TestOrigin[]> {
  const prefix = crypto.randomUUID().slice(0, 6);
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const o = await control("/origins", "POST", { id: `${prefix}-${i}` });
      return { id: String(o.id), url: String(o.url), ...extra(i) };
    }),
  );
}

export const stopOrigin = (id: string) => control(`/origins/${id}/stop`);
export const startOrigin = (id: string) => control(`/origins/${id}/start`);
export const failOrigin = (id: string, status: number | null) => control(`/origins/${id}/fail`, "POST", { status });

/** An env for a test's own pool: its origins, its own control-plane object, no view caching. */
export function poolEnv(origins: TestOrigin[], overrides: Record<string, string | undefined> = {}): Env {
  return edgeEnv({
    ORIGINS: JSON.stringify(origins),
    POOL_NAME: `pool-${crypto.randomUUID().slice(0, 12)}`,
    POOL_CACHE_SECONDS: "0",
    ...overrides,
  });
}

function poolObject(e: Env): DurableObjectStub<PoolObject> {
  const ns = env.POOLS as unknown as DurableObjectNamespace<PoolObject>;
  return ns.get(ns.idFromName((e as unknown as { POOL_NAME: string }).POOL_NAME));
}

/** One round of active health probes, now (what the alarm does every interval). */
export async function runHealthChecks(e: Env): Promise<void> {
  await runInDurableObject(poolObject(e), (o: PoolObject) => o.runChecks(true));
}

/** Edits the pool's stored state, e.g. to move a health `since` into the past. */
export async function editPool(e: Env, edit: (s: PoolState) => void): Promise<void> {
  await runInDurableObject(poolObject(e), (_o: PoolObject, state) => {
    const s = state.storage.kv.get<PoolState>("pool");
    if (!s) throw new Error("pool has no state yet");
    edit(s);
    state.storage.kv.put("pool", s);
  });
}

export async function admin(e: Env, method: string, path: string, body?: unknown): Promise<Response> {
  const init: RequestInit = {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  return callWorker(new Request(`${BASE}/__edge${path}`, init), e);
}

export interface OriginStatus {
  id: string;
  sessions: number;
  takesNewSessions: boolean;
  ejectedUntil: string | null;
  health: { state: string };
  drain: { status: string; deadline: string | null } | null;
}

export async function originsStatus(e: Env): Promise<OriginStatus[]> {
  const res = await admin(e, "GET", "/origins");
  if (res.status !== 200) throw new Error(`GET /__edge/origins: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { origins: OriginStatus[] }).origins;
}
