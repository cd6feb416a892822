import type { EdgeConfig } from "../config/index.ts";
import { type ErrorCode, sessionUnavailable } from "../errors.ts";
import { log } from "../log.ts";
import { type Fault, observeRegionDown } from "../origins/index.ts";
import {
  fromRecord,
  type LiveSession,
  type ObjectCall,
  type PresentedClaims,
  readAt,
  type SessionAt,
  sessionMeta,
  sessionStub,
} from "../session/client.ts";
import type { RestoreSource } from "../session/machine.ts";
import { healthyRegions } from "../session/migration.ts";
import type { CountDelta, EndReason, Forward, WriteResult } from "../session/record.ts";
import { isRevoked, readFence, readSnapshot, writeFence } from "./store.ts";

/** The session's object could not be reached (error, overload, timeout, or an injected fault). */
export class ObjectUnavailable extends Error {
  constructor(
    readonly at: SessionAt,
    readonly code: "ERR_SESSION_TIMEOUT" | "ERR_SESSION_OBJECT_FAILED" | "ERR_FAULT_INJECTED",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface DurableObjectError {
  retryable?: boolean;
  overloaded?: boolean;
}

/** The faults (development only) that apply to a session's object. */
export function faultFor(faults: readonly Fault[], at: SessionAt): Fault | undefined {
  return faults.find((f) => f.target === `region:${at.region}` || f.target === `session:${at.sid}`);
}

/**
 * Calls a session object: bounded by SESSION_TIMEOUT_MS, retried once when the
 * runtime says the error is retryable and not an overload (partyserver's rule),
 * and failing as ObjectUnavailable, which the request path answers by restoring
 * from the snapshot. Our objects never throw their own errors (they return
 * results), so anything thrown is the platform's.
 */
export function objectCaller(
  env: Env,
  cfg: EdgeConfig,
  faults: readonly Fault[] | (() => readonly Fault[]),
): ObjectCall {
  // Read at each call: a fault injected while the request is in flight counts.
  const current = () => (typeof faults === "function" ? faults() : faults);
  const call: ObjectCall = async (at, fn) => {
    const fault = cfg.faultInjection ? faultFor(current(), at) : undefined;
    if (fault?.mode === "down")
      throw new ObjectUnavailable(at, "ERR_FAULT_INJECTED", `injected fault: ${fault.target} is down`);
    const attempt = async () => {
      if (fault?.mode === "slow") await new Promise((r) => setTimeout(r, fault.ms ?? 1000));
      return fn(sessionStub(env, at.sid, at.epoch, at.region, at.jurisdiction));
    };
    for (let i = 0; ; i++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ObjectUnavailable(at, "ERR_SESSION_TIMEOUT", `no answer within ${cfg.sessionTimeoutMs} ms`)),
          cfg.sessionTimeoutMs,
        );
      });
      try {
        return await Promise.race([attempt(), timeout]);
      } catch (e) {
        if (e instanceof ObjectUnavailable) throw e;
        const err = e as DurableObjectError;
        if (i === 0 && err.retryable && !err.overloaded) continue;
        throw new ObjectUnavailable(at, "ERR_SESSION_OBJECT_FAILED", String(e), { cause: e });
      } finally {
        clearTimeout(timer);
      }
    }
  };
  // New sessions and restores keep out of a region whose object just failed here (not for a one-session fault).
  return async (at, fn) =>
    call(at, fn).catch((e: unknown) => {
      if (e instanceof ObjectUnavailable && !faultFor(current(), at)?.target.startsWith("session:"))
        observeRegionDown(cfg, at.region);
      throw e;
    });
}

/** Where a restored session goes: the client's region if it is not the failed one, else the nearest allowed one up. */
export function restoreRegion(
  failed: string,
  clientRegion: string,
  jur: string | undefined,
  down: ReadonlySet<string>,
  exclude: readonly string[] = [],
): string {
  return healthyRegions(clientRegion, jur, (r) => r === failed || down.has(r) || exclude.includes(r))[0] ?? failed;
}

