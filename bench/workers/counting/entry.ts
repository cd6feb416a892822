/**
 * The real edge-session Worker (src/index.ts, unchanged) with counting
 * wrappers around what the platform bills, for the cost and KV-write figures
 * (bench/cost.ts). Only that figure runs this bundle; every other figure runs
 * the deployed bundle.
 *
 * - `SNAPSHOTS` (KV) is wrapped in the Worker's env and in each object's env:
 *   every get/getWithMetadata/put/delete/list is counted, by the session id in
 *   its key (`snap:<sid>`, `fence:<sid>`).
 * - `SessionObject` is subclassed: each RPC method and alarm invocation is
 *   counted, its wall time measured (busy time: overlapping calls on one
 *   object count once), and `ctx.storage` is wrapped to count what SQLite-backed
 *   storage bills: `kv.get` (rows read), `kv.put` / `kv.delete` / `setAlarm` /
 *   `deleteAlarm` / `deleteAll` (rows written).
 * - `PoolObject` calls are counted per method (the control plane).
 *
 *   GET    /__bench/counts   → { sessions: { <sid>: Counts }, pool: { <method>: n } }
 *   DELETE /__bench/counts   → resets them
 *
 * Module state is shared because workerd runs a Worker and its Durable Objects
 * in one isolate locally.
 */
import edge, { PoolObject as RealPool, SessionObject as RealSession } from "../../../src/index.ts";
import type { Counts } from "./counts.ts";

// The per-user index is not billed per session request (only at login and logout): exported as it is.
export { PrincipalObject } from "../../../src/index.ts";

const sessions = new Map<string, Counts>();
const pool: Record<string, number> = {};

function countsFor(sid: string): Counts {
  let c = sessions.get(sid);
  if (!c) {
    c = { objectCalls: {}, objectBusyMs: 0, storage: {}, kv: {}, kvBytesWritten: 0, poolCalls: {}, objects: [] };
    sessions.set(sid, c);
  }
  return c;
}

const bump = (r: Record<string, number>, key: string) => {
  r[key] = (r[key] ?? 0) + 1;
};

function sidOfKey(key: string): string {
  return key.slice(key.indexOf(":") + 1);
}

function countingKv(kv: KVNamespace): KVNamespace {
  const op = (name: string, key: string) => bump(countsFor(sidOfKey(key)).kv, name);
  const wrapped = {
    get: (key: string, options?: unknown) => {
      op("get", key);
      return kv.get(key, options as never);
    },
    getWithMetadata: (key: string, options?: unknown) => {
      op("getWithMetadata", key);
      return kv.getWithMetadata(key, options as never);
    },
    put: (key: string, value: string, options?: KVNamespacePutOptions) => {
      op("put", key);
      countsFor(sidOfKey(key)).kvBytesWritten += typeof value === "string" ? value.length : 0;
      return kv.put(key, value, options);
    },
    delete: (key: string) => {
      op("delete", key);
      return kv.delete(key);
    },
    list: (options?: KVNamespaceListOptions) => {
      bump(pool, "kv.list");
      return kv.list(options);
    },
  };
  return wrapped as unknown as KVNamespace;
}

const wrappedEnvs = new WeakMap<object, Env>();
function countingEnv(env: Env): Env {
  let wrapped = wrappedEnvs.get(env);
  if (!wrapped) {
    wrapped = { ...env, SNAPSHOTS: countingKv(env.SNAPSHOTS) };
    wrappedEnvs.set(env, wrapped);
  }
  return wrapped;
}

