import type { MiddlewareHandler } from "hono";
import { setMetric, timing } from "hono/timing";
import type { AppEnv } from "../app-env.ts";
import type { LiveSession } from "../session/index.ts";
import { writeMetric } from "./metrics.ts";
import { currentTrace, Trace } from "./trace.ts";

export { type MetricEvent, writeMetric } from "./metrics.ts";
export { currentTrace, type TimingMetric, Trace, timed } from "./trace.ts";

export const STATUS_HEADER = "x-edge-session-status";

/**
 * Explainable routing for the proxied path: `Server-Timing` (token, session,
 * origin, total) on every response, errors included, and, when
 * SESSION_STATUS_HEADER is on, `X-Edge-Session-Status`. The origin's own
 * Server-Timing entries are kept; ours are appended.
 */
export function explain(): MiddlewareHandler<AppEnv> {
  const serverTiming = timing({ totalDescription: "" });
  return async function explain(c, next) {
    const trace = new Trace();
    c.set("trace", trace);
    await serverTiming(c, async () => {
      await next();
      for (const metric of ["token", "session", "origin"] as const) {
        const ms = trace.durations.get(metric);
        if (ms !== undefined) setMetric(c, metric, ms);
      }
    });
    const status = c.get("config").sessionStatusHeader ? trace.status() : undefined;
    if (status) c.res.headers.set(STATUS_HEADER, status);
  };
}

/** The session this request runs with (src/app.ts, once it is known); a refused token is counted. */
export function explainSession(env: Env, session: LiveSession, refused: { code: string } | undefined): void {
  const trace = currentTrace();
  if (trace) trace.session = { presentedEp: session.presented?.ep, ep: session.epoch, refused: refused?.code };
  if (refused)
    writeMetric(env, { event: "token_rejected", origin: session.origin, region: session.region, detail: refused.code });
}

/** A session moved to another origin (src/proxy/route.ts). */
export function explainRepin(env: Env, s: LiveSession, to: string, reason: string): void {
  const trace = currentTrace();
  if (trace) trace.repin = reason;
  writeMetric(env, { event: "repin", origin: to, region: s.region, detail: `${s.origin}→${to} ${reason}` });
}

/** A session rebuilt from its snapshot after its object was unreachable (src/proxy/steps.ts). */
export function explainRestore(env: Env, s: LiveSession, from: string, cause: string): void {
  const trace = currentTrace();
  if (trace) trace.restored = true;
  writeMetric(env, { event: "restore", origin: s.origin, region: s.region, detail: `${from}→${s.region} ${cause}` });
}
