import type { ErrorCode } from "../errors.ts";
import type { LogEntry, RestoreSource } from "./machine.ts";
import { applyMergePatch, isJsonObject, type Json, type JsonObject, jsonDepth } from "./merge-patch.ts";

/** Why a session (or an epoch of it) ended. `aborted`: a migration target that gave up before it received the state. */
export type EndReason = "logout" | "rotated" | "idle" | "absolute" | "revoked" | "aborted";

/** Where a session went: the object for (sid, ep) in region `reg` (and jurisdiction `jur`). */
export interface Forward {
  epoch: number;
  region: string;
  jurisdiction?: string;
}

/** One line of a session's own audit trail (bounded; newest last). */
export interface AuditEntry {
  at: number;
  event:
    | "created"
    | "login"
    | "logout"
    | "rotated"
    | "repinned"
    | "migrated_out"
    | "migrated_in"
    | "restored"
    | "fenced"
    | "caught_up"
    | "migration_aborted"
    | "revoked";
  detail?: string;
  /** Running count, so the object can log exactly the entries a save adds. */
  n?: number;
}

export const MAX_AUDIT = 50;

export function withAudit<T extends { audit?: AuditEntry[] }>(
  r: T,
  event: AuditEntry["event"],
  detail?: string,
  at = Date.now(),
): T {
  const n = (r.audit?.at(-1)?.n ?? r.audit?.length ?? 0) + 1;
  const audit = [...(r.audit ?? []), { at, event, n, ...(detail ? { detail } : {}) }];
  return { ...r, audit: audit.slice(-MAX_AUDIT) };
}

/** The live session, as stored in its Durable Object. Times are epoch milliseconds. */
export interface SessionRecord {
  status: "active";
  sid: string;
  epoch: number;
  version: number;
  data: JsonObject;
  dataBytes: number;
  sub?: string;
  claims?: JsonObject;
  origin: string;
  /** The origin a `temporary` failover will return to. */
  home?: string;
  region: string;
  createdAt: number;
  updatedAt: number;
  lastSeen: number;
  idleMs: number;
  absoluteMs: number;
  /** Pool whose live-session counts include this session. */
  pool: string;
  jurisdiction?: string;
  /** Set while the state is being handed to the next epoch: writes wait, reads see the frozen state. */
  migration?: { to: Forward; startedAt: number; trigger: string };
  /** Where the client has been seen from, when that is not the home region (automatic migration). */
  away?: { reg: string; since: number; count: number };
  audit?: AuditEntry[];
}

/** Left behind by a migration, or by a fence after a restore elsewhere: it forwards, never accepts writes. */
export interface SessionMoved {
  status: "moved";
  sid: string;
  epoch: number;
  to: Forward;
  reason: "migrated" | "fenced";
  movedAt: number;
  purgeAt: number;
  /** The version this epoch had reached when it was fenced (what a catch-up must account for). */
  version?: number;
  /** This epoch's own region (where catch-ups come from). */
  region?: string;
}

/** What is left after logout, rotation or revocation: enough to refuse the old tokens, no data. */
export interface SessionTombstone {
  status: "destroyed";
  sid: string;
  epoch: number;
  reason: EndReason;
  endedAt: number;
  purgeAt: number;
  /** The trail up to and including the end, kept (without data) for the operator until the purge. */
  audit?: AuditEntry[];
}

export type StoredSession = SessionRecord | SessionTombstone | SessionMoved;

/** Identity and limits the Worker knows from the token and config; a session object starts from it on first write. */
export interface SessionMeta {
  sid: string;
  epoch: number;
  origin: string;
  region: string;
  createdAt: number;
  idleMs: number;
  absoluteMs: number;
  maxDataBytes: number;
  /** Most keys (at any depth) in the document; absent: no limit beyond the bytes. */
  maxKeys?: number;
  /** Deepest nesting the document may reach (MAX_SESSION_DEPTH); absent: no limit beyond the bytes. */
  maxDepth?: number;
  pool: string;
  jurisdiction?: string;
  /** Automatic migration's hysteresis; absent when automatic migration is off. */
  migrateAfter?: { requests: number; seconds: number };
}

export interface LoginDirective {
  sub: string;
  claims?: JsonObject;
}

/** One origin response's worth of changes, already parsed and size-checked by the Worker. */
export interface SessionChange {
  patch?: JsonObject;
  ifVersion?: number;
  login?: LoginDirective;
  logout?: true;
  /** Re-pin the session to another origin (its data untouched; the version does not move). */
  assign?: { oid: string; home: string | null; reason: string };
}