/** The pool namespace as a session's object sees it: each call on a pool stub counted against the session. */
function countingPools(pools: Env["POOLS"], sid: string): Env["POOLS"] {
  const get = (id: DurableObjectId) => {
    const stub = pools.get(id);
    return new Proxy(stub, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        if (typeof value !== "function" || typeof prop !== "string") return value;
        return (...args: unknown[]) => {
          bump(countsFor(sid).poolCalls, prop);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  };
  return new Proxy(pools, {
    get(target, prop) {
      if (prop === "get") return get;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Storage with each billed operation counted against the object's session. */
function countingStorage(storage: DurableObjectStorage, counts: () => Counts): DurableObjectStorage {
  const op = (name: string) => bump(counts().storage, name);
  const kv = storage.kv;
  const kvWrapped = {
    get: (key: string) => {
      op("kv.get");
      return kv.get(key);
    },
    put: (key: string, value: unknown) => {
      op("kv.put");
      return kv.put(key, value);
    },
    delete: (key: string) => {
      op("kv.delete");
      return kv.delete(key);
    },
    list: (options?: unknown) => {
      op("kv.list");
      return kv.list(options as never);
    },
  };
  const counted = new Set(["setAlarm", "deleteAlarm", "getAlarm", "deleteAll"]);
  return new Proxy(storage, {
    get(target, prop) {
      if (prop === "kv") return kvWrapped;
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      if (typeof prop === "string" && counted.has(prop))
        return (...args: unknown[]) => {
          op(prop);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

function countingCtx(ctx: DurableObjectState, counts: () => Counts): DurableObjectState {
  const storage = countingStorage(ctx.storage, counts);
  return new Proxy(ctx, {
    get(target, prop) {
      if (prop === "storage") return storage;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export class SessionObject extends RealSession {
  #sid: string;
  #busy = 0;
  #busySince = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    const name = ctx.id.name ?? ctx.id.toString();
    const sid = name.replace(/^eu\//, "").split(":")[0] ?? name;
    super(ctx, { ...countingEnv(env), POOLS: countingPools(env.POOLS, sid) });
    // The base class insists on the real state object; the object's code reads it back as this.ctx.
    Object.defineProperty(this, "ctx", { value: countingCtx(ctx, () => countsFor(sid)), configurable: true });
    this.#sid = sid;
    const c = countsFor(sid);
    if (!c.objects.includes(name)) c.objects.push(name);
  }

  async #timed<T>(method: string, run: () => Promise<T>): Promise<T> {
    const c = countsFor(this.#sid);
    bump(c.objectCalls, method);
    if (this.#busy++ === 0) this.#busySince = performance.now();
    try {
      return await run();
    } finally {
      if (--this.#busy === 0) countsFor(this.#sid).objectBusyMs += performance.now() - this.#busySince;
    }
  }

  override read(...a: Parameters<RealSession["read"]>) {
    return this.#timed("read", () => super.read(...a));
  }
  override write(...a: Parameters<RealSession["write"]>) {
    return this.#timed("write", () => super.write(...a));
  }
  override adopt(...a: Parameters<RealSession["adopt"]>) {
    return this.#timed("adopt", () => super.adopt(...a));
  }
  override restore(...a: Parameters<RealSession["restore"]>) {
    return this.#timed("restore", () => super.restore(...a));
  }
  override fence(...a: Parameters<RealSession["fence"]>) {
    return this.#timed("fence", () => super.fence(...a));
  }
  override migrate(...a: Parameters<RealSession["migrate"]>) {
    return this.#timed("migrate", () => super.migrate(...a));
  }
  override revoke(...a: Parameters<RealSession["revoke"]>) {
    return this.#timed("revoke", () => super.revoke(...a));
  }
  override inspect() {
    return this.#timed("inspect", () => super.inspect());
  }
  override alarm() {
    return this.#timed("alarm", () => super.alarm());
  }
}

/** The control plane, each call counted by method. */
export class PoolObject extends RealPool {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, countingEnv(env));
  }
  override view(...a: Parameters<RealPool["view"]>) {
    bump(pool, "view");
    return super.view(...a);
  }
  override adjustSessions(...a: Parameters<RealPool["adjustSessions"]>) {
    bump(pool, "adjustSessions");
    return super.adjustSessions(...a);
  }
  override recordEvent(...a: Parameters<RealPool["recordEvent"]>) {
    bump(pool, "recordEvent");
    return super.recordEvent(...a);
  }
  override reportEjection(...a: Parameters<RealPool["reportEjection"]>) {
    bump(pool, "reportEjection");
    return super.reportEjection(...a);
  }
  override alarm() {
    bump(pool, "alarm");
    return super.alarm();
  }
}

function countsJson(): Response {
  return Response.json({ sessions: Object.fromEntries(sessions), pool });
}

export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/counts") {
      if (request.method === "DELETE") {
        sessions.clear();
        for (const k of Object.keys(pool)) delete pool[k];
      }
      return countsJson();
    }
    return edge.fetch(request, countingEnv(env), ctx);
  },
} satisfies ExportedHandler<Env>;
