import type { EdgeConfig } from "../config/index.ts";
import { log } from "../log.ts";
import type { PoolRpc } from "./pool-object.ts";
import type { PoolView } from "./types.ts";

/** The control plane of the pool called `name` (POOL_NAME). */
export function poolStubNamed(env: Env, name: string): PoolRpc {
  const ns = env.POOLS;
  return ns.get(ns.idFromName(name)) as unknown as PoolRpc;
}

export function poolStub(env: Env, cfg: EdgeConfig): PoolRpc {
  return poolStubNamed(env, cfg.pool.name);
}

interface CachedView {
  view: PoolView | undefined;
  at: number;
}

/** Plain data only: a pending RPC must never be shared between requests (see poolView). */
const cache = new Map<string, CachedView>();

/**
 * The pool view for this isolate, refreshed at most every POOL_CACHE_SECONDS.
 * If the pool object cannot be reached, the last view is used (or none, which
 * treats every origin as healthy): the control plane failing must not take the
 * data plane down with it.
 *
 * Only the resolved view is shared between requests, never the in-flight call:
 * I/O belongs to the request that started it, and a request awaiting another
 * request's RPC hangs if that request ends first ("Cannot perform I/O on behalf
 * of a different request"). Requests that find the copy stale at the same moment
 * each refresh it, which costs a few extra calls per interval.
 */
export async function poolView(env: Env, cfg: EdgeConfig, now = Date.now()): Promise<PoolView | undefined> {
  const key = cfg.pool.name;
  const entry = cache.get(key);
  if (entry?.view && now - entry.at < cfg.pool.cacheSeconds * 1000) return entry.view;
  try {
    const view = await poolStub(env, cfg).view(cfg.origins);
    cache.set(key, { view, at: Date.now() });
    return view;
  } catch (err) {
    log("warn", "pool_view_failed", { pool: key, message: String(err) });
    return entry?.view;
  }
}

/** Forget this isolate's copy, after an operator change made here. */
export function invalidatePoolView(cfg: EdgeConfig): void {
  cache.delete(cfg.pool.name);
}

/** Tells the pool that sessions ended, so every isolate stops answering them from its read cache. */
export function reportEnded(env: Env, cfg: EdgeConfig, sids: string[]): Promise<void> {
  if (!sids.length || cfg.readCacheSeconds <= 0) return Promise.resolve();
  return poolStub(env, cfg)
    .reportEnded(sids)
    .catch((err: unknown) => log("warn", "pool_report_failed", { message: String(err) }));
}
