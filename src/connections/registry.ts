/**
 * This isolate's long-lived connections: counted per origin in memory, and
 * reported to the pool object as a whole count now and then (not an RPC per
 * connection). Each connection watches the pool view on a timer of its own,
 * because a timer belongs to the request that set it and ends with it.
 */
import type { EdgeConfig } from "../config/index.ts";
import { log } from "../log.ts";
import { poolStub, poolView } from "../origins/index.ts";
import { closeAtDeadline, drainCloseAt, type LongLivedKind } from "./plan.ts";

/** While connections are open, the isolate re-reports at least this often (the pool forgets silent isolates after 30 s). */
const HEARTBEAT_MS = 10_000;

export interface HeldConnection {
  oid: string;
  kind: LongLivedKind;
  /** This connection's place in a drain's batches, uniform in [0, 1). */
  u: number;
  /** It cannot move to another origin: closed at the drain's deadline, not in the batches before it. */
  untilDeadline: boolean;
  /** Closes it with the reconnect hint (WebSocket 1012, SSE `retry`). */
  closeForDrain(): void;
}

interface Entry {
  held: HeldConnection;
  done: boolean;
  tick?: ReturnType<typeof setTimeout>;
  closeAt?: number;
  closing?: ReturnType<typeof setTimeout>;
}

const open = new Map<string, number>();
const drainClosed = new Map<string, number>();
let isolateId: string | undefined;
let lastReport = 0;
let dirty = false;
let reporting = false;

function add(map: Map<string, number>, oid: string, n: number): void {
  const next = (map.get(oid) ?? 0) + n;
  if (next > 0) map.set(oid, next);
  else map.delete(oid);
}

/** Open long-lived connections in this isolate, per origin (for tests and logs). */
export function openHere(): Record<string, number> {
  return Object.fromEntries(open);
}

async function report(env: Env, cfg: EdgeConfig, force: boolean): Promise<void> {
  const now = Date.now();
  const pollMs = pollInterval(cfg);
  const due = force || (dirty && now - lastReport >= pollMs) || (open.size > 0 && now - lastReport >= HEARTBEAT_MS);
  if (!due || reporting) return;
  reporting = true;
  dirty = false;
  lastReport = now;
  isolateId ??= crypto.randomUUID();
  const closed = Object.fromEntries(drainClosed);
  drainClosed.clear();
  try {
    await poolStub(env, cfg).reportConnections(isolateId, Object.fromEntries(open), closed);
  } catch (e) {
    // Counts are whole on the next report; closes are put back so they are not lost.
    for (const [oid, n] of Object.entries(closed)) add(drainClosed, oid, n);
    dirty = true;
    log("warn", "connections_report_failed", { message: String(e) });
  } finally {
    reporting = false;
  }
}

function pollInterval(cfg: EdgeConfig): number {
  return Math.max(1000, cfg.pool.cacheSeconds * 1000);
}

/**
 * Counts a connection and watches its origin's drain until it ends. Returns
 * the function to call once it has closed, whoever closed it.
 */
export function watchConnection(env: Env, cfg: EdgeConfig, held: HeldConnection): () => void {
  const entry: Entry = { held, done: false };
  add(open, held.oid, 1);
  dirty = true;
  const pollMs = pollInterval(cfg);

  const closeNow = () => {
    if (entry.done) return;
    add(drainClosed, held.oid, 1);
    dirty = true;
    log("info", "connection_drained", { oid: held.oid, kind: held.kind });
    held.closeForDrain();
  };

  const tick = async () => {
    if (entry.done) return;
    const now = Date.now();
    const drain = (await poolView(env, cfg, now))?.origins[held.oid]?.drain;
    const closeAt = !drain
      ? undefined
      : held.untilDeadline
        ? closeAtDeadline(drain, held.u, pollMs)
        : drainCloseAt(drain, held.u, now, pollMs);
    if (closeAt !== entry.closeAt) {
      clearTimeout(entry.closing);
      entry.closeAt = closeAt;
      // Set once the slot is near: a drain cancelled before then never closes anything.
      entry.closing = undefined;
    }
    if (closeAt !== undefined && !entry.closing && closeAt - now <= pollMs * 1.5)
      entry.closing = setTimeout(closeNow, Math.max(0, closeAt - now));
    await report(env, cfg, false);
    if (!entry.done) entry.tick = setTimeout(tick, pollMs * (0.75 + held.u * 0.5));
  };
  entry.tick = setTimeout(tick, Math.min(pollMs, 250 + held.u * 750));

  return () => {
    if (entry.done) return;
    entry.done = true;
    clearTimeout(entry.tick);
    clearTimeout(entry.closing);
    add(open, held.oid, -1);
    dirty = true;
    void report(env, cfg, open.size === 0);
  };
}
