import type { EdgeConfig } from "../config/index.ts";
import { LOCATION_HINTS, type LocationHint } from "../config/index.ts";
import { log } from "../log.ts";
import { type AffinityClaims, newSessionId } from "../token/index.ts";
import type { JsonObject } from "./merge-patch.ts";
import type {
  EndReason,
  Forward,
  ReadResult,
  SessionChange,
  SessionMeta,
  SessionRecord,
  SessionRpc,
  WriteResult,
} from "./record.ts";
import { EMPTY_DATA_BYTES } from "./record.ts";

export interface PresentedClaims {
  raw: string;
  iat: number;
  exp: number;
  sid: string;
  oid: string;
  ep: number;
  /** The state version the token names (read cache: the client has seen at least this one). */
  ver: number;
  reg: string;
  jur?: string;
  cb?: string;
}

/** The session as the Worker handles it during one request. Times in seconds, as in the token. */
export interface LiveSession {
  sid: string;
  ep: number;
  oid: string;
  /** Set while a `temporary` failover has the session away from this origin. */
  home?: string;
  reg: string;
  /** Jurisdiction the session is pinned to, if any. */
  jur?: string;
  /** This request's client binding digest (CLIENT_BINDING), carried into the token. */
  cb?: string;
  ct: number;
  ver: number;
  data: JsonObject;
  /** Size of `data` as JSON, from the record (measured once per write, not per request). */
  dataBytes: number;
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

/** How many forward pointers (migrations, fences) a request follows before giving up. */
const MAX_HOPS = 6;
/** How long a write waits, in total, for a migration in progress to finish. */
const MIGRATION_WAIT_MS = 5000;

function isLocationHint(reg: string): reg is LocationHint {
  return (LOCATION_HINTS as readonly string[]).includes(reg);
}

/** One object per (sid, epoch): a later epoch (migration, failover) is a new object, never the same one moved. */
export function sessionStub(env: Env, sid: string, ep: number, reg: string, jur?: string): SessionRpc {
  const { ns, name } = namespaceFor(env, jur, `${sid}:${ep}`);
  const id = ns.idFromName(name);
  const stub = isLocationHint(reg) ? ns.get(id, { locationHint: reg }) : ns.get(id);
  // The generated RPC stub type recurses through the JSON session document
  // deeply enough to stall tsc; the object implements SessionRpc, so say so.
  return stub as unknown as SessionRpc;
}

let emulationLogged = false;

/**
 * A jurisdiction-restricted namespace in production. workerd (wrangler dev,
 * tests) does not implement jurisdictions and throws; there the object lives in
 * the default namespace under a jurisdiction-prefixed name, which keeps pinned
 * and unpinned sessions apart all the same.
 */
function namespaceFor(env: Env, jur: string | undefined, name: string): { ns: Env["SESSIONS"]; name: string } {
  if (!jur) return { ns: env.SESSIONS, name };
  try {
    return { ns: env.SESSIONS.jurisdiction(jur as DurableObjectJurisdiction), name };
  } catch (e) {
    if (!emulationLogged) {
      emulationLogged = true;
      log("warn", "jurisdiction_emulated", {
        jur,
        message: `${String(e)}; using the default namespace with a "${jur}/" prefix`,
      });
    }
    return { ns: env.SESSIONS, name: `${jur}/${name}` };
  }
}

export type SessionAt = Pick<LiveSession, "sid" | "ep" | "oid" | "reg" | "ct" | "jur">;

export function sessionMeta(cfg: EdgeConfig, s: SessionAt): SessionMeta {
  return {
    sid: s.sid,
    epoch: s.ep,
    oid: s.oid,
    reg: s.reg,
    createdAt: s.ct * 1000,
    idleMs: cfg.idleTimeout * 1000,
    absoluteMs: cfg.absoluteTimeout * 1000,
    maxDataBytes: cfg.limits.sessionBytes,
    maxKeys: cfg.limits.sessionKeys,
    pool: cfg.pool.name,
    ...(s.jur ? { jur: s.jur } : {}),
    ...(cfg.migration.auto
      ? { migrateAfter: { requests: cfg.migration.afterRequests, seconds: cfg.migration.afterSeconds } }
      : {}),
  };
}

export function fromRecord(r: SessionRecord, presented?: PresentedClaims): LiveSession {
  return {
    sid: r.sid,
    ep: r.epoch,
    oid: r.oid,
    ...(r.home !== undefined ? { home: r.home } : {}),
    reg: r.reg,
    ...(r.jur !== undefined ? { jur: r.jur } : {}),
    ct: Math.floor(r.createdAt / 1000),
    ver: r.version,
    data: r.data,
    dataBytes: r.dataBytes,
    ...(r.sub !== undefined ? { sub: r.sub } : {}),
    ...(r.claims !== undefined ? { claims: r.claims } : {}),
    ...(presented ? { presented } : {}),
  };
}

/** A brand-new session: nothing is stored until the origin first writes to it. */
export function startSession(oid: string, reg: string, jur?: string, now = Date.now()): LiveSession {
  return {
    sid: newSessionId(),
    ep: 1,
    oid,
    reg,
    ...(jur ? { jur } : {}),
    ct: Math.floor(now / 1000),
    ver: 0,
    data: {},
    dataBytes: EMPTY_DATA_BYTES,
  };
}

function follow(s: SessionAt, to: Forward): SessionAt {
  const next: SessionAt = { ...s, ep: to.ep, reg: to.reg };
  if (to.jur) next.jur = to.jur;
  else delete next.jur;
  return next;
}

/** The call to a session object, bounded by SESSION_TIMEOUT_MS; a hang counts as a failure (failover). */
export type ObjectCall = <T>(at: SessionAt, call: (stub: SessionRpc) => Promise<T>) => Promise<T>;

/** What the client's verified token says, kept beside the session to decide whether to reissue it. */
export function presentedFrom(claims: AffinityClaims, raw: string): PresentedClaims {
  return {
    raw,
    iat: claims.iat,
    exp: claims.exp,
    sid: claims.sid,
    oid: claims.oid,
    ep: claims.ep,
    ver: claims.ver,
    reg: claims.reg,
    ...(claims.jur ? { jur: claims.jur } : {}),
    ...(claims.cb ? { cb: claims.cb } : {}),
  };
}

/**
 * Looks up the session a verified token names: one Durable Object call in the
 * steady state; after a migration or a fence, the forward pointers are
 * followed (and the client gets a token for where the session is now).
 */
export async function resumeSession(
  cfg: EdgeConfig,
  claims: AffinityClaims,
  raw: string,
  seenFrom: string,
  call: ObjectCall,
): Promise<{ session: LiveSession } | { ended: EndReason }> {
  const presented = presentedFrom(claims, raw);
  let at: SessionAt = {
    sid: claims.sid,
    ep: claims.ep,
    oid: claims.oid,
    reg: claims.reg,
    ct: claims.ct,
    ...(claims.jur ? { jur: claims.jur } : {}),
  };
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const here = at;
    const result: ReadResult = await call(here, (stub) => stub.read(sessionMeta(cfg, here), seenFrom));
    if (result.kind === "moved") {
      at = follow(at, result.to);
      continue;
    }
    if (result.kind === "ended") return { ended: result.reason };
    if (result.kind === "fresh")
      return { session: { ...at, ver: 0, data: {}, dataBytes: EMPTY_DATA_BYTES, presented } };
    return { session: fromRecord(result.record, presented) };
  }
  throw new Error(`session ${claims.sid}: more than ${MAX_HOPS} forward pointers`);
}

