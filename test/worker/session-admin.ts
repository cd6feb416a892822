/** Operator calls and KV/object inspection shared by the migration and snapshot tests. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { SessionObject } from "../../src/session/index.ts";
import type { StoredSession } from "../../src/session/record.ts";
import { BrowserClient } from "./harness.ts";
import { admin, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { forwardedOf } from "./tokens.ts";

export function objectAt(sid: string, ep: number, jur?: string): DurableObjectStub<SessionObject> {
  // workerd has no jurisdictions: the layer emulates them with a name prefix (see sessionStub).
  const ns = env.SESSIONS as unknown as DurableObjectNamespace<SessionObject>;
  return ns.get(ns.idFromName(jur ? `${jur}/${sid}:${ep}` : `${sid}:${ep}`));
}

export async function storedAt(sid: string, ep: number, jur?: string): Promise<StoredSession | undefined> {
  return runInDurableObject(objectAt(sid, ep, jur), (_o: SessionObject, state) =>
    state.storage.kv.get<StoredSession>("session"),
  );
}

/** What the session object owes and remembers beside the session (machine.ts Book). */
export async function bookAt(sid: string, ep: number): Promise<Record<string, unknown>> {
  return runInDurableObject(
    objectAt(sid, ep),
    (_o: SessionObject, state) => state.storage.kv.get<Record<string, unknown>>("book") ?? {},
  );
}

export async function migrate(e: Env, sid: string, body: unknown): Promise<Response> {
  return admin(e, "POST", `/sessions/${sid}/migrate`, body);
}

export async function sessionOf(client: BrowserClient, path = "/echo", cf?: Record<string, unknown>) {
  const { echo } = await client.echo(path, cf ? { cf } : {});
  return forwardedOf(echo);
}

/** Waits (bounded) until KV holds a snapshot of the session at `version` or later. */
export async function snapshotAtLeast(
  sid: string,
  version: number,
  timeoutMs = 5000,
): Promise<{ value: string; metadata: Record<string, unknown> }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { value, metadata } = await env.SNAPSHOTS.getWithMetadata<Record<string, unknown>>(`snap:${sid}`);
    if (value && metadata && Number(metadata.ver) >= version) return { value, metadata };
    if (Date.now() > until) throw new Error(`no snapshot of ${sid} at version ${version} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const loginWith = (data: unknown) => ({
  respond: { headers: { "x-edge-session-login": '{"sub":"ada"}', "x-edge-session-set": JSON.stringify(data) } },
});

/**
 * `originCount` origins, fault injection on, no automatic migration, strict reads (what these
 * tests assert is what the session objects and snapshots hold, and what the very next request
 * finds), and a logged-in client whose session holds `{ cart: ["tea"] }`.
 */
export async function strictLoggedInSession(originCount: number, overrides: Record<string, string> = {}) {
  const origins = await spawnOrigins(originCount);
  const e = poolEnv(origins, {
    ENVIRONMENT: "staging",
    FAULT_INJECTION: "true",
    AUTO_MIGRATE: "false",
    READ_CACHE_SECONDS: "0",
    ...overrides,
  });
  const client = new BrowserClient(e);
  await client.send("/", loginWith({ cart: ["tea"] }));
  const s = await sessionOf(client);
  return { e, client, sid: String(s.sid), origins };
}
