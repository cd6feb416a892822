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
  /** The last few failed probes, newest last, kept after the origin recovers: what the operator reads first. */
  recentErrors?: { at: number; error: string }[];
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
  /** Long-lived connections (WebSocket, SSE) per origin, as isolates last reported them. */
  connections?: Record<string, OriginConnections>;
  /**
   * Sessions ended recently (logout, login rotation, revoke), sid → when: an isolate never answers
   * them from its read cache, so an end reaches every isolate within POOL_CACHE_SECONDS.
   */
  ended?: Record<string, number>;
}

export interface OriginConnections {
  /** Open now, summed over the isolates that reported recently. */
  open: number;
  /** Closed by the layer because the origin is draining, since its drain started. */
  drainClosed: number;
}

export type MoveReason =
  | "unhealthy"
  | "ejected"
  | "drained"
  | "removed"
  | "connect_failed"
  | "return_home"
  /** A learned id (LEARNED_AFFINITY) names another origin than the edge session's. */
  | "learned";

/** Development and test only: pretend part of the system is down or slow (see /__edge/faults). */
export interface Fault {
  target: string;
  mode: "down" | "slow";
  ms?: number;
}
