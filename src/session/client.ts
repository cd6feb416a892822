import { LRUCache } from "lru-cache";
import type { EdgeConfig } from "../config/index.ts";
import { LOCATION_HINTS, type LocationHint } from "../config/index.ts";
import { type ErrorCode, sessionUnavailable } from "../errors.ts";
import { log } from "../log.ts";
import { type AffinityClaims, newSessionId } from "../token/index.ts";
import type { JsonObject } from "./merge-patch.ts";
import type {
  CountDelta,
  EndReason,
  Forward,
  SessionChange,
  SessionMeta,
  SessionRecord,
  SessionRpc,
  StoredSession,
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
  epoch: number;
  origin: string;
  /** Set while a `temporary` failover has the session away from this origin. */
  home?: string;
  region: string;
  /** Jurisdiction the session is pinned to, if any. */
  jurisdiction?: string;
  /** This request's client binding digest (CLIENT_BINDING), carried into the token. */
  cb?: string;
  createdSec: number;
  version: number;
  data: JsonObject;
  /** Size of `data` as JSON, from the record (measured once per write, not per request). */
  dataBytes: number;
  sub?: string;
  claims?: JsonObject;
  /** The verified token the client presented for this session, and what it names. */
  presented?: PresentedClaims;
  /** Set on the request during which the session moved: where from and why (told to the new origin). */
  moved?: { from: string; reason: string };
  /**
   * A stand-in for a request that raced a login with the pre-login token: served anonymously,
   * never stored, and never given a token (the client already holds its new one).
   */
  ephemeral?: true;
  /** This request's login rotated the session into this one (cookie mode also sets the successor cookie). */
  rotated?: true;
  /** This request found the session only by recovery (a newer epoch followed, or a restore). */
  recovered?: true;
}

/** What became of an origin's change. Only `updated`, `rotated` and `logged-out` were committed. */
export type CommitOutcome =
  | { kind: "updated"; session: LiveSession; created: boolean; counts?: CountDelta }
  | { kind: "rotated"; session: LiveSession; counts: CountDelta[] }
  | { kind: "logged-out"; counts?: CountDelta }
  /** The origin's directive was refused (too large, too many keys): its bug, logged, the session as it was. */
  | { kind: "refused"; code: ErrorCode; message: string }
  /** Set-If-Version named another version than the session's. */
  | { kind: "conflict"; version: number }
  /** The session ended (logout elsewhere, revoke, timeout, or a login rotated it) before the change. */
  | { kind: "ended"; reason: EndReason; at?: number }
  /** The change could not be made durable now (a migration that did not finish in time, snapshots behind). */
  | { kind: "unavailable"; message: string };

/**
 * How long after a login a request still carrying the pre-login token is treated
 * as having raced it (served without touching the client's new token, its writes
 * refused) rather than as a new anonymous visitor. Covers an origin's slowest answer.
 */
export const ROTATION_GRACE_MS = 30_000;

/** How many forward pointers (migrations, fences) a request follows before giving up. */
const MAX_HOPS = 12;
/** How long a write waits, in total, for a migration in progress to finish. */
const MIGRATION_WAIT_MS = 5000;

function isLocationHint(reg: string): reg is LocationHint {
  return (LOCATION_HINTS as readonly string[]).includes(reg);
}

/** One object per (sid, epoch): a later epoch (migration, failover) is a new object, never the same one moved. */
export function sessionStub(env: Env, sid: string, ep: number, reg: string, jur?: string): SessionRpc {
  const { ns, name } = namespaceFor(env, jur, `${sid}:${ep}`);
  const id = idFor(ns, name, jur === undefined);
  const stub = isLocationHint(reg) ? ns.get(id, { locationHint: reg }) : ns.get(id);
  // The generated RPC stub type recurses through the JSON session document
  // deeply enough to stall tsc; the object implements SessionRpc, so say so.
  return stub as unknown as SessionRpc;
}

/**
 * Object ids by name, per namespace: deriving one hashes the name, and in
 * strict mode every request needs its session's id. An id is a value (no I/O),
 * so it may outlive the request that made it. Only the default namespace is
 * kept: a jurisdiction's namespace handle is a new object each time.
 */
const ids = new WeakMap<Env["SESSIONS"], LRUCache<string, DurableObjectId>>();
const IDS_MAX = 10_000;

