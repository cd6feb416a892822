import { DurableObject } from "cloudflare:workers";
import { VERSION } from "../admin/version.ts";
import type { OriginConfig } from "../config/index.ts";
import { log } from "../log.ts";
import { ORIGIN_AUTH_HEADER } from "../proxy/headers.ts";
import type {
  DrainState,
  Fault,
  OriginConnections,
  OriginHealth,
  OriginRuntime,
  PoolEvent,
  PoolView,
} from "./types.ts";

/** What every active health probe sends (documented in docs/origins.md). */
export const PROBE_HEADERS = { "user-agent": `edge-session-health/${VERSION}`, "x-edge-session-probe": "1" };

export interface PoolState {
  origins: OriginConfig[];
  runtime: Record<string, OriginRuntime>;
  /** Live sessions with stored state, by home region. */
  regions?: Record<string, number>;
  faults?: Fault[];
  /** When each origin is next due for a probe. */
  nextCheck: Record<string, number>;
  events: PoolEvent[];
  /** Long-lived connections: each isolate's last report, and closes by drain per origin. */
  connections?: { isolates: Record<string, IsolateReport>; drainClosed: Record<string, number> };
}

interface IsolateReport {
  at: number;
  open: Record<string, number>;
}

/** An isolate that has not reported for this long is gone (it re-reports every few seconds while it holds connections). */
export const ISOLATE_REPORT_TTL_MS = 30_000;

const KEY = "pool";
const MAX_EVENTS = 200;
const RECENT_PROBE_ERRORS = 5;
/** Kept apart from the pool state, so the frequent count updates do not rewrite it. */
const ENDED_KEY = "ended";
/**
 * Recent ends are kept as long as any isolate may still hold a copy of the session (READ_CACHE_SECONDS
 * is at most 60), and at most this many: past that, the oldest fall back to the READ_CACHE_SECONDS bound.
 */
const ENDED_KEEP_MS = 60_000;
const MAX_ENDED = 1000;

/** The control plane's RPC surface, as the Worker calls it. */
export interface PoolRpc {
  view(origins: OriginConfig[]): Promise<PoolView>;
  drain(oid: string, deadline: number | null): Promise<DrainState | undefined>;
  undrain(oid: string): Promise<boolean>;
  reportEjection(oid: string, until: number): Promise<void>;
  adjustSessions(deltas: Record<string, number>, regions?: Record<string, number>): Promise<void>;
  recordEvent(event: string, oid: string, detail?: string): Promise<void>;
  reportEnded(sids: string[]): Promise<void>;
  runChecks(force?: boolean): Promise<void>;
  setFault(fault: Fault): Promise<Fault[]>;
  clearFaults(): Promise<void>;
  /** The faults in force, for objects that reach session objects themselves (the principal index). */
  faults(): Promise<Fault[]>;
  reportConnections(isolate: string, open: Record<string, number>, drainClosed: Record<string, number>): Promise<void>;
}

/** Open connections per origin summed over live isolate reports, with the drain closes. */
export function connectionTotals(c: PoolState["connections"], now: number): Record<string, OriginConnections> {
  const out: Record<string, OriginConnections> = {};
  const at = (oid: string) => {
    out[oid] ??= { open: 0, drainClosed: 0 };
    return out[oid];
  };
  for (const r of Object.values(c?.isolates ?? {}))
    if (now - r.at < ISOLATE_REPORT_TTL_MS) for (const [oid, n] of Object.entries(r.open)) at(oid).open += n;
  for (const [oid, n] of Object.entries(c?.drainClosed ?? {})) at(oid).drainClosed += n;
  return out;
}

function freshRuntime(now: number): OriginRuntime {
  return { health: { state: "healthy", since: now, successes: 0, failures: 0 }, ejections: 0, sessions: 0 };
}

/**
 * One object per pool (POOL_NAME): origin health from active probes (an alarm),
 * passive ejections reported by isolates, drains, live session counts and a
 * short event log. Isolates read it through a view they cache for a few
 * seconds, so the hot path rarely calls it.
 */
