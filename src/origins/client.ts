import type { EdgeConfig } from "../config/index.ts";
import { log } from "../log.ts";
import type { PoolRpc } from "./pool-object.ts";
import type { PoolView } from "./types.ts";

export function poolStub(env: Env, cfg: EdgeConfig): PoolRpc {
  const ns = env.POOLS;
  return ns.get(ns.idFromName(cfg.pool.name)) as unknown as PoolRpc;
}

interface CachedView {
  view: PoolView | undefined;
  at: number;
  pending: Promise<PoolView | undefined> | undefined;
}

const cache = new Map<string, CachedView>();

/**
 * The pool view for this isolate, refreshed at most every POOL_CACHE_SECONDS.
 * If the pool object cannot be reached, the last view is used (or none, which
 * treats every origin as healthy): the control plane failing must not take the
 * data plane down with it.
 */
export async function poolView(env: Env, cfg: EdgeConfig, now = Date.now()): Promise<PoolView | undefined> {
  const key = cfg.pool.name;
  let entry = cache.get(key);
  if (!entry) {
    entry = { view: undefined, at: 0, pending: undefined };
    cache.set(key, entry);
  }
  if (entry.view && now - entry.at < cfg.pool.cacheSeconds * 1000) return entry.view;
  if (!entry.pending) {
    const e = entry;
    e.pending = poolStub(env, cfg)
      .view(cfg.origins)
      .then((view) => {
        e.view = view;
        e.at = Date.now();
        return view;
      })
      .catch((err: unknown) => {
        log("warn", "pool_view_failed", { pool: key, message: String(err) });
        return e.view;
      })
      .finally(() => {
        e.pending = undefined;
      });
  }
  return entry.pending;
}

/** Forget this isolate's copy, after an operator change made here. */
export function invalidatePoolView(cfg: EdgeConfig): void {
  cache.delete(cfg.pool.name);
}
