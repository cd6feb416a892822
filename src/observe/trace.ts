import { tryGetContext } from "hono/context-storage";
import type { AppEnv } from "../app-env.ts";

/** The Server-Timing metrics the request path reports. */
export type TimingMetric = "token" | "session" | "origin";

/**
 * What one proxied request did, for its Server-Timing and X-Edge-Session-Status
 * headers. It lives in the request's Hono context; the steps reach it through
 * Hono's context storage, so recording a step is one call where it happens,
 * not a parameter threaded through every step.
 */
export class Trace {
  readonly durations = new Map<TimingMetric, number>();
  /** Steps being timed, innermost last (see timed). */
  readonly open: { nested: number }[] = [];
  restored = false;
  repin: string | undefined;
  /** Set once the session is known: whether it came from a token, which epoch the token named, and the refusal. */
  session: { presentedEp: number | undefined; ep: number; refused: string | undefined } | undefined;

  add(metric: TimingMetric, ms: number): void {
    this.durations.set(metric, (this.durations.get(metric) ?? 0) + ms);
  }

  /**
   * `restored` (rebuilt from its snapshot), `migrated` (the token named an
   * older epoch: the session had moved), `repin; reason=…` (a new origin),
   * `new` (no usable token; `reason=` names the refusal), else `hit`.
   * Undefined when the request failed before its session was settled (a
   * strict-mode 401, no origin at all): there is nothing to explain.
   */
  status(): string | undefined {
    const s = this.session;
    if (!s && !this.restored) return undefined;
    const parts: string[] = [];
    if (this.restored) parts.push("restored");
    else if (s?.presentedEp !== undefined && s.presentedEp !== s.ep) parts.push("migrated");
    if (s && s.presentedEp === undefined) parts.push(s.refused ? `new; reason=${s.refused}` : "new");
    if (this.repin) parts.push(`repin; reason=${this.repin}`);
    return parts.length ? parts.join(", ") : "hit";
  }
}

/** This request's trace, if the code runs inside a proxied request (not in an object, not in the operator API). */
export function currentTrace(): Trace | undefined {
  return tryGetContext<AppEnv>()?.var.trace;
}

/**
 * Times one step. Steps nest (the origin step re-pins, which calls the session
 * object): a nested step's time counts for its own metric and is taken out of
 * the enclosing one, so the metrics add up to the time spent, without overlap.
 *
 * Workers timers only advance across I/O (a Spectre mitigation): a step that
 * is pure computation, such as verifying a token with keys already imported,
 * reads 0 in production; RPCs and fetches read true.
 */
export async function timed<T>(metric: TimingMetric, step: () => Promise<T>): Promise<T> {
  const trace = currentTrace();
  if (!trace) return step();
  const frame = { nested: 0 };
  const parent = trace.open.at(-1);
  trace.open.push(frame);
  const start = performance.now();
  try {
    return await step();
  } finally {
    const elapsed = performance.now() - start;
    trace.open.splice(trace.open.indexOf(frame), 1);
    trace.add(metric, Math.max(0, elapsed - frame.nested));
    if (parent) parent.nested += elapsed;
  }
}