/** Live-session counts per origin and region, as the pool keeps them. The session object decides them. */
export interface CountDelta {
  sessions: Record<string, number>;
  regions: Record<string, number>;
}

export type ReadResult =
  | { kind: "active"; record: SessionRecord }
  | { kind: "moved"; to: Forward }
  | { kind: "fresh" }
  /** `at`: when it ended (a token rotated by a login moments ago is told apart from a stale one). */
  | { kind: "ended"; reason: EndReason; at?: number };

/** `counts`: what the change does to the pool's live-session counts; the Worker passes them on. */
export type WriteResult =
  | { kind: "ok"; record: SessionRecord; created?: true; counts?: CountDelta }
  | { kind: "rotated"; record: SessionRecord; counts?: CountDelta }
  | { kind: "destroyed"; counts?: CountDelta }
  | { kind: "ended"; reason: EndReason; at?: number }
  | { kind: "moved"; to: Forward }
  | { kind: "migrating"; to: Forward }
  | { kind: "conflict"; version: number }
  /** The change cannot be made durable now (the recovery point would grow past its bound). */
  | { kind: "unavailable"; message: string }
  | {
      kind: "rejected";
      code: "ERR_SESSION_TOO_LARGE" | "ERR_SESSION_TOO_MANY_KEYS" | "ERR_SESSION_TOO_DEEP";
      message: string;
    };

/** Size of `{}`, the document of a session that has stored nothing. */
export const EMPTY_DATA_BYTES = 2;

/** Tokens carry at most this much clock skew past their exp (ms). */
export const SKEW_MS = 10_000;

/** lastSeen is only rewritten when it is older than this, so reads rarely write. */
export function touchInterval(idleMs: number): number {
  return Math.min(60_000, Math.floor(idleMs / 10));
}

/**
 * A token is issued at most touchInterval after the lastSeen we stored and lives
 * at most idleMs, so past this instant no token for the session can be valid and
 * its storage can go without leaving a tombstone.
 */
export function idleDeadline(r: SessionRecord): number {
  return r.lastSeen + touchInterval(r.idleMs) + r.idleMs + SKEW_MS;
}

export function absoluteDeadline(r: SessionRecord): number {
  return r.createdAt + r.absoluteMs + SKEW_MS;
}

export function expiryReason(r: SessionRecord, now: number): EndReason | undefined {
  if (now >= absoluteDeadline(r)) return "absolute";
  if (now >= idleDeadline(r)) return "idle";
  return undefined;
}

export function nextDeadline(r: SessionRecord): number {
  return Math.min(idleDeadline(r), absoluteDeadline(r));
}

export function newRecord(meta: SessionMeta, now: number): SessionRecord {
  return {
    status: "active",
    sid: meta.sid,
    epoch: meta.epoch,
    version: 0,
    data: {},
    dataBytes: EMPTY_DATA_BYTES,
    origin: meta.origin,
    region: meta.region,
    createdAt: meta.createdAt,
    updatedAt: now,
    lastSeen: now,
    idleMs: meta.idleMs,
    absoluteMs: meta.absoluteMs,
    pool: meta.pool,
    ...(meta.jurisdiction ? { jurisdiction: meta.jurisdiction } : {}),
  };
}

/** Tokens issued so far expire by now + idle; keep the tombstone that long, but never past the absolute end. */
export function tombstoneFor(r: SessionRecord | SessionMeta, reason: EndReason, now: number): SessionTombstone {
  const purgeAt = Math.min(now + r.idleMs + SKEW_MS, r.createdAt + r.absoluteMs + SKEW_MS);
  const event: AuditEntry["event"] = reason === "logout" ? "logout" : reason === "rotated" ? "rotated" : "revoked";
  const { audit } = withAudit({ audit: "audit" in r ? r.audit : [] }, event, reason, now);
  return {
    status: "destroyed",
    sid: r.sid,
    epoch: r.epoch,
    reason,
    endedAt: now,
    purgeAt: Math.max(purgeAt, now),
    audit,
  };
}

export function movedFrom(r: SessionRecord, to: Forward, reason: SessionMoved["reason"], now: number): SessionMoved {
  const purgeAt = Math.min(now + r.idleMs + SKEW_MS, r.createdAt + r.absoluteMs + SKEW_MS);
  return {
    status: "moved",
    sid: r.sid,
    epoch: r.epoch,
    region: r.region,
    to,
    reason,
    movedAt: now,
    purgeAt: Math.max(purgeAt, now),
  };
}

const encoder = new TextEncoder();

