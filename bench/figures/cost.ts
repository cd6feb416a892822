/**
 * Cost (and KV writes): what a 20-request session really costs in
 * platform operations, counted by the counting shim around the real Worker
 * (bench/workers/counting/entry.ts; see there for what is counted and how).
 *
 * Four shapes of session, 20 sequential requests each:
 *   anonymous  never written: the origin sets nothing
 *   login-3    logs in on request 2 (id rotation), then 2 updates: 3 writes
 *   one-write  a single write, on request 10
 *   every      a write on every request
 *
 * Three runs of them:
 *   burst  back to back (the bench's pace), `burstSessions` sessions per shape,
 *          one shape after another, with workerd's CPU time read around each shape;
 *   paced  one request every `paceMs` (a person clicking), one session per shape,
 *          all shapes at once;
 *   end    what the end of a session costs (the idle timeout's alarm: purge,
 *          snapshot delete, pool count), on a second instance with
 *          SESSION_IDLE_TIMEOUT=10 so that it happens within the run: one burst
 *          session per shape, counts taken 2.5 s after its last request and
 *          again after the timeout (alongside the paced run).
 */
import type { RunningEdge } from "../edge.ts";
import type { Counts } from "../workers/counting/counts.ts";
import { Client, sleep } from "./client.ts";
import { cpuMs } from "./cpu.ts";

export interface ShapeSpec {
  id: string;
  label: string;
  /** What the origin answers to request i (0-based): response headers, or nothing. */
  reply(i: number): Record<string, string> | undefined;
}

const set = (patch: unknown) => ({ "x-edge-session-set": JSON.stringify(patch) });

export const SHAPES: ShapeSpec[] = [
  { id: "anonymous", label: "anonymous, never written", reply: () => undefined },
  {
    id: "login-3",
    label: "logs in, 3 writes (login + 2 updates)",
    reply: (i) =>
      i === 1
        ? { "x-edge-session-login": JSON.stringify({ sub: "user-1", claims: { plan: "pro" } }) }
        : i === 7 || i === 14
          ? set({ cart: [i] })
          : undefined,
  },
  { id: "one-write", label: "1 write in 20", reply: (i) => (i === 9 ? set({ n: i }) : undefined) },
  { id: "every", label: "a write on every request", reply: (i) => set({ n: i }) },
];

export const REQUESTS_PER_SESSION = 20;

/** The operations of one session (or the mean over several). */
export interface SessionOps {
  workerRequests: number;
  objectRequests: number;
  objectCalls: Record<string, number>;
  objectBusyMs: number;
  rowsRead: number;
  rowsWritten: number;
  /** Storage API calls by operation (what the rows are made of). */
  storage: Record<string, number>;
  kvReads: number;
  kvWrites: number;
  kvDeletes: number;
  kvBytesWritten: number;
  /**
   * Control-plane (pool object) calls attributable to the session: live counts and events, not the cached
   * view. Burst: all of the run's such calls per session (shapes run one at a time). End: the calls the
   * session's own objects made.
   */
  poolCalls: number;
  objects: number;
}

export interface ShapeFigures {
  shape: ShapeSpec;
  burst: SessionOps;
  paced: SessionOps;
  end: SessionOps;
  /** workerd's CPU time (Worker, objects, local KV and HTTP) per Worker request, burst run; ms. */
  cpuMsPerRequest: number;
}

export interface CostFigures {
  burstSessions: number;
  paceMs: number;
  shapes: ShapeFigures[];
  /** Pool view refreshes per second of the paced run (per isolate: POOL_CACHE_SECONDS). */
  poolViewsPerSecond: number;
}

interface CountsResponse {
  sessions: Record<string, Counts>;
  pool: Record<string, number>;
}

async function counts(edge: string): Promise<CountsResponse> {
  return (await (await fetch(`${edge}/__bench/counts`)).json()) as CountsResponse;
}

const sum = (r: Record<string, number> | undefined, keys?: string[]) =>
  Object.entries(r ?? {}).reduce((a, [k, n]) => a + (keys && !keys.includes(k) ? 0 : n), 0);

