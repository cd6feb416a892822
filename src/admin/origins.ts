import type { EdgeConfig } from "../config/index.ts";
import { type DrainState, type PoolView, takesSessions } from "../origins/index.ts";

const iso = (ms: number | undefined | null) => (ms === undefined || ms === null ? null : new Date(ms).toISOString());

export function drainView(d: DrainState) {
  return {
    since: new Date(d.since).toISOString(),
    deadline: iso(d.deadline),
    status: d.completedAt ? ("complete" as const) : ("draining" as const),
    completedAt: iso(d.completedAt),
  };
}

/** The operator's picture of the pool: configuration joined with what the control plane knows. */
export function originsView(cfg: EdgeConfig, view: PoolView | undefined) {
  const now = Date.now();
  return cfg.origins.map((o) => {
    const rt = view?.origins[o.id];
    return {
      id: o.id,
      url: o.url,
      region: o.region ?? null,
      weight: o.weight,
      health: {
        state: rt?.health.state ?? "healthy",
        since: new Date(rt?.health.since ?? now).toISOString(),
        checked: Boolean(o.health),
        lastCheckAt: iso(rt?.health.lastCheckAt),
        lastError: rt?.health.lastError ?? null,
      },
      ejectedUntil: (rt?.ejectedUntil ?? 0) > now ? iso(rt?.ejectedUntil) : null,
      takesNewSessions: takesSessions(o, view, now),
      sessions: rt?.sessions ?? 0,
      drain: rt?.drain ? drainView(rt.drain) : null,
      connections: view?.connections?.[o.id] ?? { open: 0, drainClosed: 0 },
    };
  });
}