export type Recovered =
  /** A newer epoch than the one that failed was found alive: followed, nothing restored. */
  | { kind: "live"; session: LiveSession }
  | { kind: "restored"; session: LiveSession; counts?: CountDelta }
  | { kind: "ended"; reason: EndReason; at?: number }
  /** The snapshot could not be used (corrupt, another key): the client starts over. */
  | { kind: "refused"; code: ErrorCode; message: string };

export interface RecoveryScope {
  env: Env;
  cfg: EdgeConfig;
  call: ObjectCall;
  /** Regions known to be down (the pool's faults, and what this isolate just failed to reach). */
  down: ReadonlySet<string>;
  clientRegion: string;
  recordEvent: (detail: string) => void;
}

/** Restores tried in turn (each a later epoch, another region) before answering 503. */
const RESTORE_ATTEMPTS = 3;

const forwardOf = (at: SessionAt): Forward => ({
  epoch: at.epoch,
  region: at.region,
  ...(at.jurisdiction ? { jurisdiction: at.jurisdiction } : {}),
});

function atForward(at: SessionAt, to: Forward): SessionAt {
  const next: SessionAt = { ...at, epoch: to.epoch, region: to.region };
  if (to.jurisdiction) next.jurisdiction = to.jurisdiction;
  else delete next.jurisdiction;
  return next;
}

/**
 * The session's object could not be reached. Recovery moves forward only
 * (DESIGN.md §6): first learn whether a newer epoch exists (the KV fence a
 * restore leaves, the snapshot's metadata) and follow it if it answers; only
 * when the newest known epoch is unreachable is the session restored, into the
 * next epoch, from the latest snapshot (or empty, if none was ever written).
 * The restored object fences every older epoch, and those send on whatever they
 * committed after that snapshot (catch-up): an acknowledged write is never lost.
 */
