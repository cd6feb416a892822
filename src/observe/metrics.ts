import { log } from "../log.ts";

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

let warned = false;

/**
 * One data point: index = event (the sampling key), blobs = event, origin,
 * region, detail; doubles = count (1), duration in ms. Without a METRICS
 * binding nothing is written; a failing write is logged once and never
 * reaches the request: metrics must not take the data path down.
 */
export function writeMetric(env: Env, p: MetricPoint): void {
  const dataset = (env as Partial<Env>).METRICS;
  if (!dataset) return;
  try {
    dataset.writeDataPoint({
      indexes: [p.event],
      blobs: [p.event, p.origin, p.region, p.detail],
      doubles: [1, p.ms ?? 0],
    });
  } catch (e) {
    if (!warned) log("warn", "metrics_write_failed", { message: String(e) });
    warned = true;
  }
}
