import type { EdgeConfig } from "../config/index.ts";
import { log } from "../log.ts";
import type { CountDelta } from "../session/record.ts";
import type { PoolRpc } from "./pool-object.ts";
import type { Fault, PoolView } from "./types.ts";

/** The control plane of the pool called `name` (POOL_NAME). */
export function poolStubNamed(env: Env, name: string): PoolRpc {
  const ns = env.POOLS;
  return ns.get(ns.idFromName(name)) as unknown as PoolRpc;
}

export function poolStub(env: Env, cfg: EdgeConfig): PoolRpc {
  return poolStubNamed(env, cfg.pool.name);
}

/**
 * Live-session counts a session object decided (it owns them), passed on to its
 * pool. Best effort: a lost increment is not replayed (README, known limits).
 */
export function reportCounts(env: Env, pool: string, counts: CountDelta | undefined): Promise<void> {
  if (!counts) return Promise.resolve();
  return poolStubNamed(env, pool)
    .adjustSessions(counts.sessions, counts.regions)
    .catch(() => {});
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

/**
 * The newest view this isolate holds, without I/O. A request reads it before
 * each decision (placement, retry, restore), not only once at its start: an
 * operator change made in this isolate while the request is in flight counts.
 */
export function currentPoolView(cfg: EdgeConfig): PoolView | undefined {
  return cache.get(cfg.pool.name)?.view;
}

/**
 * After an operator change made here (drain, undrain, faults): the pool's
 * answer becomes this isolate's view at once. Other isolates pick it up on
 * their next refresh, within POOL_CACHE_SECONDS.
 */
export async function refreshPoolView(env: Env, cfg: EdgeConfig): Promise<PoolView> {
  const view = await poolStub(env, cfg).view(cfg.origins);
  cache.set(cfg.pool.name, { view, at: Date.now() });
  return view;
}

/**
 * How long a region whose session object this isolate failed to reach counts
 * as down for new placements. Short: it is a hint from one failure, and a
 * session placed elsewhere only costs latency, while one placed into a dead
 * region loses its first write.
 */
export const REGION_DOWN_MEMORY_MS = 10_000;

/** Per isolate and pool: region → until when it counts as down. */
const observedDown = new Map<string, Map<string, number>>();

/** A call to a session object in `region` failed (error, timeout or injected fault). */
export function observeRegionDown(cfg: EdgeConfig, region: string, now = Date.now()): void {
  const regions = observedDown.get(cfg.pool.name) ?? new Map<string, number>();
  regions.set(region, now + REGION_DOWN_MEMORY_MS);
  observedDown.set(cfg.pool.name, regions);
}

/** The operator cleared the injected faults: what this isolate observed while they held is moot. */
export function forgetObservedRegions(cfg: EdgeConfig): void {
  observedDown.delete(cfg.pool.name);
}

/** Regions known to be down: the pool's injected faults plus what this isolate just observed. */
export function regionsDown(cfg: EdgeConfig, faults: readonly Fault[], now = Date.now()): Set<string> {
  const down = new Set<string>();
  for (const f of faults)
    if (f.mode === "down" && f.target.startsWith("region:")) down.add(f.target.slice("region:".length));
  for (const [region, until] of observedDown.get(cfg.pool.name) ?? [])
    if (until > now) down.add(region);
    else observedDown.get(cfg.pool.name)?.delete(region);
  return down;
}

/** Tells the pool that sessions ended, so every isolate stops answering them from its read cache. */
export function reportEnded(env: Env, cfg: EdgeConfig, sids: string[]): Promise<void> {
  if (!sids.length || cfg.readCacheSeconds <= 0) return Promise.resolve();
  return poolStub(env, cfg)
    .reportEnded(sids)
    .catch((err: unknown) => log("warn", "pool_report_failed", { message: String(err) }));
}