function idFor(ns: Env["SESSIONS"], name: string, keep: boolean): DurableObjectId {
  if (!keep) return ns.idFromName(name);
  let byName = ids.get(ns);
  if (!byName) {
    byName = new LRUCache({ max: IDS_MAX });
    ids.set(ns, byName);
  }
  let id = byName.get(name);
  if (!id) {
    id = ns.idFromName(name);
    byName.set(name, id);
  }
  return id;
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

export type SessionAt = Pick<LiveSession, "sid" | "epoch" | "origin" | "region" | "createdSec" | "jurisdiction">;

export function sessionMeta(cfg: EdgeConfig, s: SessionAt): SessionMeta {
  return {
    sid: s.sid,
    epoch: s.epoch,
    origin: s.origin,
    region: s.region,
    createdAt: s.createdSec * 1000,
    idleMs: cfg.idleTimeout * 1000,
    absoluteMs: cfg.absoluteTimeout * 1000,
    maxDataBytes: cfg.limits.sessionBytes,
    maxKeys: cfg.limits.sessionKeys,
    maxDepth: cfg.limits.sessionDepth,
    pool: cfg.pool.name,
    ...(s.jurisdiction ? { jurisdiction: s.jurisdiction } : {}),
    ...(cfg.migration.auto
      ? { migrateAfter: { requests: cfg.migration.afterRequests, seconds: cfg.migration.afterSeconds } }
      : {}),
  };
}

export function fromRecord(r: SessionRecord, presented?: PresentedClaims): LiveSession {
  return {
    sid: r.sid,
    epoch: r.epoch,
    origin: r.origin,
    ...(r.home !== undefined ? { home: r.home } : {}),
    region: r.region,
    ...(r.jurisdiction !== undefined ? { jurisdiction: r.jurisdiction } : {}),
    createdSec: Math.floor(r.createdAt / 1000),
    version: r.version,
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
    epoch: 1,
    origin: oid,
    region: reg,
    ...(jur ? { jurisdiction: jur } : {}),
    createdSec: Math.floor(now / 1000),
    version: 0,
    data: {},
    dataBytes: EMPTY_DATA_BYTES,
  };
}

function follow(s: SessionAt, to: Forward): SessionAt {
  const next: SessionAt = { ...s, epoch: to.epoch, region: to.region };
  if (to.jurisdiction) next.jurisdiction = to.jurisdiction;
  else delete next.jurisdiction;
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

type Moved = { kind: "moved"; to: Forward };

/**
 * Calls the object that holds the session now: starting at `start`, every
 * forward pointer (a migration, a fence) is followed, up to MAX_HOPS. The one
 * place that follows them, for reads, writes and operator calls alike.
 */
export async function following<R extends { kind: string }>(
  start: SessionAt,
  call: ObjectCall,
  fn: (stub: SessionRpc, at: SessionAt) => Promise<R | Moved>,
): Promise<{ result: Exclude<R, Moved>; at: SessionAt }> {
  let at = start;
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    const here = at;
    const result = await call(here, (stub) => fn(stub, here));
    if (result.kind !== "moved") return { result: result as Exclude<R, Moved>, at: here };
    at = follow(here, (result as Moved).to);
  }
  throw sessionUnavailable(`session ${start.sid}: more than ${MAX_HOPS} forward pointers; try again`);
}

/** What the object holding the session now has stored (forward pointers followed), and where it is. */
export async function inspectAt(
  start: SessionAt,
  call: ObjectCall,
): Promise<{ stored: StoredSession | undefined; at: SessionAt }> {
  const { result, at } = await following(start, call, async (stub) => {
    const stored = await stub.inspect();
    if (stored?.status === "moved") return { kind: "moved" as const, to: stored.to };
    return { kind: "here" as const, stored };
  });
  return { stored: result.stored, at };
}

export type Resumed = { session: LiveSession } | { ended: EndReason; at?: number };

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
): Promise<Resumed> {
  const presented = presentedFrom(claims, raw);
  return readAt(cfg, atClaims(claims), seenFrom, call, presented);
}

/** Where a verified token says the session lives. */
function atClaims(claims: AffinityClaims): SessionAt {
  return {
    sid: claims.sid,
    epoch: claims.ep,
    origin: claims.oid,
    region: claims.reg,
    createdSec: claims.ct,
    ...(claims.jur ? { jurisdiction: claims.jur } : {}),
  };
}