const ATTRIBUTABLE_POOL = ["adjustSessions", "recordEvent", "reportEjection"];

function opsOf(c: CountsResponse, sids: Iterable<string>, requests: number, poolCalls: number): SessionOps {
  const ops: SessionOps = {
    workerRequests: requests,
    objectRequests: 0,
    objectCalls: {},
    objectBusyMs: 0,
    rowsRead: 0,
    rowsWritten: 0,
    storage: {},
    kvReads: 0,
    kvWrites: 0,
    kvDeletes: 0,
    kvBytesWritten: 0,
    poolCalls,
    objects: 0,
  };
  for (const sid of sids) {
    const s = c.sessions[sid];
    if (!s) continue;
    for (const [m, n] of Object.entries(s.objectCalls)) ops.objectCalls[m] = (ops.objectCalls[m] ?? 0) + n;
    for (const [m, n] of Object.entries(s.storage)) ops.storage[m] = (ops.storage[m] ?? 0) + n;
    ops.objectRequests += sum(s.objectCalls);
    ops.objectBusyMs += s.objectBusyMs;
    // SQLite-backed storage bills key-value reads as rows read; puts, deletes and each setAlarm as rows written.
    ops.rowsRead += sum(s.storage, ["kv.get", "kv.list", "getAlarm"]);
    ops.rowsWritten += sum(s.storage, ["kv.put", "kv.delete", "setAlarm", "deleteAlarm", "deleteAll"]);
    ops.kvReads += sum(s.kv, ["get", "getWithMetadata"]);
    ops.kvWrites += sum(s.kv, ["put"]);
    ops.kvDeletes += sum(s.kv, ["delete"]);
    ops.kvBytesWritten += s.kvBytesWritten;
    ops.objects += s.objects.length;
  }
  return ops;
}

function minusRecord(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [m, n] of Object.entries(a)) if (n - (b[m] ?? 0)) out[m] = n - (b[m] ?? 0);
  return out;
}

function meanRecord(all: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of all) for (const [m, k] of Object.entries(r)) out[m] = (out[m] ?? 0) + k / (all.length || 1);
  return out;
}

function minus(a: SessionOps, b: SessionOps): SessionOps {
  const calls = minusRecord(a.objectCalls, b.objectCalls);
  return {
    workerRequests: a.workerRequests - b.workerRequests,
    objectRequests: a.objectRequests - b.objectRequests,
    objectCalls: calls,
    objectBusyMs: a.objectBusyMs - b.objectBusyMs,
    rowsRead: a.rowsRead - b.rowsRead,
    rowsWritten: a.rowsWritten - b.rowsWritten,
    storage: minusRecord(a.storage, b.storage),
    kvReads: a.kvReads - b.kvReads,
    kvWrites: a.kvWrites - b.kvWrites,
    kvDeletes: a.kvDeletes - b.kvDeletes,
    kvBytesWritten: a.kvBytesWritten - b.kvBytesWritten,
    poolCalls: a.poolCalls - b.poolCalls,
    objects: a.objects - b.objects,
  };
}

function mean(all: SessionOps[]): SessionOps {
  const n = all.length || 1;
  const calls = meanRecord(all.map((o) => o.objectCalls));
  const avg = (f: (o: SessionOps) => number) => all.reduce((a, o) => a + f(o), 0) / n;
  return {
    workerRequests: avg((o) => o.workerRequests),
    objectRequests: avg((o) => o.objectRequests),
    objectCalls: calls,
    objectBusyMs: avg((o) => o.objectBusyMs),
    rowsRead: avg((o) => o.rowsRead),
    rowsWritten: avg((o) => o.rowsWritten),
    storage: meanRecord(all.map((o) => o.storage)),
    kvReads: avg((o) => o.kvReads),
    kvWrites: avg((o) => o.kvWrites),
    kvDeletes: avg((o) => o.kvDeletes),
    kvBytesWritten: avg((o) => o.kvBytesWritten),
    poolCalls: avg((o) => o.poolCalls),
    objects: avg((o) => o.objects),
  };
}