/**
 * Writes to wherever the session lives now: a frozen object (migration in
 * progress) is waited for with backoff, a moved one is followed. A write is
 * sent again only when the object answered that it did not apply it.
 */
async function writeFollowing(
  cfg: EdgeConfig,
  s: LiveSession,
  change: SessionChange,
  call: ObjectCall,
): Promise<{ result: WriteResult; at: SessionAt }> {
  let at: SessionAt = s;
  let waited = 0;
  for (let attempt = 0; attempt < 50; attempt++) {
    const here = at;
    const result = await call(here, (stub) => stub.write(sessionMeta(cfg, here), change));
    if (result.kind === "moved") {
      at = follow(at, result.to);
      continue;
    }
    if (result.kind === "migrating" && waited < MIGRATION_WAIT_MS) {
      const pause = Math.min(25 * 2 ** attempt, 400);
      await new Promise((r) => setTimeout(r, pause));
      waited += pause;
      continue;
    }
    return { result, at };
  }
  throw new Error(`session ${s.sid}: write kept being redirected`);
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
      const adopted = await stub.adopt(meta, record, "rotation");
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
  call: ObjectCall,
  now = Date.now(),
): Promise<CommitOutcome> {
  const { result } = await writeFollowing(cfg, s, change, call);
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
      const next = startSession(result.record.oid, result.record.reg, result.record.jur, now);
      const stub = sessionStub(env, next.sid, next.ep, next.reg, next.jur);
      const adopted = await adoptWithRetry(stub, sessionMeta(cfg, next), result.record);
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
    case "migrating":
      return { kind: "unchanged", code: "ERR_SESSION_MIGRATING", message: "the session is still migrating; try again" };
    case "moved":
      return { kind: "unchanged", code: "ERR_SESSION_MOVED", message: "too many forward pointers" };
  }
}
