/** Plain data, shared with the session state machine (which has no bindings). */
/** What the layer counts in Workers Analytics Engine (docs/observability.md). */
export type MetricEvent = "repin" | "restore" | "migration" | "token_rejected";

export interface MetricPoint {
  event: MetricEvent;
  /** The origin the session is on afterwards (for a rejected token: the one the new session went to). */
  origin: string;
  /** The session's home region afterwards. */
  region: string;
  /** Why: the move reason, the trigger, or the token's refusal code. */
  detail: string;
  /** Milliseconds, where the event has a duration (a migration's hand-over); else 0. */
  ms?: number;
}
