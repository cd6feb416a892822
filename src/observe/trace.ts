/** The Server-Timing metrics the request path reports. */
export type TimingMetric = "token" | "session" | "origin";
const METRICS: readonly TimingMetric[] = ["token", "session", "origin"];

/**
 * What one proxied request did, for its Server-Timing and X-Edge-Session-Status
 * headers. It travels in the request's scope (src/proxy/steps.ts RequestScope).
 */
export class Trace {
  readonly startedAt = performance.now();
  readonly durations = new Map<TimingMetric, number>();
  /** The step being timed now, if any (see timed). */
  open: { nested: number } | undefined;
  restored = false;
  repin: string | undefined;
  /** Set once the session is known: whether it came from a token, which epoch the token named, and the refusal. */
  session: { presentedEp: number | undefined; ep: number; refused: string | undefined } | undefined;

  add(metric: TimingMetric, ms: number): void {
    this.durations.set(metric, (this.durations.get(metric) ?? 0) + ms);
  }

  /** The Server-Timing value: each step timed, then the total (milliseconds, one decimal). */
  serverTiming(): string {
    let out = "";
    for (const metric of METRICS) {
      const ms = this.durations.get(metric);
      if (ms !== undefined) out += `${metric};dur=${ms.toFixed(1)},`;
    }
    return `${out}total;dur=${(performance.now() - this.startedAt).toFixed(1)}`;
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

/**
 * Times one step. Steps nest (the origin step re-pins, which calls the session
 * object): a nested step's time counts for its own metric and is taken out of
 * the enclosing one, so the metrics add up to the time spent, without overlap.
 *
 * Workers timers only advance across I/O (a Spectre mitigation): a step that
 * is pure computation, such as verifying a token with keys already imported,
 * reads 0 in production; RPCs and fetches read true.
 */
export async function timed<T>(trace: Trace, metric: TimingMetric, step: () => Promise<T>): Promise<T> {
  const parent = trace.open;
  const frame = { nested: 0 };
  trace.open = frame;
  const start = performance.now();
  try {
    return await step();
  } finally {
    const elapsed = performance.now() - start;
    trace.open = parent;
    trace.add(metric, Math.max(0, elapsed - frame.nested));
    if (parent) parent.nested += elapsed;
  }
}
