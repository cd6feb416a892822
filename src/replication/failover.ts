import { type EdgeConfig, LOCATION_HINTS } from "../config/index.ts";
import { EdgeError } from "../errors.ts";
import { log } from "../log.ts";
import type { Fault } from "../origins/index.ts";
import {
  fromRecord,
  type LiveSession,
  type ObjectCall,
  presentedFrom,
  type SessionAt,
  sessionMeta,
  sessionStub,
} from "../session/client.ts";
import { JURISDICTION_REGIONS } from "../session/migration.ts";
import { EMPTY_DATA_BYTES, type Forward } from "../session/record.ts";
import type { AffinityClaims } from "../token/index.ts";
import { isRevoked } from "../users/revocation.ts";
import { readSnapshot, writeFence } from "./store.ts";

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
  return faults.find((f) => f.target === `region:${at.reg}` || f.target === `session:${at.sid}`);
}

/**
 * Calls a session object: bounded by SESSION_TIMEOUT_MS, retried once when the
 * runtime says the error is retryable and not an overload (partyserver's rule),
 * and failing as ObjectUnavailable, which the request path answers by restoring
 * from the snapshot. Our objects never throw their own errors (they return
 * results), so anything thrown is the platform's.
 */
export function objectCaller(env: Env, cfg: EdgeConfig, faults: readonly Fault[]): ObjectCall {
  return async (at, fn) => {
    const fault = cfg.faultInjection ? faultFor(faults, at) : undefined;
    if (fault?.mode === "down")
      throw new ObjectUnavailable(at, "ERR_FAULT_INJECTED", `injected fault: ${fault.target} is down`);
    const attempt = async () => {
      if (fault?.mode === "slow") await new Promise((r) => setTimeout(r, fault.ms ?? 1000));
      return fn(sessionStub(env, at.sid, at.ep, at.reg, at.jur));
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
}

/** Where a restored session goes: the client's region if it is not the failed one, else the next allowed one. */
export function restoreRegion(
  failed: string,
  clientRegion: string,
  jur: string | undefined,
  down: readonly Fault[],
): string {
  const allowed = jur ? (JURISDICTION_REGIONS[jur] ?? []) : LOCATION_HINTS;
  const isDown = (r: string) => down.some((f) => f.mode === "down" && f.target === `region:${r}`);
  const candidates = [clientRegion, ...allowed].filter((r) => r !== failed && allowed.includes(r) && !isDown(r));
  return candidates[0] ?? failed;
}

export type RestoreOutcome =
  | { kind: "restored"; session: LiveSession }
  | { kind: "fresh"; code: string; message: string };

/**
 * The home object is unreachable: rebuild the session from its latest KV
 * snapshot in a new object (a higher epoch, another region), fence the old
 * epochs, and carry on. Writes made after the last snapshot are lost; the log
 * line says how old the snapshot was (the recovery point, measured).
 */
export async function restoreSession(
  env: Env,
  cfg: EdgeConfig,
  claims: AffinityClaims,
  raw: string,
  failure: ObjectUnavailable,
  clientRegion: string,
  faults: readonly Fault[],
  call: ObjectCall,
  recordEvent: (detail: string) => void,
): Promise<RestoreOutcome> {
  const started = Date.now();
  const failed = failure.at;
  // An operator (or origin) revoked it while its object was unreachable: it must not come back elsewhere.
  if (await isRevoked(env.SNAPSHOTS, claims.sid).catch(() => false))
    return { kind: "fresh", code: "ERR_SESSION_ENDED", message: "the session was revoked" };
  const snap = await readSnapshot(env.SNAPSHOTS, cfg.snapshots.key, claims.sid).catch((e: unknown) => {
    throw new EdgeError("ERR_SESSION_UNAVAILABLE", "the session store and its snapshots could not be reached", {
      status: 503,
      cause: e,
      headers: { "retry-after": "1" },
    });
  });
  if (snap.found && !snap.decoded.ok) {
    log("error", "snapshot_refused", { sid: claims.sid, code: snap.decoded.code, message: snap.decoded.message });
    return { kind: "fresh", code: snap.decoded.code, message: snap.decoded.message };
  }
  const snapshot = snap.found && snap.decoded.ok ? snap.decoded.snapshot : undefined;
  const ep = Math.max(failed.ep, snapshot?.epoch ?? 0) + 1;
  const jur = failed.jur ?? snapshot?.jurisdiction;
  const reg = restoreRegion(failed.reg, clientRegion, jur, faults);
  const target: SessionAt = { ...failed, ep, reg, ...(jur ? { jur } : {}) };
  const to: Forward = { ep, reg, ...(jur ? { jur } : {}) };
  // Readers of the fence: any old epoch that comes back and is asked to write.
  await writeFence(env.SNAPSHOTS, claims.sid, to, (claims.ct + cfg.absoluteTimeout) * 1000);

  const presented = presentedFrom(claims, raw);
  let session: LiveSession;
  if (!snapshot) {
    // Nothing was stored (or not yet snapshotted): the session continues, empty, in the new epoch.
    session = { ...target, ver: 0, data: {}, dataBytes: EMPTY_DATA_BYTES, presented };
  } else {
    const predecessors: Forward[] = [
      { ep: failed.ep, reg: failed.reg, ...(failed.jur ? { jur: failed.jur } : {}) },
      ...(snapshot.epoch !== failed.ep ? [{ ep: snapshot.epoch, reg: snapshot.region, ...(jur ? { jur } : {}) }] : []),
    ];
    const restored = await call(target, (stub) => stub.restore(sessionMeta(cfg, target), snapshot, predecessors));
    if (restored.kind !== "ok")
      return { kind: "fresh", code: "ERR_SESSION_ENDED", message: `restore target is ${restored.kind}` };
    session = { ...fromRecord(restored.record), presented };
  }
  const snapshotAgeMs = snapshot ? started - snapshot.takenAt : null;
  log("warn", "session_restored", {
    sid: claims.sid,
    cause: failure.code,
    from_epoch: failed.ep,
    from_region: failed.reg,
    to_epoch: ep,
    to_region: reg,
    version: snapshot?.version ?? 0,
    snapshot_age_ms: snapshotAgeMs,
    restore_ms: Date.now() - started,
  });
  recordEvent(
    `${claims.sid} ${failed.reg}→${reg} from v${snapshot?.version ?? 0}${snapshotAgeMs !== null ? `, ${snapshotAgeMs} ms old` : ""}`,
  );
  return { kind: "restored", session };
}