export function keyCount(value: Json): number {
  if (Array.isArray(value)) return value.reduce<number>((n, v) => n + keyCount(v), 0);
  if (isJsonObject(value)) return Object.values(value).reduce<number>((n, v) => n + 1 + keyCount(v), 0);
  return 0;
}

export function byteLength(value: Json): number {
  return encoder.encode(JSON.stringify(value)).byteLength;
}

/**
 * Applies a patch and/or login to an active record. Pure: returns the next
 * record or why it was refused; the caller stores it.
 */
export function applyChange(
  r: SessionRecord,
  change: SessionChange,
  maxDataBytes: number,
  now: number,
  maxKeys = Number.POSITIVE_INFINITY,
  maxDepth = Number.POSITIVE_INFINITY,
): { ok: true; record: SessionRecord } | { ok: false; result: WriteResult } {
  if (change.ifVersion !== undefined && change.ifVersion !== r.version)
    return { ok: false, result: { kind: "conflict", version: r.version } };
  let next: SessionRecord = { ...r, updatedAt: now, lastSeen: now };
  if (change.patch) {
    const data = applyMergePatch(r.data, change.patch);
    const data2 = isJsonObject(data) ? data : {};
    // Checked first: what is stored must survive every codec on its way (RPC, snapshot, migration).
    if (jsonDepth(data2, maxDepth) > maxDepth)
      return {
        ok: false,
        result: { kind: "rejected", code: "ERR_SESSION_TOO_DEEP", message: `session data would nest past ${maxDepth}` },
      };
    const dataBytes = byteLength(data2);
    if (dataBytes > maxDataBytes)
      return {
        ok: false,
        result: {
          kind: "rejected",
          code: "ERR_SESSION_TOO_LARGE",
          message: `session data would be ${dataBytes} bytes; the limit is ${maxDataBytes}`,
        },
      };
    const keys = keyCount(data2);
    if (keys > maxKeys)
      return {
        ok: false,
        result: {
          kind: "rejected",
          code: "ERR_SESSION_TOO_MANY_KEYS",
          message: `session data would hold ${keys} keys; the limit is ${maxKeys}`,
        },
      };
    next = { ...next, data: data2, dataBytes };
  }
  if (change.login) {
    next = { ...next, sub: change.login.sub };
    if (change.login.claims) next.claims = change.login.claims;
    else delete next.claims;
  }
  if (change.assign) {
    next = withAudit(next, "repinned", `${r.origin} → ${change.assign.oid} (${change.assign.reason})`, now);
    next.origin = change.assign.oid;
    if (change.assign.home) next.home = change.assign.home;
    else delete next.home;
  }
  if (change.login) next = withAudit(next, "login", change.login.sub, now);
  if (change.patch || change.login) next.version = r.version + 1;
  return { ok: true, record: next };
}

/** The session object's RPC surface, as the Worker (and other session objects) call it. */
export interface SessionRpc {
  read(meta: SessionMeta, seenFrom?: string): Promise<ReadResult>;
  write(meta: SessionMeta, change: SessionChange): Promise<WriteResult>;
  adopt(meta: SessionMeta, from: SessionRecord, via: "rotation" | "migration"): Promise<WriteResult>;
  /** `why` goes into the audit trail (e.g. "over MAX_SESSIONS_PER_USER (3)"). */
  revoke(meta: SessionMeta, why?: string): Promise<WriteResult>;
  migrate(to: Omit<Forward, "epoch">, trigger: string): Promise<MigrateResult>;
  restore(meta: SessionMeta, from: RestoreSource, predecessors: Forward[]): Promise<WriteResult>;
  /** A newer epoch (`to`) took over from a snapshot at version `base`. */
  fence(to: Forward, base: number): Promise<void>;
  /** Writes an older epoch committed after the snapshot this one was restored from. */
  catchUp(from: Forward, entries: LogEntry[], state?: LogEntry["state"]): Promise<WriteResult>;
  /** A migration that could not hand over asks its target to give up; "adopted": too late, it has the state. */
  abandon(sid: string, epoch: number, fromEpoch: number): Promise<"abandoned" | "adopted">;
  inspect(): Promise<StoredSession | undefined>;
}

export type MigrateResult =
  | { kind: "migrated"; from: Forward; to: Forward; durationMs: number }
  | { kind: "moved"; to: Forward }
  | { kind: "pending"; to: Forward }
  | { kind: "not_found" }
  | { kind: "ended"; reason: EndReason }
  | { kind: "refused"; code: ErrorCode; message: string };