export async function recoverSession(
  x: RecoveryScope,
  failure: ObjectUnavailable,
  presented?: PresentedClaims,
): Promise<Recovered> {
  const { env, cfg } = x;
  const started = Date.now();
  const sid = failure.at.sid;
  const [fence, snap, revoked] = await Promise.all([
    readFence(env.SNAPSHOTS, sid),
    readSnapshot(env.SNAPSHOTS, cfg.snapshots.key, sid),
    isRevoked(env.SNAPSHOTS, sid),
  ]).catch((e: unknown) => {
    throw sessionUnavailable("the session's object and its snapshots could not be reached", e);
  });
  // An operator revoked it while its object was unreachable: it must not come back from its snapshot.
  if (revoked) return { kind: "ended", reason: "revoked" };
  if (snap.found && !snap.decoded.ok) {
    log("error", "snapshot_refused", { sid, code: snap.decoded.code, message: snap.decoded.message });
    return { kind: "refused", code: snap.decoded.code, message: snap.decoded.message };
  }
  const snapshot = snap.found && snap.decoded.ok ? snap.decoded.snapshot : undefined;

  // A newer epoch than the one that failed: follow it; never restore over it while it answers.
  let failed = failure.at;
  const tried: SessionAt[] = [failed];
  const newer = [
    ...(fence ? [fence] : []),
    ...(snapshot
      ? [
          {
            epoch: snapshot.epoch,
            region: snapshot.region,
            ...(snapshot.jurisdiction ? { jurisdiction: snapshot.jurisdiction } : {}),
          },
        ]
      : []),
  ]
    .filter((f) => f.epoch > failed.epoch)
    .sort((a, b) => b.epoch - a.epoch);
  const newest = newer[0];
  if (newest) {
    const at = atForward(failed, newest);
    try {
      const resumed = await readAt(cfg, at, x.clientRegion, x.call, presented);
      if ("ended" in resumed)
        return { kind: "ended", reason: resumed.ended, ...(resumed.at !== undefined ? { at: resumed.at } : {}) };
      return { kind: "live", session: resumed.session };
    } catch (e) {
      if (!(e instanceof ObjectUnavailable)) throw e;
      failed = e.at;
      tried.push(e.at);
    }
  }

  const jur = failed.jurisdiction ?? snapshot?.jurisdiction;
  const source: RestoreSource =
    snapshot && snapshot.epoch <= failed.epoch
      ? {
          version: snapshot.version,
          epoch: snapshot.epoch,
          data: snapshot.data,
          ...(snapshot.auth.sub !== undefined ? { sub: snapshot.auth.sub } : {}),
          ...(snapshot.auth.claims ? { claims: snapshot.auth.claims } : {}),
          origin: snapshot.origin,
          ...(snapshot.home ? { home: snapshot.home } : {}),
          createdAt: snapshot.createdAt,
          updatedAt: snapshot.updatedAt,
          takenAt: snapshot.takenAt,
        }
      : // Nothing was ever snapshotted: the session goes on, empty, and the old epoch sends its writes on.
        {
          version: 0,
          epoch: failed.epoch,
          data: {},
          origin: failed.origin,
          createdAt: failed.createdSec * 1000,
          updatedAt: started,
        };
  const predecessors: Forward[] = [];
  const addPredecessor = (f: Forward) => {
    if (!predecessors.some((p) => p.epoch === f.epoch)) predecessors.push(f);
  };
  for (const t of tried) addPredecessor(forwardOf(t));
  if (snapshot && snapshot.epoch < failed.epoch)
    addPredecessor({ epoch: snapshot.epoch, region: snapshot.region, ...(jur ? { jurisdiction: jur } : {}) });

  const known = Math.max(failed.epoch, fence?.epoch ?? 0, snapshot?.epoch ?? 0);
  const excluded: string[] = [];
  let last: unknown;
  for (let attempt = 0; attempt < RESTORE_ATTEMPTS; attempt++) {
    const ep = known + 1 + attempt;
    const reg = restoreRegion(failed.region, x.clientRegion, jur, x.down, excluded);
    const target: SessionAt = { ...failed, epoch: ep, region: reg, ...(jur ? { jurisdiction: jur } : {}) };
    let result: WriteResult;
    try {
      result = await x.call(target, (stub) => stub.restore(sessionMeta(cfg, target), source, predecessors));
    } catch (e) {
      if (!(e instanceof ObjectUnavailable)) throw e;
      // It may exist all the same: the next epoch fences it too.
      last = e;
      excluded.push(reg);
      addPredecessor(forwardOf(target));
      continue;
    }
    if (result.kind === "moved") {
      // Someone restored or migrated past this epoch already: that copy is the live one.
      const resumed = await readAt(cfg, atForward(target, result.to), x.clientRegion, x.call, presented);
      if ("ended" in resumed)
        return { kind: "ended", reason: resumed.ended, ...(resumed.at !== undefined ? { at: resumed.at } : {}) };
      return { kind: "live", session: resumed.session };
    }
    if (result.kind === "ended" && result.reason === "aborted") continue;
    if (result.kind === "ended")
      return { kind: "ended", reason: result.reason, ...(result.at !== undefined ? { at: result.at } : {}) };
    if (result.kind !== "ok") {
      last = new Error(`restore target answered ${result.kind}`);
      continue;
    }
    const session = fromRecord(result.record, presented);
    // Readers of the fence: any older epoch that comes back and is asked to write or snapshot.
    await writeFence(
      env.SNAPSHOTS,
      sid,
      { ...forwardOf(target), base: source.version },
      (failed.createdSec + cfg.absoluteTimeout) * 1000,
    ).catch((e: unknown) => log("warn", "fence_write_failed", { sid, message: String(e) }));
    const snapshotAgeMs = source.takenAt !== undefined ? started - source.takenAt : null;
    log("warn", "session_restored", {
      sid,
      cause: failure.code,
      from_epoch: failed.epoch,
      from_region: failed.region,
      to_epoch: ep,
      to_region: reg,
      version: source.version,
      snapshot_age_ms: snapshotAgeMs,
      restore_ms: Date.now() - started,
    });
    x.recordEvent(
      `${sid} ${failed.region}→${reg} from v${source.version}${snapshotAgeMs !== null ? `, ${snapshotAgeMs} ms old` : ", no snapshot"}`,
    );
    return { kind: "restored", session, ...(result.counts ? { counts: result.counts } : {}) };
  }
  throw sessionUnavailable("the session could not be reached or restored; try again", last);
}