/** One session of a shape; returns every session id it had (login rotates it). */
async function runSession(
  edge: string,
  shape: ShapeSpec,
  paceMs: number,
): Promise<{ sids: Set<string>; last: number }> {
  const c = new Client(edge);
  const sids = new Set<string>();
  for (let i = 0; i < REQUESTS_PER_SESSION; i++) {
    const due = performance.now() + paceMs;
    const reply = shape.reply(i);
    await c.ok("/", reply ? { reply } : {});
    sids.add(String(c.claims().sid));
    if (paceMs && i < REQUESTS_PER_SESSION - 1) await sleep(Math.max(0, due - performance.now()));
  }
  return { sids, last: performance.now() };
}

const poolAttributable = (c: CountsResponse) => sum(c.pool, ATTRIBUTABLE_POOL);

export async function costFigures(
  main: RunningEdge & { pid: number | undefined },
  ending: RunningEdge,
  o: { burstSessions: number; paceMs: number; idleTimeoutS: number },
): Promise<CostFigures> {
  // Burst: one shape at a time, CPU time around each.
  const burst = new Map<string, { ops: SessionOps; cpu: number }>();
  for (const shape of SHAPES) {
    const before = await counts(main.url);
    const cpu0 = cpuMs(main.pid);
    const runs: Set<string>[] = [];
    for (let i = 0; i < o.burstSessions; i++) runs.push((await runSession(main.url, shape, 0)).sids);
    await sleep(2500); // owed snapshots (alarms) land
    const cpu1 = cpuMs(main.pid);
    const after = await counts(main.url);
    const pool = (poolAttributable(after) - poolAttributable(before)) / o.burstSessions;
    burst.set(shape.id, {
      ops: mean(runs.map((sids) => opsOf(after, sids, REQUESTS_PER_SESSION, pool))),
      cpu: (cpu1 - cpu0) / (o.burstSessions * REQUESTS_PER_SESSION),
    });
  }

  // Paced (main instance) and end of life (second instance), at the same time.
  const viewsBefore = (await counts(main.url)).pool.view ?? 0;
  const pacedStart = performance.now();
  const [paced, ends] = await Promise.all([
    Promise.all(SHAPES.map((shape) => runSession(main.url, shape, o.paceMs))),
    Promise.all(
      SHAPES.map(async (shape) => {
        const { sids, last } = await runSession(ending.url, shape, 0);
        await sleep(2500);
        const before = await counts(ending.url);
        // The idle deadline is lastSeen + idle/10 + idle + 10 s of clock skew; the tombstone's purge comes sooner.
        await sleep(Math.max(0, last + (o.idleTimeoutS * 1.1 + 10 + 3) * 1000 - performance.now()));
        const after = await counts(ending.url);
        const fromObjects = (c: CountsResponse) => [...sids].reduce((a, sid) => a + sum(c.sessions[sid]?.poolCalls), 0);
        return minus(opsOf(after, sids, 0, fromObjects(after)), opsOf(before, sids, 0, fromObjects(before)));
      }),
    ),
  ]);
  await sleep(2500);
  const afterPaced = await counts(main.url);
  const pacedSeconds = (performance.now() - pacedStart) / 1000;

  return {
    burstSessions: o.burstSessions,
    paceMs: o.paceMs,
    poolViewsPerSecond: ((afterPaced.pool.view ?? 0) - viewsBefore) / pacedSeconds,
    shapes: SHAPES.map((shape, i) => ({
      shape,
      burst: burst.get(shape.id)?.ops ?? mean([]),
      // Pool calls are counted per run, not per session: the paced sessions ran at once, so take the burst figure.
      paced: opsOf(afterPaced, paced[i]?.sids ?? [], REQUESTS_PER_SESSION, burst.get(shape.id)?.ops.poolCalls ?? 0),
      end: ends[i] ?? mean([]),
      cpuMsPerRequest: burst.get(shape.id)?.cpu ?? Number.NaN,
    })),
  };
}
