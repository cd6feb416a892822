import { applyMergePatch, isJsonObject, type Json, type JsonObject } from "./merge-patch.ts";

export type EndReason = "logout" | "rotated" | "idle" | "absolute" | "revoked";

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
  oid: string;
  /** The origin a `temporary` failover will return to. */
  home?: string;
  reg: string;
  createdAt: number;
  updatedAt: number;
  lastSeen: number;
  idleMs: number;
  absoluteMs: number;
  /** Pool whose live-session counts include this session. */
  pool: string;
}

/** What is left after logout, rotation or revocation: enough to refuse the old tokens, no data. */
export interface SessionTombstone {
  status: "destroyed";
  sid: string;
  epoch: number;
  reason: EndReason;
  endedAt: number;
  purgeAt: number;
}

export type StoredSession = SessionRecord | SessionTombstone;

/** Identity and limits the Worker knows from the token and config; a session object starts from it on first write. */
export interface SessionMeta {
  sid: string;
  epoch: number;
  oid: string;
  reg: string;
  createdAt: number;
  idleMs: number;
  absoluteMs: number;
  maxDataBytes: number;
  pool: string;
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
  assign?: { oid: string; home: string | null };
}

export type ReadResult =
  | { kind: "active"; record: SessionRecord }
  | { kind: "fresh" }
  | { kind: "ended"; reason: EndReason };

export type WriteResult =
  | { kind: "ok"; record: SessionRecord; created?: true }
  | { kind: "rotated"; record: SessionRecord }
  | { kind: "destroyed" }
  | { kind: "ended"; reason: EndReason }
  | { kind: "conflict"; version: number }
  | { kind: "rejected"; code: "ERR_SESSION_TOO_LARGE"; message: string };

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
    dataBytes: 2,
    oid: meta.oid,
    reg: meta.reg,
    createdAt: meta.createdAt,
    updatedAt: now,
    lastSeen: now,
    idleMs: meta.idleMs,
    absoluteMs: meta.absoluteMs,
    pool: meta.pool,
  };
}

/** Tokens issued so far expire by now + idle; keep the tombstone that long, but never past the absolute end. */
export function tombstoneFor(r: SessionRecord | SessionMeta, reason: EndReason, now: number): SessionTombstone {
  const purgeAt = Math.min(now + r.idleMs + SKEW_MS, r.createdAt + r.absoluteMs + SKEW_MS);
  return { status: "destroyed", sid: r.sid, epoch: r.epoch, reason, endedAt: now, purgeAt: Math.max(purgeAt, now) };
}

const encoder = new TextEncoder();

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
): { ok: true; record: SessionRecord } | { ok: false; result: WriteResult } {
  if (change.ifVersion !== undefined && change.ifVersion !== r.version)
    return { ok: false, result: { kind: "conflict", version: r.version } };
  let next: SessionRecord = { ...r, updatedAt: now, lastSeen: now };
  if (change.patch) {
    const data = applyMergePatch(r.data, change.patch);
    const data2 = isJsonObject(data) ? data : {};
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
    next = { ...next, data: data2, dataBytes };
  }
  if (change.login) {
    next = { ...next, sub: change.login.sub };
    if (change.login.claims) next.claims = change.login.claims;
    else delete next.claims;
  }
  if (change.assign) {
    next.oid = change.assign.oid;
    if (change.assign.home) next.home = change.assign.home;
    else delete next.home;
  }
  if (change.patch || change.login) next.version = r.version + 1;
  return { ok: true, record: next };
}

/** The session object's RPC surface, as the Worker calls it. */
export interface SessionRpc {
  read(meta: SessionMeta): Promise<ReadResult>;
  write(meta: SessionMeta, change: SessionChange): Promise<WriteResult>;
  adopt(meta: SessionMeta, from: SessionRecord): Promise<WriteResult>;
  revoke(meta: SessionMeta): Promise<WriteResult>;
}