export class PoolObject extends DurableObject<Env> implements PoolRpc {
  #load(): PoolState {
    return this.ctx.storage.kv.get<PoolState>(KEY) ?? { origins: [], runtime: {}, nextCheck: {}, events: [] };
  }

  #save(state: PoolState): void {
    this.ctx.storage.kv.put(KEY, state);
  }

  #event(state: PoolState, event: string, oid: string, detail?: string): void {
    state.events.push({ at: Date.now(), event, oid, ...(detail ? { detail } : {}) });
    if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
    log("info", event, { oid, ...(detail ? { detail } : {}) });
  }

  #rt(state: PoolState, oid: string): OriginRuntime {
    let rt = state.runtime[oid];
    if (!rt) {
      rt = freshRuntime(Date.now());
      state.runtime[oid] = rt;
    }
    return rt;
  }

  /** Completes a drain once no session is left on the origin. */
  #checkDrain(state: PoolState, oid: string): void {
    const rt = state.runtime[oid];
    if (rt?.drain && !rt.drain.completedAt && rt.sessions <= 0) {
      rt.drain.completedAt = Date.now();
      this.#event(state, "drain_complete", oid);
    }
  }

  async #scheduleChecks(state: PoolState): Promise<void> {
    const due = state.origins.filter((o) => o.health).map((o) => state.nextCheck[o.id] ?? Date.now());
    if (!due.length) return;
    const next = Math.min(...due);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  async view(origins: OriginConfig[]): Promise<PoolView> {
    const state = this.#load();
    if (JSON.stringify(state.origins) !== JSON.stringify(origins)) {
      state.origins = origins;
      for (const o of origins) this.#rt(state, o.id);
      this.#save(state);
      await this.#scheduleChecks(state);
    }
    return {
      fetchedAt: Date.now(),
      origins: state.runtime,
      regions: state.regions ?? {},
      events: state.events.slice(-50),
      faults: state.faults ?? [],
      connections: connectionTotals(state.connections, Date.now()),
      ended: this.#ended(Date.now()),
    };
  }

  /** Recent session ends, pruned to the window in which an isolate can still hold a copy. */
  #ended(now: number): Record<string, number> {
    const ended = this.ctx.storage.kv.get<Record<string, number>>(ENDED_KEY) ?? {};
    for (const [sid, at] of Object.entries(ended)) if (now - at > ENDED_KEEP_MS) delete ended[sid];
    return ended;
  }

  async reportEnded(sids: string[]): Promise<void> {
    const now = Date.now();
    const ended = this.#ended(now);
    for (const sid of sids) ended[sid] = now;
    const entries = Object.entries(ended);
    // Oldest first out (insertion order is time order).
    const kept = entries.length > MAX_ENDED ? Object.fromEntries(entries.slice(-MAX_ENDED)) : ended;
    this.ctx.storage.kv.put(ENDED_KEY, kept);
  }

  async drain(oid: string, deadline: number | null): Promise<DrainState | undefined> {
    const state = this.#load();
    if (!state.origins.some((o) => o.id === oid)) return undefined;
    const rt = this.#rt(state, oid);
    rt.drain = { since: Date.now(), deadline };
    if (state.connections) state.connections.drainClosed[oid] = 0;
    const until = deadline === null ? "no deadline" : `deadline ${new Date(deadline).toISOString()}`;
    this.#event(state, "drain_started", oid, `${until}, ${rt.sessions} sessions`);
    this.#checkDrain(state, oid);
    this.#save(state);
    return rt.drain;
  }

  async undrain(oid: string): Promise<boolean> {
    const state = this.#load();
    const rt = state.runtime[oid];
    if (!rt?.drain) return false;
    delete rt.drain;
    this.#event(state, "drain_cancelled", oid);
    this.#save(state);
    return true;
  }

  async reportEjection(oid: string, until: number): Promise<void> {
    const state = this.#load();
    const rt = this.#rt(state, oid);
    if ((rt.ejectedUntil ?? 0) >= until) return;
    rt.ejectedUntil = until;
    rt.ejections += 1;
    this.#event(state, "origin_ejected", oid, `until ${new Date(until).toISOString()}`);
    this.#save(state);
  }

  async adjustSessions(deltas: Record<string, number>, regions: Record<string, number> = {}): Promise<void> {
    const state = this.#load();
    for (const [oid, delta] of Object.entries(deltas)) {
      const rt = this.#rt(state, oid);
      rt.sessions = Math.max(0, rt.sessions + delta);
      this.#checkDrain(state, oid);
    }
    state.regions ??= {};
    for (const [reg, delta] of Object.entries(regions))
      state.regions[reg] = Math.max(0, (state.regions[reg] ?? 0) + delta);
    this.#save(state);
  }

  /**
   * An isolate's open long-lived connections per origin (its whole count, so a
   * lost report is corrected by the next) and the ones it closed for a drain
   * since its last report (added up here).
   */
  async reportConnections(
    isolate: string,
    open: Record<string, number>,
    drainClosed: Record<string, number>,
  ): Promise<void> {
    const state = this.#load();
    const now = Date.now();
    state.connections ??= { isolates: {}, drainClosed: {} };
    const c = state.connections;
    c.isolates[isolate] = { at: now, open };
    for (const [id, r] of Object.entries(c.isolates)) if (now - r.at >= ISOLATE_REPORT_TTL_MS) delete c.isolates[id];
    for (const [oid, n] of Object.entries(drainClosed)) {
      if (n <= 0) continue;
      c.drainClosed[oid] = (c.drainClosed[oid] ?? 0) + n;
      this.#event(state, "connections_drained", oid, `${n} long-lived connection${n === 1 ? "" : "s"} closed`);
    }
    this.#save(state);
  }

  async setFault(fault: Fault): Promise<Fault[]> {
    const state = this.#load();
    state.faults = [...(state.faults ?? []).filter((f) => f.target !== fault.target), fault];
    this.#event(state, "fault_injected", fault.target, `${fault.mode}${fault.ms ? ` ${fault.ms} ms` : ""}`);
    this.#save(state);
    return state.faults;
  }

  async clearFaults(): Promise<void> {
    const state = this.#load();
    state.faults = [];
    this.#event(state, "faults_cleared", "*");
    this.#save(state);
  }

  async faults(): Promise<Fault[]> {
    return this.#load().faults ?? [];
  }

  async recordEvent(event: string, oid: string, detail?: string): Promise<void> {
    const state = this.#load();
    this.#event(state, event, oid, detail);
    this.#save(state);
  }

  async #probe(o: OriginConfig): Promise<{ ok: boolean; error?: string }> {
    const health = o.health;
    if (!health) return { ok: true };
    try {
      // Same env as the Worker: origins that lock out direct traffic see the layer's secret on probes too.
      const secret = (this.env as { ORIGIN_AUTH_SECRET?: string }).ORIGIN_AUTH_SECRET;
      const res = await fetch(`${o.url}${health.path}`, {
        signal: AbortSignal.timeout(health.timeout),
        redirect: "manual",
        // A probe carries no X-Edge-Session (it belongs to no session): these let an origin that requires the
        // header tell a probe apart and exempt its health path (docs/origins.md). Origins only ever get
        // X-Edge-Session-* from the layer, so a client cannot send this one through it.
        headers: secret ? { ...PROBE_HEADERS, [ORIGIN_AUTH_HEADER]: secret } : PROBE_HEADERS,
      });
      await res.body?.cancel();
      return res.status < 400 ? { ok: true } : { ok: false, error: `status ${res.status}` };
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }

  /** One round of active probes for every origin that is due (or all, when forced). */
  async runChecks(force = false): Promise<void> {
    const now = Date.now();
    const due = this.#load().origins.filter((o) => o.health && (force || (this.#load().nextCheck[o.id] ?? 0) <= now));
    // Probing awaits fetch, which opens the input gate: gather results first, then apply them in one step.
    const results = await Promise.all(due.map(async (o) => ({ o, result: await this.#probe(o) })));
    const state = this.#load();
    for (const { o, result } of results) {
      const health = o.health;
      if (!health) continue;
      this.#apply(state, o.id, this.#rt(state, o.id).health, result, health.rise, health.fall);
      state.nextCheck[o.id] = Date.now() + health.interval * 1000;
    }
    this.#save(state);
    await this.#scheduleChecks(state);
  }

  #apply(
    state: PoolState,
    oid: string,
    h: OriginHealth,
    result: { ok: boolean; error?: string },
    rise: number,
    fall: number,
  ): void {
    const now = Date.now();
    h.lastCheckAt = now;
    if (result.ok) {
      h.successes += 1;
      h.failures = 0;
      delete h.lastError;
      if (h.state === "unhealthy" && h.successes >= rise) {
        Object.assign(h, { state: "healthy", since: now, successes: 0 });
        this.#event(state, "origin_healthy", oid);
      }
    } else {
      h.failures += 1;
      h.successes = 0;
      h.lastError = result.error ?? "failed";
      h.recentErrors = [...(h.recentErrors ?? []), { at: now, error: h.lastError }].slice(-RECENT_PROBE_ERRORS);
      if (h.state === "healthy" && h.failures >= fall) {
        Object.assign(h, { state: "unhealthy", since: now, failures: 0 });
        this.#event(state, "origin_unhealthy", oid, h.lastError);
      }
    }
  }

  override async alarm(): Promise<void> {
    await this.runChecks();
  }
}
