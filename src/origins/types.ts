/** What the control plane knows about one origin, beyond its configuration. Times are epoch ms. */
export interface OriginHealth {
  state: "healthy" | "unhealthy";
  /** When the origin entered its current state. */
  since: number;
  /** Consecutive probe results in the current run (toward rise or fall). */
  successes: number;
  failures: number;
  lastCheckAt?: number;
  lastError?: string;
}

export interface DrainState {
  since: number;
  /** After this instant the origin's sessions move on their next request; null: they stay until they end. */
  deadline: number | null;
  /** Set once no session is left on the origin. */
  completedAt?: number;
}

export interface OriginRuntime {
  health: OriginHealth;
  drain?: DrainState;
  /** Passive outlier ejection (from real traffic), reported by isolates. */
  ejectedUntil?: number;
  ejections: number;
  /** Sessions with stored state assigned to this origin. */
  sessions: number;
}

export interface PoolEvent {
  at: number;
  event: string;
  oid: string;
  detail?: string;
}

export interface PoolView {
  fetchedAt: number;
  origins: Record<string, OriginRuntime>;
  /** Live sessions with stored state, by home region. */
  regions: Record<string, number>;
  faults: Fault[];
  events: PoolEvent[];
  /**
   * Sessions ended recently (logout, login rotation, revoke), sid → when: an isolate never answers
   * them from its read cache, so an end reaches every isolate within POOL_CACHE_SECONDS.
   */
  ended?: Record<string, number>;
}

export type MoveReason = "unhealthy" | "ejected" | "drained" | "removed" | "connect_failed" | "return_home";

/** Development and test only: pretend part of the system is down or slow (see /__edge/faults). */
export interface Fault {
  target: string;
  mode: "down" | "slow";
  ms?: number;
}
