import type { EdgeConfig } from "../config/index.ts";
import { type DrainState, type PoolEvent, type PoolView, takesSessions } from "../origins/index.ts";
import { originHealth } from "./health.ts";

const iso = (ms: number | undefined | null) => (ms === undefined || ms === null ? null : new Date(ms).toISOString());

export function drainView(d: DrainState) {
  return {
    since: new Date(d.since).toISOString(),
    deadline: iso(d.deadline),
    status: d.completedAt ? ("complete" as const) : ("draining" as const),
    completedAt: iso(d.completedAt),
  };
}

/** Injected faults count only where the proxy honours them. */
const faultsOf = (cfg: EdgeConfig, view: PoolView | undefined) => (cfg.faultInjection ? (view?.faults ?? []) : []);

/** The operator's picture of the pool: configuration joined with what the control plane knows. */
export function originsView(cfg: EdgeConfig, view: PoolView | undefined, now = Date.now()) {
  const faults = faultsOf(cfg, view);
  return cfg.origins.map((o) => {
    const rt = view?.origins[o.id];
    return {
      id: o.id,
      url: o.url,
      region: o.region ?? null,
      weight: o.weight,
      status: originHealth(o, rt, faults, now),
      health: {
        state: rt?.health.state ?? "healthy",
        since: new Date(rt?.health.since ?? now).toISOString(),
        checked: Boolean(o.health),
        lastCheckAt: iso(rt?.health.lastCheckAt),
        lastError: rt?.health.lastError ?? null,
        recentErrors: (rt?.health.recentErrors ?? []).map((e) => ({
          at: new Date(e.at).toISOString(),
          error: e.error,
        })),
      },
      ejectedUntil: (rt?.ejectedUntil ?? 0) > now ? iso(rt?.ejectedUntil) : null,
      takesNewSessions: takesSessions(o, view, now),
      sessions: rt?.sessions ?? 0,
      drain: rt?.drain ? drainView(rt.drain) : null,
      connections: view?.connections?.[o.id] ?? { open: 0, drainClosed: 0 },
    };
  });
}

/**
 * The configured origin an event belongs to, or null: fault events name their
 * target (`origin:<id>`, `region:<hint>`, `*`), and origins since removed from
 * ORIGINS keep their old events. The timeline draws lanes for configured origins only.
 */
export function laneOf(e: PoolEvent, configured: ReadonlySet<string>): string | null {
  const oid = e.oid.startsWith("origin:") ? e.oid.slice("origin:".length) : e.oid;
  return configured.has(oid) ? oid : null;
}

/**
 * Everything the dashboard draws. Session counts are kept per origin and per
 * region by the same updates, so they agree, except for sessions still pinned
 * to an origin that is no longer in ORIGINS (after a restart with another
 * pool): those count in their region but on no listed origin, and are reported
 * apart (`unlisted`) until they move on their next request or end.
 */
export function statsView(cfg: EdgeConfig, view: PoolView | undefined, now = Date.now()) {
  const origins = originsView(cfg, view, now);
  const configured = new Set(cfg.origins.map((o) => o.id));
  const unlisted = Object.entries(view?.origins ?? {})
    .filter(([id, rt]) => !configured.has(id) && rt.sessions > 0)
    .map(([id, rt]) => ({ id, sessions: rt.sessions }));
  const regions = Object.entries(view?.regions ?? {})
    .filter(([, n]) => n > 0)
    .map(([region, sessions]) => ({ region, sessions }));
  const sum = <T>(xs: T[], f: (x: T) => number) => xs.reduce((n, x) => n + f(x), 0);
  return {
    origins,
    regions,
    totals: {
      sessions: sum(origins, (o) => o.sessions) + sum(unlisted, (u) => u.sessions),
      onListedOrigins: sum(origins, (o) => o.sessions),
      byRegion: sum(regions, (r) => r.sessions),
      unlisted,
    },
    events: (view?.events ?? []).map((e) => ({
      at: new Date(e.at).toISOString(),
      event: e.event,
      oid: e.oid,
      lane: laneOf(e, configured),
      detail: e.detail ?? null,
    })),
  };
}
