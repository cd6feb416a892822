import { log } from "../log.ts";

import type { MetricPoint } from "./metric-point.ts";

export type { MetricEvent, MetricPoint } from "./metric-point.ts";

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
