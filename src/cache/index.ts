import { LRUCache } from "lru-cache";
import type { EdgeConfig } from "../config/index.ts";
import type { CommitOutcome, LiveSession } from "../session/index.ts";
import {
  type CacheLimits,
  DEFAULT_LIMITS,
  type EntryTimes,
  entryBytes,
  readDecision,
  replaces,
  type StateRef,
} from "./policy.ts";

export { type CacheLimits, compareStates, covers, DEFAULT_LIMITS, readDecision, replaces } from "./policy.ts";

/** What a token names: the session and the state its holder has seen. */
export interface Named extends StateRef {
  sid: string;
}

interface Entry extends EntryTimes {
  ref: StateRef;
  /** The state as the object answered it, without anything that belongs to one request. */
  session: LiveSession;
}

/** The state alone: the token a client presented, a move reason and a client binding belong to one request. */
function stateOf(s: LiveSession): LiveSession {
  const { presented: _p, moved: _m, cb: _c, ...state } = s;
  return state;
}

/**
 * Per-isolate copies of session states (READ_CACHE_SECONDS), one per session:
 * the newest state this isolate has seen confirmed by its object. Bounded by
 * entries and by bytes (LRU), with a per-entry cap so that one large session
 * cannot push out the rest. The rules are in policy.ts.
 */
export class ReadCache {
  // Strict mode holds nothing, so it allocates nothing (lru-cache sizes its index arrays by `max`).
  readonly #lru: LRUCache<string, Entry> | undefined;
  readonly periodMs: number;

  constructor(periodSeconds: number, limits: CacheLimits = DEFAULT_LIMITS) {
    this.periodMs = periodSeconds * 1000;
    if (this.periodMs > 0)
      this.#lru = new LRUCache<string, Entry>({
        max: limits.maxEntries,
        maxSize: limits.maxBytes,
        maxEntrySize: limits.maxEntryBytes,
        sizeCalculation: (e) => entryBytes(e.session.dataBytes),
      });
  }

  get enabled(): boolean {
    return this.#lru !== undefined;
  }

  /** Entries and bytes held (for tests and the bench). */
  get size(): { entries: number; bytes: number } {
    return { entries: this.#lru?.size ?? 0, bytes: this.#lru?.calculatedSize ?? 0 };
  }

  /**
   * Decides whether a token's read can be answered from memory. When it can, the
   * state is returned; `confirm` says this request should start a background
   * confirmation (its start is recorded, so concurrent requests start only one).
   */
  lookup(named: Named, endedInPool: boolean, now = Date.now()): { session: LiveSession; confirm: boolean } | undefined {
    const lru = this.#lru;
    if (!lru) return undefined;
    const entry = lru.get(named.sid);
    const decision = readDecision(entry, named, now, this.periodMs, endedInPool);
    if (!entry) return undefined;
    if (!decision.serve) {
      // An expired copy, or one the pool says has ended, can only mislead; one that is behind the
      // token is about to be replaced by the object's answer anyway.
      if (decision.why !== "behind") lru.delete(named.sid);
      return undefined;
    }
    if (decision.confirm) entry.confirmStartedAt = now;
    return { session: entry.session, confirm: decision.confirm };
  }

  /** The object's answer for a session, asked at `askedAt`: kept unless a newer one is already held. */
  confirm(s: LiveSession, askedAt: number): void {
    const lru = this.#lru;
    if (!lru) return;
    const ref: StateRef = { ep: s.epoch, ver: s.version, oid: s.origin };
    if (!replaces(lru.peek(s.sid), ref, askedAt)) return;
    lru.set(s.sid, { ref, confirmedAt: askedAt, session: stateOf(s) });
  }

  /** Forget a session: it ended, moved, or the object refused a change to it. */
  evict(sid: string): void {
    this.#lru?.delete(sid);
  }

  /**
   * What a committed change means for the copies here: this isolate sees its own
   * changes at once. Returns the sessions that ended, for the pool to tell the
   * other isolates (within POOL_CACHE_SECONDS).
   */
  afterCommit(before: LiveSession, outcome: CommitOutcome | undefined, askedAt: number): string[] {
    if (!this.enabled) return [];
    switch (outcome?.kind) {
      case "updated":
        this.confirm(outcome.session, askedAt);
        return [];
      case "rotated":
        this.evict(before.sid);
        this.confirm(outcome.session, askedAt);
        return [before.sid];
      case "logged-out":
        this.evict(before.sid);
        return [before.sid];
      default:
        // Refused (a version conflict, an end, a migration in progress) or not known to have
        // happened: this copy may be behind the object, so the next read asks it.
        this.evict(before.sid);
        return [];
    }
  }
}

const caches = new WeakMap<EdgeConfig, ReadCache>();

/** This isolate's read cache for a configuration (a new configuration starts empty). */
export function readCacheFor(cfg: EdgeConfig): ReadCache {
  let cache = caches.get(cfg);
  if (!cache) {
    cache = new ReadCache(cfg.readCacheSeconds);
    caches.set(cfg, cache);
  }
  return cache;
}
