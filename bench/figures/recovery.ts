/**
 * Figures: recovery time and recovery point when a session's Durable
 * Object is lost, under fault injection (`POST /__edge/faults`, the edge in
 * staging with FAULT_INJECTION=true and POOL_CACHE_SECONDS=0, so a fault is
 * seen by the next request).
 *
 * RTO: a session with stored state and a snapshot; its home region (enam) is
 * made `down` (calls fail at once) or `slow` (calls wait longer than
 * SESSION_TIMEOUT_MS); the time from the fault being in force to the first
 * answered request, which is the restore itself (KV read, fence write, new
 * object in another region).
 *
 * RPO: the client writes a counter into the session every 100 ms (each write
 * acknowledged before the next); after a varying 2–3 s (so the failure lands
 * at varying points of the 1-second snapshot cycle) the region goes down and
 * the next request reads the restored counter. Lost writes = last acknowledged
 * counter − restored counter; the window = how long before the failure the
 * restored write was acknowledged.
 *
 * The fault acts at the Worker's side of the call: the "lost" object keeps
 * running, so its alarm may still write an owed snapshot after the fault is
 * injected, which a real outage would not. The restore's log line says how old
 * the snapshot it restored was, so such a case is seen and counted ("raced").
 * Afterwards KV is read through Miniflare: it must hold the restored epoch's
 * snapshot, not one written late by the fenced object.
 */
import type { Miniflare } from "miniflare";
import { type AdminApi, Client, sleep } from "./client.ts";

export interface RtoFigures {
  mode: "down" | "slow";
  normalMs: number[];
  rtoMs: number[];
  /** From the session_restored log lines: the restore itself, and the age of the snapshot restored. */
  restoreMs: number[];
  problems: string[];
}

export interface RpoRun {
  lostWrites: number;
  /** ms between the restored write's acknowledgement and the failure. */
  windowMs: number;
  /** The snapshot's age when restored, from the session_restored log line. */
  snapshotAgeMs: number;
  /** The old object's alarm wrote a snapshot after the fault went in (a real outage would not). */
  raced: boolean;
  sid: string;
}

export interface RecoveryFigures {
  sessionTimeoutMs: number;
  slowMs: number;
  rto: RtoFigures[];
  rpo: RpoRun[];
  problems: string[];
}

interface RestoreLine {
  sid: string;
  time: string;
  restore_ms: number;
  snapshot_age_ms: number | null;
}

/** session_restored log lines, by sid. */
export class RestoreLog {
  readonly bySid = new Map<string, RestoreLine>();
  onLog = (message: string) => {
    if (!message.includes('"session_restored"')) return;
    try {
      const line = JSON.parse(message) as RestoreLine;
      this.bySid.set(line.sid, line);
    } catch {
      // not one of ours
    }
  };
}

const HOME = "enam";

async function rto(
  edge: string,
  admin: AdminApi,
  log: RestoreLog,
  mode: "down" | "slow",
  slowMs: number,
  repetitions: number,
): Promise<RtoFigures> {
  const f: RtoFigures = { mode, normalMs: [], rtoMs: [], restoreMs: [], problems: [] };
  for (let rep = 0; rep < repetitions; rep++) {
    const c = await new Client(edge).stored({ rep, mode });
    const sid = String(c.claims().sid);
    if (c.claims().reg !== HOME) throw new Error(`sessions start in ${String(c.claims().reg)}, not ${HOME}`);
    await sleep(1200); // the snapshot is written
    for (let i = 0; i < 5; i++) f.normalMs.push((await c.ok("/")).ms);
    await admin.fault(`region:${HOME}`, mode, mode === "slow" ? slowMs : undefined);
    const injected = performance.now();
    try {
      const r = await c.request("/session");
      f.rtoMs.push(r.at - injected);
      const seen = r.status === 200 ? (JSON.parse(r.body) as Record<string, unknown>) : {};
      if (r.status !== 200 || seen.ep !== 2 || seen.reg === HOME || (seen.data as { rep?: number })?.rep !== rep)
        f.problems.push(`${mode} ${rep}: ${r.status} ${r.body.slice(0, 200)}`);
    } finally {
      await admin.clearFaults();
    }
    const line = log.bySid.get(sid);
    if (line) f.restoreMs.push(line.restore_ms);
  }
  return f;
}

async function rpoOnce(
  edge: string,
  admin: AdminApi,
  log: RestoreLog,
  rep: number,
  problems: string[],
): Promise<RpoRun> {
  const c = new Client(edge);
  await c.ok("/");
  const sid = String(c.claims().sid);
  const ackedAt: number[] = [];
  // 2.0–2.9 s of writes: the failure falls at a different point of the snapshot cycle each time.
  const writeFor = 2000 + ((rep * 379) % 1000);
  const start = performance.now();
  for (let i = 0; performance.now() - start < writeFor; i++) {
    const due = start + i * 100;
    if (due > performance.now()) await sleep(due - performance.now());
    await c.ok("/", { reply: { "x-edge-session-set": JSON.stringify({ c: i }) } });
    ackedAt[i] = performance.now();
  }
  const lastAcked = ackedAt.length - 1;
  await admin.fault(`region:${HOME}`, "down");
  const failedAt = performance.now();
  const failedAtWall = Date.now();
  let restored = -1;
  try {
    const r = await c.ok("/session");
    restored = (JSON.parse(r.body) as { data?: { c?: number } }).data?.c ?? -1;
  } finally {
    await admin.clearFaults();
  }
  if (restored < 0) problems.push(`rpo ${rep}: nothing restored (no snapshot yet?)`);
  const line = log.bySid.get(sid);
  // When the restored snapshot was taken, by the Worker's clock (same machine): after the fault was in force is a race.
  const takenAt = line ? Date.parse(line.time) - line.restore_ms - (line.snapshot_age_ms ?? 0) : Number.NaN;
  return {
    lostWrites: lastAcked - restored,
    windowMs: failedAt - (ackedAt[restored] ?? start),
    snapshotAgeMs: line?.snapshot_age_ms ?? Number.NaN,
    raced: takenAt > failedAtWall,
    sid,
  };
}

export async function recoveryFigures(
  edge: string,
  admin: AdminApi,
  mf: Miniflare,
  log: RestoreLog,
  o: { rtoRepetitions: number; rpoRepetitions: number; sessionTimeoutMs: number; slowMs: number },
): Promise<RecoveryFigures> {
  const out: RecoveryFigures = {
    sessionTimeoutMs: o.sessionTimeoutMs,
    slowMs: o.slowMs,
    rto: [],
    rpo: [],
    problems: [],
  };
  for (const mode of ["down", "slow"] as const)
    out.rto.push(await rto(edge, admin, log, mode, o.slowMs, o.rtoRepetitions));
  for (let rep = 0; rep < o.rpoRepetitions; rep++) out.rpo.push(await rpoOnce(edge, admin, log, rep, out.problems));
  // Once the owed snapshots have fired, KV must hold the restored epoch's, not one from the fenced object.
  await sleep(1500);
  const kv = await mf.getKVNamespace("SNAPSHOTS");
  for (const { sid } of out.rpo) {
    const ep = ((await kv.getWithMetadata(`snap:${sid}`)).metadata as { ep?: number } | null)?.ep;
    if (ep !== 2) out.problems.push(`${sid}: KV holds a snapshot of epoch ${ep} after the restore to epoch 2`);
  }
  return out;
}
