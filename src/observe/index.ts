import type { LiveSession } from "../session/index.ts";
import { writeMetric } from "./metrics.ts";
import type { Trace } from "./trace.ts";

export { type MetricEvent, writeMetric } from "./metrics.ts";
export { type TimingMetric, Trace, timed } from "./trace.ts";

export const STATUS_HEADER = "x-edge-session-status";

/**
 * Explainable routing for the proxied path: `Server-Timing` (token, session,
 * origin, total) on every response, errors included, and, with
 * SESSION_STATUS_HEADER on, `X-Edge-Session-Status`. The origin's own
 * Server-Timing entries are kept; ours are appended.
 */
export function explainResponse(response: Response, trace: Trace, statusHeader: boolean): Response {
  let res = response;
  const timing = trace.serverTiming();
  const status = statusHeader ? trace.status() : undefined;
  try {
    res.headers.append("server-timing", timing);
  } catch {
    // A response whose headers are immutable (straight from fetch): copy it once.
    res = new Response(res.body, res);
    res.headers.append("server-timing", timing);
  }
  if (status) res.headers.set(STATUS_HEADER, status);
  return res;
}

/** The session this request runs with (src/app.ts, once it is known); a refused token is counted. */
export function explainSession(
  env: Env,
  trace: Trace,
  session: LiveSession,
  refused: { code: string } | undefined,
): void {
  trace.session = { presentedEp: session.presented?.ep, ep: session.epoch, refused: refused?.code };
  if (refused)
    writeMetric(env, { event: "token_rejected", origin: session.origin, region: session.region, detail: refused.code });
}

/** A session moved to another origin (src/proxy/route.ts). */
export function explainRepin(env: Env, trace: Trace, s: LiveSession, to: string, reason: string): void {
  trace.repin = reason;
  writeMetric(env, { event: "repin", origin: to, region: s.region, detail: `${s.origin}→${to} ${reason}` });
}

/** A session rebuilt from its snapshot after its object was unreachable (src/proxy/steps.ts). */
export function explainRestore(env: Env, trace: Trace, s: LiveSession, from: string, cause: string): void {
  trace.restored = true;
  writeMetric(env, { event: "restore", origin: s.origin, region: s.region, detail: `${from}→${s.region} ${cause}` });
}
