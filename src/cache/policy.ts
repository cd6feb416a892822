/**
 * The read cache's rules, as pure functions over plain data. A session state at
 * (sid, epoch, version) never changes, so a copy of it is never wrong about that
 * version; what a copy cannot know is whether a newer state, an end or a move
 * exists elsewhere. These rules bound that: a copy answers only while younger
 * than the cache period since its object last confirmed it, only for clients
 * whose token names that version or an older one, and never for a session the
 * pool reports as ended.
 */

/** Where a state sits in a session's history, and the origin it is pinned to. */
export interface StateRef {
  ep: number;
  ver: number;
  oid: string;
}

/** Orders states by epoch, then version: a later epoch (migration, restore) supersedes any version of an earlier one. */
export function compareStates(a: StateRef, b: StateRef): number {
  return a.ep !== b.ep ? a.ep - b.ep : a.ver - b.ver;
}

/**
 * Whether a copy at `held` may answer a client whose token names `named`. The
 * token is a lower bound (like a D1 Sessions bookmark): a copy at least as new
 * keeps the client's reads monotonic and its own writes visible. At the same
 * version the origin must match too: a re-pin moves the origin without a new
 * version, and the client that holds the re-pinned token must not be sent back.
 */
export function covers(held: StateRef, named: StateRef): boolean {
  const order = compareStates(held, named);
  return order > 0 || (order === 0 && held.oid === named.oid);
}

export interface EntryTimes {
  /** When the object was asked for the answer this copy holds (the staleness bound counts from there). */
  confirmedAt: number;
  /** When a background confirmation was last started for it. */
  confirmStartedAt?: number;
}

export type ReadDecision =
  | { serve: true; confirm: boolean }
  | { serve: false; why: "strict" | "absent" | "ended" | "expired" | "behind" };

/**
 * How far into its period a copy is confirmed in the background: late enough
 * that an active session costs its object one read per 80 % of the period, early
 * enough that the answer (one object call; tens of milliseconds at the edge's
 * tail) is back long before the copy expires.
 */
export const CONFIRM_FROM = 0.8;

/**
 * Serve from memory, or ask the object. A copy past CONFIRM_FROM of its period
 * is still served, and the request starts one background confirmation (which
 * doubles as the object's touch for idle timeout and automatic migration), so
 * an active session is re-confirmed before its copy expires and never waits on
 * the object.
 */
export function readDecision(
  entry: (EntryTimes & { ref: StateRef }) | undefined,
  named: StateRef,
  now: number,
  periodMs: number,
  endedInPool: boolean,
): ReadDecision {
  if (periodMs <= 0) return { serve: false, why: "strict" };
  if (endedInPool) return { serve: false, why: "ended" };
  if (!entry) return { serve: false, why: "absent" };
  const age = now - entry.confirmedAt;
  if (age >= periodMs || age < 0) return { serve: false, why: "expired" };
  if (!covers(entry.ref, named)) return { serve: false, why: "behind" };
  const from = periodMs * CONFIRM_FROM;
  const confirm = age >= from && (entry.confirmStartedAt === undefined || now - entry.confirmStartedAt >= from);
  return { serve: true, confirm };
}

/**
 * Whether an answer from the object, asked at `askedAt`, replaces the copy held.
 * A newer state always does; an older one never does (a background read that
 * raced a write made here must not bring the old version back); the same state
 * does when it was asked no earlier (it confirms the copy, or carries a re-pin).
 */
export function replaces(held: (EntryTimes & { ref: StateRef }) | undefined, ref: StateRef, askedAt: number): boolean {
  if (!held) return true;
  const order = compareStates(ref, held.ref);
  if (order !== 0) return order > 0;
  return askedAt >= held.confirmedAt;
}

/** Bytes a copy is charged: the document as JSON, plus what every entry costs whatever its data. */
export const ENTRY_OVERHEAD_BYTES = 512;
export function entryBytes(dataBytes: number): number {
  return dataBytes + ENTRY_OVERHEAD_BYTES;
}

export interface CacheLimits {
  /** Most sessions held. */
  maxEntries: number;
  /** Most bytes held (as entryBytes counts them). */
  maxBytes: number;
  /** The largest single entry: bigger sessions are always read from their object, so one cannot evict the rest. */
  maxEntryBytes: number;
}

/**
 * A Worker isolate has 128 MB. 8 MiB of JSON is roughly 16–32 MiB of heap once
 * parsed, a fraction the rest of the isolate can live with; 1/32 of it per
 * session keeps any one session from taking more than a sliver.
 */
export const DEFAULT_LIMITS: CacheLimits = {
  maxEntries: 10_000,
  maxBytes: 8 * 1024 * 1024,
  maxEntryBytes: 256 * 1024,
};
