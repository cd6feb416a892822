import type { EdgeConfig } from "../config/index.ts";
import { LOCATION_HINTS, type LocationHint } from "../config/index.ts";
import { log } from "../log.ts";
import { type AffinityClaims, newSessionId } from "../token/index.ts";
import type { JsonObject } from "./merge-patch.ts";
import type { EndReason, SessionChange, SessionMeta, SessionRecord, SessionRpc } from "./record.ts";

export interface PresentedClaims {
  raw: string;
  iat: number;
  exp: number;
  sid: string;
  oid: string;
  ep: number;
  reg: string;
}

/** The session as the Worker handles it during one request. Times in seconds, as in the token. */
export interface LiveSession {
  sid: string;
  ep: number;
  oid: string;
  /** Set while a `temporary` failover has the session away from this origin. */
  home?: string;
  reg: string;
  ct: number;
  ver: number;
  data: JsonObject;
  sub?: string;
  claims?: JsonObject;
  /** The verified token the client presented for this session, and what it names. */
  presented?: PresentedClaims;
  /** Set on the request during which the session moved: where from and why (told to the new origin). */
  moved?: { from: string; reason: string };
}

export type CommitOutcome =
  | { kind: "updated"; session: LiveSession; created: boolean }
  | { kind: "rotated"; session: LiveSession }
  | { kind: "logged-out" }
  | { kind: "unchanged"; code: string; message: string };

function isLocationHint(reg: string): reg is LocationHint {
  return (LOCATION_HINTS as readonly string[]).includes(reg);
}

/** One object per (sid, epoch): a later epoch (migration, failover) is a new object, never the same one moved. */
export function sessionStub(env: Env, sid: string, ep: number, reg: string): SessionRpc {
  const ns = env.SESSIONS;
  const id = ns.idFromName(`${sid}:${ep}`);
  const stub = isLocationHint(reg) ? ns.get(id, { locationHint: reg }) : ns.get(id);
  // The generated RPC stub type recurses through the JSON session document
  // deeply enough to stall tsc; the object implements SessionRpc, so say so.
  return stub as unknown as SessionRpc;
}

export function sessionMeta(cfg: EdgeConfig, s: Pick<LiveSession, "sid" | "ep" | "oid" | "reg" | "ct">): SessionMeta {
  return {
    sid: s.sid,
    epoch: s.ep,
    oid: s.oid,
    reg: s.reg,
    createdAt: s.ct * 1000,
    idleMs: cfg.idleTimeout * 1000,
    absoluteMs: cfg.absoluteTimeout * 1000,
    maxDataBytes: cfg.limits.sessionBytes,
    pool: cfg.pool.name,
  };
}

function fromRecord(r: SessionRecord, presented?: LiveSession["presented"]): LiveSession {
  return {
    sid: r.sid,
    ep: r.epoch,
    oid: r.oid,
    ...(r.home !== undefined ? { home: r.home } : {}),
    reg: r.reg,
    ct: Math.floor(r.createdAt / 1000),
    ver: r.version,
    data: r.data,
    ...(r.sub !== undefined ? { sub: r.sub } : {}),
    ...(r.claims !== undefined ? { claims: r.claims } : {}),
    ...(presented ? { presented } : {}),
  };
}

/** A brand-new session: nothing is stored until the origin first writes to it. */
export function startSession(oid: string, reg: string, now = Date.now()): LiveSession {
  return { sid: newSessionId(), ep: 1, oid, reg, ct: Math.floor(now / 1000), ver: 0, data: {} };
}

/** Looks up the session a verified token names. One Durable Object call. */
export async function resumeSession(
  env: Env,
  cfg: EdgeConfig,
  claims: AffinityClaims,
  raw: string,
): Promise<{ session: LiveSession } | { ended: EndReason }> {
  const presented = {
    raw,
    iat: claims.iat,
    exp: claims.exp,
    sid: claims.sid,
    oid: claims.oid,
    ep: claims.ep,
    reg: claims.reg,
  };
  const base = { sid: claims.sid, ep: claims.ep, oid: claims.oid, reg: claims.reg, ct: claims.ct };
  const result = await sessionStub(env, claims.sid, claims.ep, claims.reg).read(sessionMeta(cfg, base));
  if (result.kind === "ended") return { ended: result.reason };
  if (result.kind === "fresh") return { session: { ...base, ver: 0, data: {}, presented } };
  return { session: fromRecord(result.record, presented) };
}

/**
 * The old object has already ended itself (so no write can land on it after the
 * hand-over); the state exists only in this call until the new object holds it.
 * adopt() is idempotent, so it is retried before giving up.
 */
async function adoptWithRetry(stub: SessionRpc, meta: SessionMeta, record: SessionRecord): Promise<SessionRecord> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const adopted = await stub.adopt(meta, record);
      if (adopted.kind === "ok") return adopted.record;
      last = new Error(`rotation target refused the session (${adopted.kind})`);
      break;
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 20 * 2 ** attempt));
    }
  }
  throw last;
}

/** Applies an origin's change. Login rotates the session id: the old object is ended, a new one adopts the state. */
export async function commitChange(
  env: Env,
  cfg: EdgeConfig,
  s: LiveSession,
  change: SessionChange,
  now = Date.now(),
): Promise<CommitOutcome> {
  const result = await sessionStub(env, s.sid, s.ep, s.reg).write(sessionMeta(cfg, s), change);
  switch (result.kind) {
    case "ok":
      return {
        kind: "updated",
        session: { ...fromRecord(result.record), ...(s.presented ? { presented: s.presented } : {}) },
        created: result.created === true,
      };
    case "destroyed":
      return { kind: "logged-out" };
    case "rotated": {
      const next = startSession(result.record.oid, result.record.reg, now);
      const adopted = await adoptWithRetry(
        sessionStub(env, next.sid, next.ep, next.reg),
        sessionMeta(cfg, next),
        result.record,
      );
      log("info", "session_rotated", { from: s.sid, to: next.sid, sub: adopted.sub });
      return { kind: "rotated", session: fromRecord(adopted) };
    }
    case "conflict":
      return { kind: "unchanged", code: "ERR_VERSION_CONFLICT", message: `session is at version ${result.version}` };
    case "rejected":
      return { kind: "unchanged", code: result.code, message: result.message };
    case "ended":
      return {
        kind: "unchanged",
        code: "ERR_SESSION_ENDED",
        message: `session ended (${result.reason}) before the change`,
      };
  }
}
