/**
 * The per-user index as plain data, and the decisions over it (pure). The
 * principal object stores entries; the Worker reaches the sessions they name.
 */

/** One session of a principal: enough to find its object, and to end it if it was never reached. */
export interface PrincipalEntry {
  sid: string;
  epoch: number;
  region: string;
  jurisdiction?: string;
  origin: string;
  /** Epoch ms: when the login created this session id. */
  createdAt: number;
  /** Registration order, assigned by the principal: breaks ties between logins in the same millisecond. */
  seq?: number;
  /** Epoch ms: the session's absolute end; past it, the entry goes without asking the session. */
  expiresAt: number;
  idleMs: number;
  absoluteMs: number;
  pool: string;
  /** A revocation recorded but not yet acknowledged by the session's object (unreachable when asked). */
  revoking?: { since: number; why: string; attempts: number; next: number };
}

/** Entries still worth keeping: a session past its absolute lifetime has ended, whatever its object says. */
export function unexpired(entries: readonly PrincipalEntry[], now: number): PrincipalEntry[] {
  return entries.filter((e) => e.expiresAt > now);
}

/** Oldest first (login time, then registration order), so every caller agrees on which session is "oldest". */
export function byAge(entries: readonly PrincipalEntry[]): PrincipalEntry[] {
  return [...entries].sort((a, b) => a.createdAt - b.createdAt || (a.seq ?? 0) - (b.seq ?? 0));
}

/**
 * The sessions that must end for `keep` to fit under `cap` (0: no cap), given
 * which of the others are alive. Oldest first; sessions already being revoked
 * do not count, and `keep` (the login that is happening) never ends.
 */
export function overCap(live: readonly PrincipalEntry[], cap: number, keep: string): PrincipalEntry[] {
  if (cap <= 0) return [];
  const counted = byAge(live.filter((e) => !e.revoking));
  const excess = counted.length - cap;
  if (excess <= 0) return [];
  return counted.filter((e) => e.sid !== keep).slice(0, excess);
}

/**
 * A revocation still unacknowledged once the session's idle deadline has passed
 * since it was recorded can stop: nobody reached the object meanwhile (or a
 * retry would have), so its own alarm ends it as idle. Until then, retries.
 */
export function revocationMoot(e: PrincipalEntry, now: number, skewMs: number): boolean {
  if (!e.revoking) return false;
  return now >= e.revoking.since + e.idleMs + Math.min(60_000, Math.floor(e.idleMs / 10)) + skewMs;
}

/** Backoff for a revocation the session's object has not acknowledged: 1 s, 2 s, 4 s … at most 30 s. */
export function nextAttempt(attempts: number, now: number): number {
  return now + Math.min(30_000, 1000 * 2 ** attempts);
}
