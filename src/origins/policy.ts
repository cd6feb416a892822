/**
 * Origin policy as pure functions over plain data: which origins may keep or
 * take sessions, and where a session goes. The proxy (mechanism) calls these.
 */
import type { OriginConfig } from "../config/index.ts";
import type { WeightedRoundRobin } from "./choose.ts";
import type { MoveReason, OriginRuntime, PoolView } from "./types.ts";

const HEALTHY: OriginRuntime = {
  health: { state: "healthy", since: 0, successes: 0, failures: 0 },
  ejections: 0,
  sessions: 0,
};

export function runtimeOf(view: PoolView | undefined, oid: string): OriginRuntime {
  return view?.origins[oid] ?? HEALTHY;
}

export function isEjected(rt: OriginRuntime, now: number, localUntil?: number): boolean {
  return (rt.ejectedUntil ?? 0) > now || (localUntil ?? 0) > now;
}

/** Why a session must leave its origin now, if it must. A draining origin keeps its sessions until the deadline. */
export function leaveReason(
  origins: readonly OriginConfig[],
  view: PoolView | undefined,
  oid: string,
  now: number,
  localEjectedUntil?: number,
): MoveReason | undefined {
  if (!origins.some((o) => o.id === oid)) return "removed";
  const rt = runtimeOf(view, oid);
  if (rt.health.state === "unhealthy") return "unhealthy";
  if (isEjected(rt, now, localEjectedUntil)) return "ejected";
  if (rt.drain && rt.drain.deadline !== null && now >= rt.drain.deadline) return "drained";
  return undefined;
}

/** May this origin be given new sessions (or sessions failing over)? */
export function takesSessions(
  o: OriginConfig,
  view: PoolView | undefined,
  now: number,
  localEjectedUntil?: number,
): boolean {
  if (o.weight <= 0) return false;
  // An origin the operator marked down (fault injection) is known to be down: no new sessions.
  if ((view?.faults ?? []).some((f) => f.mode === "down" && f.target === `origin:${o.id}`)) return false;
  const rt = runtimeOf(view, o.id);
  return rt.health.state === "healthy" && !isEjected(rt, now, localEjectedUntil) && !rt.drain;
}

/**
 * Per-isolate record of recent new-session assignments, for bounded load: no
 * origin gets more than `factor` times its weighted share of the last N.
 */
export class RecentAssignments {
  readonly #ring: string[] = [];
  constructor(readonly size = 200) {}

  count(oid: string): number {
    return this.#ring.filter((id) => id === oid).length;
  }

  get total(): number {
    return this.#ring.length;
  }

  add(oid: string): void {
    this.#ring.push(oid);
    if (this.#ring.length > this.size) this.#ring.shift();
  }
}

export interface SteeringInput {
  origins: readonly OriginConfig[];
  view: PoolView | undefined;
  now: number;
  /** The client's region (location hint). */
  region: string;
  /** Origins not to use (already tried in this request). */
  exclude?: ReadonlySet<string>;
  localEjections?: ReadonlyMap<string, number>;
  boundedLoadFactor: number;
}

/**
 * Picks an origin for a new (or failing-over) session: healthy, not ejected,
 * not draining; preferring the client's region; weighted; and bounded, so that
 * region preference cannot push an origin past `factor` × its fair share.
 */
export function steer(
  input: SteeringInput,
  rr: WeightedRoundRobin,
  recent: RecentAssignments,
): OriginConfig | undefined {
  const { origins, view, now, region, exclude, localEjections } = input;
  const eligible = origins.filter((o) => !exclude?.has(o.id) && takesSessions(o, view, now, localEjections?.get(o.id)));
  if (!eligible.length) return undefined;
  const totalWeight = eligible.reduce((sum, o) => sum + o.weight, 0);
  const n = recent.total + 1;
  const underCap = (o: OriginConfig) =>
    recent.count(o.id) + 1 <= Math.ceil((input.boundedLoadFactor * n * o.weight) / totalWeight);
  const regional = eligible.filter((o) => o.region === region && underCap(o));
  const pool = regional.length ? regional : eligible.filter(underCap);
  const chosen = rr.next(pool.length ? pool : eligible);
  if (chosen) recent.add(chosen.id);
  return chosen;
}

/**
 * `temporary` failover: a session returns to its home origin once that origin
 * has been able to take sessions for `afterMs` without interruption (hysteresis,
 * so a flapping origin does not bounce sessions back and forth).
 */
export function mayReturnHome(
  home: OriginConfig | undefined,
  view: PoolView | undefined,
  now: number,
  afterMs: number,
  localEjectedUntil?: number,
): boolean {
  if (!home || !takesSessions(home, view, now, localEjectedUntil)) return false;
  const rt = runtimeOf(view, home.id);
  const upSince = Math.max(rt.health.since, rt.ejectedUntil ?? 0, localEjectedUntil ?? 0);
  return now - upSince >= afterMs;
}

/** RFC 9110 §9.2.2 idempotent methods, plus any request carrying an Idempotency-Key. */
export function isRetryable(method: string, headers: Headers): boolean {
  return ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"].includes(method.toUpperCase()) || headers.has("idempotency-key");
}