export async function readAt(
  cfg: EdgeConfig,
  start: SessionAt,
  seenFrom: string | undefined,
  call: ObjectCall,
  presented?: PresentedClaims,
): Promise<Resumed> {
  const { result, at } = await following(start, call, (stub, here) => stub.read(sessionMeta(cfg, here), seenFrom));
  if (result.kind === "ended")
    return result.at !== undefined ? { ended: result.reason, at: result.at } : { ended: result.reason };
  if (result.kind === "fresh")
    return {
      session: { ...at, version: 0, data: {}, dataBytes: EMPTY_DATA_BYTES, ...(presented ? { presented } : {}) },
    };
  return { session: fromRecord(result.record, presented) };
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
): Promise<WriteResult> {
  let at: SessionAt = s;
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    const { result, at: here } = await following(at, call, (stub, x) => stub.write(sessionMeta(cfg, x), change));
    at = here;
    if (result.kind !== "migrating" || waited >= MIGRATION_WAIT_MS) return result;
    const pause = Math.min(25 * 2 ** attempt, 400);
    await new Promise((r) => setTimeout(r, pause));
    waited += pause;
  }
}

/**
 * The old object has already ended itself (so no write can land on it after the
 * hand-over); the state exists only in this call until the new object holds it.
 * adopt() is idempotent, so it is retried, and in another region if the first is
 * unreachable (nothing is stored under the new id yet, so any region will do).
 */
async function adoptRotated(
  cfg: EdgeConfig,
  record: SessionRecord,
  regions: readonly string[],
  call: ObjectCall,
  now: number,
): Promise<{ record: SessionRecord; counts?: CountDelta }> {
  let last: unknown;
  for (const reg of regions.length ? regions : [record.region]) {
    const next = startSession(record.origin, reg, record.jurisdiction, now);
    try {
      const adopted = await call(next, (stub) => stub.adopt(sessionMeta(cfg, next), record, "rotation"));
      if (adopted.kind === "ok")
        return { record: adopted.record, ...(adopted.counts ? { counts: adopted.counts } : {}) };
      last = new Error(`rotation target refused the session (${adopted.kind})`);
    } catch (e) {
      last = e;
    }
  }
  throw sessionUnavailable("the logged-in session could not be stored; log in again", last);
}

/**
 * Applies an origin's change. Login rotates the session id: the old object is
 * ended, a new one adopts the state. Throws ObjectUnavailable when the object
 * could not be reached (the caller restores the session and tries again).
 */
export async function commitChange(
  cfg: EdgeConfig,
  s: LiveSession,
  change: SessionChange,
  call: ObjectCall,
  rotationRegions: readonly string[] = [],
  now = Date.now(),
): Promise<CommitOutcome> {
  const result = await writeFollowing(cfg, s, change, call);
  switch (result.kind) {
    case "ok":
      return {
        kind: "updated",
        session: { ...fromRecord(result.record), ...(s.presented ? { presented: s.presented } : {}) },
        created: result.created === true,
        ...(result.counts ? { counts: result.counts } : {}),
      };
    case "destroyed":
      return { kind: "logged-out", ...(result.counts ? { counts: result.counts } : {}) };
    case "rotated": {
      const regions = [result.record.region, ...rotationRegions.filter((r) => r !== result.record.region)];
      const adopted = await adoptRotated(cfg, result.record, regions, call, now);
      log("info", "session_rotated", { from: s.sid, to: adopted.record.sid, sub: adopted.record.sub });
      const counts = [result.counts, adopted.counts].filter((c): c is CountDelta => c !== undefined);
      return { kind: "rotated", session: fromRecord(adopted.record), counts };
    }
    case "conflict":
      return { kind: "conflict", version: result.version };
    case "rejected":
      return { kind: "refused", code: result.code, message: result.message };
    case "ended":
      return result.at !== undefined
        ? { kind: "ended", reason: result.reason, at: result.at }
        : { kind: "ended", reason: result.reason };
    case "migrating":
    case "moved":
      return { kind: "unavailable", message: "the session is moving to another region; try again" };
    case "unavailable":
      return { kind: "unavailable", message: result.message };
  }
}
