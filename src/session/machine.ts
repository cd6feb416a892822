/**
 * The session object's protocol as a pure state machine (DESIGN.md §3):
 * `step(state, event) → { state, effects, reply }`. The Durable Object
 * (object.ts) is a thin shell: it loads the state, steps, persists what step
 * returned, and runs the effects. An effect whose outcome matters (a snapshot
 * written, a hand-over done) comes back as a new event, stepped against the
 * state as it is *then*: no copy of state read before an await is ever written
 * back.
 *
 *   fresh ──write/adopt/restore──▶ active ──migrate──▶ active+migration (frozen)
 *                                    │                    ├─handOverDone──▶ moved ──purge──▶ fresh
 *                                    │                    └─handOverFailed (target abandoned)──▶ active
 *                                    ├─fence (a newer epoch took over)──▶ moved (+ catch-up of unsnapshotted writes)
 *                                    ├─logout / login rotation / revoke──▶ destroyed ──purge──▶ fresh
 *                                    └─idle / absolute end──▶ fresh (purged)
 */
import type { MetricPoint } from "../observe/metric-point.ts";
import { applyMergePatch, isJsonObject, type JsonObject } from "./merge-patch.ts";
import { awayAfter, jurisdictionAllows, shouldFollow } from "./migration.ts";
import {
  type AuditEntry,
  applyChange,
  byteLength,
  type CountDelta,
  type EndReason,
  expiryReason,
  type Forward,
  type MigrateResult,
  movedFrom,
  newRecord,
  nextDeadline,
  type ReadResult,
  type SessionChange,
  type SessionMeta,
  type SessionRecord,
  type SessionTombstone,
  type StoredSession,
  tombstoneFor,
  touchInterval,
  type WriteResult,
  withAudit,
} from "./record.ts";

/** KV accepts about one write per second per key: snapshots of one session are at least this far apart. */
export const SNAPSHOT_INTERVAL_MS = 1000;
/**
 * Writes are refused (503) once the oldest write not yet in a snapshot is this old: the recovery
 * point stays bounded even when KV keeps failing, instead of growing without limit.
 */
export const MAX_SNAPSHOT_LAG_MS = 15_000;
/**
 * The most writes kept for catch-up beyond the last snapshot. The time bound above is the one that
 * matters; this one only caps the log of a very hot session (a snapshot covers a second of writes).
 */
export const MAX_UNSNAPSHOTTED_WRITES = 20_000;
/** Hand-over attempts before the migration asks its target to abandon, so it can be aborted. */
export const HANDOVER_ATTEMPTS_BEFORE_ABORT = 3;
/** The longest pause between attempts to fence an older epoch after a restore. */
export const FENCE_RETRY_MAX_MS = 5000;
/** How long an abandoned migration target keeps refusing a late hand-over. */
export const ABANDONED_KEEP_MS = 7 * 24 * 3600_000;

/**
 * One committed change, kept until a snapshot covers it. If a restore elsewhere
 * started from an older snapshot, the fenced object sends these on (catch-up),
 * so an acknowledged write is never lost to a restore.
 */
export interface LogEntry {
  version: number;
  at: number;
  patch?: JsonObject;
  /** A whole state that arrived at once (adopted from a rotation or migration). */
  state?: { data: JsonObject; sub?: string; claims?: JsonObject };
}

/** What the object owes and remembers beside the session itself. */
export interface Book {
  /** The version the newest snapshot in KV holds (0: none). A snapshot is owed exactly when version > this. */
  snapshottedVersion: number;
  lastSnapshotAt?: number;
  snapshotWrites?: number;
  /** Whether a snapshot exists in KV that must be deleted when the session ends. */
  snapshotted?: boolean;
  /** When the oldest change not yet in a snapshot was committed. */
  owedSince?: number;
  /** A failed snapshot is tried again no sooner than this. */
  snapshotRetryAt?: number;
  /** Older epochs to fence after a restore, until each has answered. `base`: the version the restore started from. */
  fencePush?: { targets: Forward[]; base: number; at: number; attempt: number };
  /** After being fenced: the writes past `base` still to hand to the epoch that took over. */
  catchUp?: { to: Forward; base: number; at: number; attempt: number; state: NonNullable<LogEntry["state"]> };
  /** Catch-ups already applied here, per source epoch: the highest version received (idempotence). */
  caughtUp?: Record<string, number>;
  /** A hand-over that failed, retried at `at`. */
  handOverRetry?: { at: number };
  /** Hand-over attempts that failed for the migration in progress. */
  handOverFailures?: number;
  /** The object this state was adopted from (`sid:epoch`): a repeated adopt from it is answered, any other refused. */
  adoptedFrom?: string;
  /** Epochs a hand-over abandoned: the next migration skips past them. */
  lastAbandonedEpoch?: number;
}

export interface MachineState {
  stored: StoredSession | undefined;
  book: Book;
}

export const EMPTY_BOOK: Book = { snapshottedVersion: 0 };

export type SessionEvent =
  | { type: "read"; meta: SessionMeta; seenFrom?: string }
  | { type: "write"; meta: SessionMeta; change: SessionChange }
  | { type: "adopt"; meta: SessionMeta; from: SessionRecord; via: "rotation" | "migration" }
  | { type: "restore"; meta: SessionMeta; from: RestoreSource; predecessors: Forward[] }
  | { type: "fence"; to: Forward; base: number }
  | { type: "catchUp"; from: Forward; entries: LogEntry[]; state?: LogEntry["state"] }
  | { type: "abandon"; sid: string; epoch: number; fromEpoch: number }
  /** `why`: who revoked it (an operator, a user-wide logout), for the audit trail. */
  | { type: "revoke"; meta: SessionMeta; why?: string }
  | { type: "migrate"; target: Omit<Forward, "epoch">; trigger: string }
  | { type: "handOverDone"; to: Forward }
  | { type: "handOverFailed"; to: Forward; abandoned: boolean; error: string }
  | { type: "snapshotWritten"; version: number }
  | { type: "snapshotFailed"; error: string }
  | { type: "fencePushed"; answered: Forward[] }
  | { type: "catchUpDelivered"; ok: boolean }
  | { type: "alarm" };

/** What a restore starts from: a decoded snapshot, or nothing (no snapshot was ever written). */
export interface RestoreSource {
  version: number;
  epoch: number;
  data: JsonObject;
  sub?: string;
  claims?: JsonObject;
  origin: string;
  home?: string;
  createdAt: number;
  updatedAt: number;
  takenAt?: number;
}

export type Effect =
  /** Write the current record to KV (the shell checks for a newer epoch first, then answers snapshotWritten/Failed). */
  | { type: "putSnapshot" }
  | { type: "deleteSnapshot"; sid: string }
  | { type: "appendLog"; entry: LogEntry }
  | { type: "trimLog"; through: number }
  /** Hand the frozen record to the next epoch (answers handOverDone/Failed); `abandonOnFailure`: ask it to give up. */
  | { type: "handOver"; record: SessionRecord; to: Forward; abandonOnFailure: boolean }
  | { type: "pushFence"; sid: string; targets: Forward[]; to: Forward; base: number }
  | { type: "pushCatchUp"; sid: string; from: Forward; to: Forward; base: number }
  /** Start a migration after this call (automatic migration: the client is elsewhere). */
  | { type: "migrateSoon"; target: Omit<Forward, "epoch"> }
  /** Counts and timeline for the pool; sent by the shell (alarm) or handed to the Worker in the reply. */
  | {
      type: "report";
      /** The pool (POOL_NAME) whose counts and timeline these are: the session's own, stored in its record. */
      pool: string;
      counts?: CountDelta;
      event?: { name: string; oid: string; detail: string };
    }
  | { type: "log"; level: "info" | "warn" | "error"; event: string; fields: Record<string, unknown> }
  /** A data point for the metrics dataset (Analytics Engine). */
  | { type: "metric"; point: MetricPoint }
  | { type: "purge" };

/** What each kind of RPC answers. */
export interface Replies {
  read: ReadResult;
  write: WriteResult;
  migrate: MigrateResult;
  abandon: "abandoned" | "adopted";
}

export type Reply = { [K in keyof Replies]: { to: K; result: Replies[K] } }[keyof Replies] | { to: "none" };

export interface Step {
  state: MachineState;
  effects: Effect[];
  reply: Reply;
}

const none: Reply = { to: "none" };

function forwardOf(r: { epoch: number; region: string; jurisdiction?: string }): Forward {
  return { epoch: r.epoch, region: r.region, ...(r.jurisdiction ? { jurisdiction: r.jurisdiction } : {}) };
}

function counts(oid: string, reg: string, d: number): CountDelta {
  return { sessions: { [oid]: d }, regions: { [reg]: d } };
}

/** A snapshot is owed exactly when the record is ahead of the newest snapshot. */
export function snapshotOwed(s: MachineState): boolean {
  return s.stored?.status === "active" && s.stored.version > s.book.snapshottedVersion;
}

/** When the owed snapshot may be written: at once, but no sooner than one interval after the last (KV's per-key rate). */
export function snapshotDueAt(s: MachineState): number | undefined {
  if (!snapshotOwed(s)) return undefined;
  const coalesced = (s.book.lastSnapshotAt ?? 0) + SNAPSHOT_INTERVAL_MS;
  return Math.max(coalesced, s.book.snapshotRetryAt ?? 0, s.book.owedSince ?? 0);
}

/** The one alarm time that serves every deadline the state holds (null: none). */
export function nextAlarm(s: MachineState): number | null {
  const times: number[] = [];
  const { stored, book } = s;
  if (stored?.status === "active") times.push(nextDeadline(stored));
  else if (stored) times.push(stored.purgeAt);
  const snap = snapshotDueAt(s);
  for (const at of [snap, book.fencePush?.at, book.catchUp?.at, book.handOverRetry?.at])
    if (at !== undefined) times.push(at);
  return times.length ? Math.min(...times) : null;
}

function auditLog(before: StoredSession | undefined, after: { sid: string; epoch: number; audit?: AuditEntry[] }) {
  const seen = before && "audit" in before ? (before.audit?.at(-1)?.n ?? 0) : 0;
  return (after.audit ?? [])
    .filter((e) => (e.n ?? 0) > seen)
    .map(
      (e): Effect => ({
        type: "log",
        level: "info",
        event: "session_audit",
        fields: { sid: after.sid, epoch: after.epoch, what: e.event, detail: e.detail ?? null },
      }),
    );
}

/** The whole of what a catch-up may have to carry: the document and the login. */
function wholeState(r: SessionRecord): NonNullable<LogEntry["state"]> {
  return {
    data: r.data,
    ...(r.sub !== undefined ? { sub: r.sub } : {}),
    ...(r.claims ? { claims: r.claims } : {}),
  };
}

/** Stores a changed record: the change goes in the catch-up log, and a snapshot becomes owed. */
function commit(s: MachineState, record: SessionRecord, now: number, entry?: Omit<LogEntry, "version" | "at">): Step {
  const effects: Effect[] = auditLog(s.stored, record);
  const book: Book = { ...s.book };
  if (record.version > book.snapshottedVersion && book.owedSince === undefined) book.owedSince = now;
  if (entry && (s.stored?.status !== "active" || record.version !== s.stored.version))
    effects.push({ type: "appendLog", entry: { ...entry, version: record.version, at: now } });
  return { state: { stored: record, book }, effects, reply: none };
}

/** Ends an active session: a tombstone for logout, rotation and revoke; nothing at all for timeouts. */
function end(s: MachineState, record: SessionRecord | SessionMeta, reason: EndReason, now: number): Step {
  const effects: Effect[] = [];
  if (s.book.snapshotted) effects.push({ type: "deleteSnapshot", sid: record.sid });
  effects.push({ type: "trimLog", through: Number.MAX_SAFE_INTEGER });
  effects.push({
    type: "log",
    level: "info",
    event: "session_ended",
    fields: { sid: record.sid, epoch: record.epoch, reason },
  });
  if (reason === "idle" || reason === "absolute") {
    // Every token for it has expired by now (see idleDeadline): nothing needs to remain.
    effects.push({ type: "purge" });
    return { state: { stored: undefined, book: EMPTY_BOOK }, effects, reply: none };
  }
  const tombstone = tombstoneFor(record, reason, now);
  effects.unshift(...auditLog(s.stored, tombstone));
  return { state: { stored: tombstone, book: EMPTY_BOOK }, effects, reply: none };
}

/** The session as of now, ending it first when a timeout has passed (the alarm may lag). */
function current(s: MachineState, now: number): { s: MachineState; effects: Effect[]; read: ReadResult } {
  const { stored } = s;
  if (!stored) return { s, effects: [], read: { kind: "fresh" } };
  if (stored.status === "destroyed")
    return { s, effects: [], read: { kind: "ended", reason: stored.reason, at: stored.endedAt } };
  if (stored.status === "moved") return { s, effects: [], read: { kind: "moved", to: stored.to } };
  const expired = expiryReason(stored, now);
  if (expired) {
    const ended = end(s, stored, expired, now);
    const report: Effect = { type: "report", pool: stored.pool, counts: counts(stored.origin, stored.region, -1) };
    return { s: ended.state, effects: [...ended.effects, report], read: { kind: "ended", reason: expired, at: now } };
  }
  return { s, effects: [], read: { kind: "active", record: stored } };
}

/** What a request gets back: the record without its audit trail (for operators, not copied on every call). */
export function forWorker(r: SessionRecord): SessionRecord {
  if (!r.audit) return r;
  const { audit: _audit, ...rest } = r;
  return rest;
}

function read(s: MachineState, e: Extract<SessionEvent, { type: "read" }>, now: number): Step {
  const cur = current(s, now);
  if (cur.read.kind !== "active")
    return { state: cur.s, effects: cur.effects, reply: { to: "read", result: cur.read } };
  let record = cur.read.record;
  const away = e.seenFrom ? awayAfter(record, e.seenFrom, now) : record.away;
  const touched = now - record.lastSeen >= touchInterval(record.idleMs);
  if (touched || away !== record.away) {
    record = { ...record, lastSeen: touched ? now : record.lastSeen };
    if (away) record.away = away;
    else delete record.away;
  }
  const effects: Effect[] = [];
  const target = e.seenFrom ? { region: e.seenFrom } : undefined;
  if (
    e.meta.migrateAfter &&
    target &&
    !record.migration &&
    shouldFollow(away, e.meta.migrateAfter, now) &&
    jurisdictionAllows(record.jurisdiction, target)
  )
    // The session follows its user; this request is served from here meanwhile, the next one is forwarded.
    effects.push({ type: "migrateSoon", target });
  return {
    state: { stored: record, book: s.book },
    effects,
    reply: { to: "read", result: { kind: "active", record: forWorker(record) } },
  };
}

function initial(meta: SessionMeta, now: number): SessionRecord {
  return withAudit(newRecord(meta, now), "created", `origin ${meta.origin}, region ${meta.region}`, now);
}

/** Whether this object can take one more change and still keep the recovery point bounded. */
function lagging(s: MachineState, r: SessionRecord, now: number): boolean {
  const { owedSince, snapshottedVersion } = s.book;
  if (r.version - snapshottedVersion >= MAX_UNSNAPSHOTTED_WRITES) return true;
  return owedSince !== undefined && now - owedSince > MAX_SNAPSHOT_LAG_MS;
}

function write(s: MachineState, e: Extract<SessionEvent, { type: "write" }>, now: number): Step {
  const reply = (result: WriteResult, st: Step): Step => ({ ...st, reply: { to: "write", result } });
  const cur = current(s, now);
  const base: Step = { state: cur.s, effects: cur.effects, reply: none };
  if (cur.read.kind === "ended" || cur.read.kind === "moved") return reply(cur.read, base);
  const fresh = cur.read.kind === "fresh";
  const record = cur.read.kind === "active" ? cur.read.record : initial(e.meta, now);
  if (record.migration) return reply({ kind: "migrating", to: record.migration.to }, base);
  const { change } = e;
  if (change.logout) {
    if (fresh) {
      // Nothing was stored: a tombstone alone refuses the token from now on.
      const st = end(cur.s, e.meta, "logout", now);
      return reply({ kind: "destroyed" }, st);
    }
    const st = end(cur.s, record, "logout", now);
    return reply({ kind: "destroyed", counts: counts(record.origin, record.region, -1) }, st);
  }
  if (!fresh && (change.patch || change.login) && lagging(cur.s, record, now))
    return reply(
      { kind: "unavailable", message: "the session's snapshots are behind; the change cannot be made durable now" },
      base,
    );
  const applied = applyChange(record, change, e.meta.maxDataBytes, now, e.meta.maxKeys, e.meta.maxDepth);
  if (!applied.ok) return reply(applied.result, base);
  if (change.login) {
    // Session id rotation: this id is finished; the Worker hands the state to a new one, which counts it.
    const st = end(cur.s, applied.record, "rotated", now);
    const endedCounts = fresh ? undefined : counts(record.origin, record.region, -1);
    // The whole record, audit trail included: the successor keeps the history.
    return reply({ kind: "rotated", record: applied.record, ...(endedCounts ? { counts: endedCounts } : {}) }, st);
  }
  const st = commit(cur.s, applied.record, now, change.patch ? { patch: change.patch } : undefined);
  let delta: CountDelta | undefined;
  if (fresh) delta = counts(applied.record.origin, applied.record.region, 1);
  else if (change.assign && record.origin !== applied.record.origin)
    delta = { sessions: { [record.origin]: -1, [applied.record.origin]: 1 }, regions: {} };
  const result: WriteResult = {
    kind: "ok",
    record: forWorker(applied.record),
    ...(fresh ? { created: true as const } : {}),
    ...(delta ? { counts: delta } : {}),
  };
  return reply(result, { ...st, effects: cur.effects.concat(st.effects) });
}

function adopt(s: MachineState, e: Extract<SessionEvent, { type: "adopt" }>, now: number): Step {
  const { stored } = s;
  const reply = (result: WriteResult): Step => ({ state: s, effects: [], reply: { to: "write", result } });
  const source = `${e.from.sid}:${e.from.epoch}`;
  if (stored?.status === "active")
    // The same hand-over again (its answer was lost): already done. Anything else here (a restore got
    // here first) is a live copy that must not be overwritten; the sender learns of it by fence.
    return reply(
      s.book.adoptedFrom === source
        ? { kind: "ok", record: forWorker(stored) }
        : { kind: "conflict", version: stored.version },
    );
  if (stored?.status === "destroyed") return reply({ kind: "ended", reason: stored.reason, at: stored.endedAt });
  if (stored?.status === "moved") return reply({ kind: "moved", to: stored.to });
  const { migration: _m, away: _a, ...state } = e.from;
  const { meta } = e;
  let record: SessionRecord = {
    ...state,
    sid: meta.sid,
    epoch: meta.epoch,
    region: meta.region,
    updatedAt: now,
    lastSeen: now,
    idleMs: meta.idleMs,
    absoluteMs: meta.absoluteMs,
    pool: meta.pool,
    ...(e.via === "rotation" ? { origin: meta.origin, createdAt: meta.createdAt } : {}),
  };
  if (meta.jurisdiction) record.jurisdiction = meta.jurisdiction;
  else delete record.jurisdiction;
  // Rotation keeps the history (its last line is the login that caused it); a migration adds its arrival.
  if (e.via === "migration")
    record = withAudit(record, "migrated_in", `from epoch ${e.from.epoch} in ${e.from.region}`, now);
  const st = commit({ stored: undefined, book: EMPTY_BOOK }, record, now, { state: wholeState(record) });
  // A rotated session's old id was uncounted when it ended; a migration's counts move on hand-over.
  const delta = e.via === "rotation" ? { counts: counts(record.origin, record.region, 1) } : {};
  // The new epoch snapshots at once (putSnapshot first): a login or a migration is never only in one object.
  return {
    state: { stored: st.state.stored, book: { ...st.state.book, adoptedFrom: source } },
    effects: [{ type: "putSnapshot" }, ...st.effects],
    reply: { to: "write", result: { kind: "ok", record: forWorker(record), ...delta } },
  };
}

function restore(s: MachineState, e: Extract<SessionEvent, { type: "restore" }>, now: number): Step {
  const { stored } = s;
  const reply = (result: WriteResult): Step => ({ state: s, effects: [], reply: { to: "write", result } });
  // Someone else restored (or migrated) into this epoch first: it is the live copy; never overwrite it.
  if (stored?.status === "active") return reply({ kind: "ok", record: forWorker(stored) });
  if (stored?.status === "destroyed") return reply({ kind: "ended", reason: stored.reason, at: stored.endedAt });
  if (stored?.status === "moved") return reply({ kind: "moved", to: stored.to });
  const { meta, from } = e;
  let record: SessionRecord = {
    ...newRecord(meta, now),
    version: from.version,
    data: from.data,
    dataBytes: byteLength(from.data),
    origin: from.origin,
    createdAt: from.createdAt,
    updatedAt: from.updatedAt,
    ...(from.home ? { home: from.home } : {}),
    ...(from.sub !== undefined ? { sub: from.sub } : {}),
    ...(from.claims ? { claims: from.claims } : {}),
  };
  const age = from.takenAt !== undefined ? `, ${now - from.takenAt} ms old` : "";
  const source = from.takenAt !== undefined ? `snapshot v${from.version} of epoch ${from.epoch}${age}` : "no snapshot";
  record = withAudit(record, "restored", `from ${source}`, now);
  const st = commit({ stored: undefined, book: EMPTY_BOOK }, record, now);
  const book: Book = {
    ...st.state.book,
    // The restored state is what KV already holds (or nothing was ever stored): no snapshot is owed for it.
    snapshottedVersion: from.takenAt !== undefined ? from.version : 0,
    ...(from.takenAt !== undefined ? { snapshotted: true } : {}),
    fencePush: { targets: e.predecessors, base: from.version, at: now, attempt: 0 },
  };
  if (book.snapshottedVersion >= record.version) delete book.owedSince;
  return {
    state: { stored: record, book },
    effects: st.effects,
    reply: {
      to: "write",
      result: { kind: "ok", record: forWorker(record), counts: counts(record.origin, record.region, 1) },
    },
  };
}

/** A newer epoch holds the session: stop accepting writes, forward instead, and send on what it may lack. */
function fence(s: MachineState, e: Extract<SessionEvent, { type: "fence" }>, now: number): Step {
  const { stored } = s;
  if (stored?.status !== "active" || stored.epoch >= e.to.epoch) return { state: s, effects: [], reply: none };
  // A moved record keeps no audit trail: the fence's line goes to the log only.
  const moved = movedFrom(stored, e.to, "fenced", now);
  const effects: Effect[] = [
    ...auditLog(stored, withAudit(stored, "fenced", `epoch ${e.to.epoch} in ${e.to.region} took over`, now)),
    {
      type: "log",
      level: "warn",
      event: "session_fenced",
      fields: {
        sid: stored.sid,
        epoch: stored.epoch,
        to_epoch: e.to.epoch,
        to_region: e.to.region,
        version: stored.version,
      },
    },
    { type: "report", pool: stored.pool, counts: counts(stored.origin, stored.region, -1) },
  ];
  const book: Book = { snapshottedVersion: s.book.snapshottedVersion };
  // Writes committed here after the snapshot the newer epoch started from: hand them on (never lost).
  if (stored.version > e.base)
    book.catchUp = {
      to: e.to,
      base: e.base,
      at: now,
      attempt: 0,
      // Kept in case the log no longer reaches back to `base` (it is trimmed as snapshots land).
      state: wholeState(stored),
    };
  if (s.book.snapshotted) book.snapshotted = true;
  return { state: { stored: { ...moved, version: stored.version }, book }, effects, reply: none };
}

function catchUp(s: MachineState, e: Extract<SessionEvent, { type: "catchUp" }>, now: number): Step {
  const { stored } = s;
  if (stored?.status === "moved")
    return { state: s, effects: [], reply: { to: "write", result: { kind: "moved", to: stored.to } } };
  if (stored?.status !== "active")
    return { state: s, effects: [], reply: { to: "write", result: { kind: "ended", reason: "revoked", at: now } } };
  const key = String(e.from.epoch);
  const seen = s.book.caughtUp?.[key] ?? -1;
  const entries = e.entries.filter((x) => x.version > seen).sort((a, b) => a.version - b.version);
  if (!entries.length && !e.state)
    return { state: s, effects: [], reply: { to: "write", result: { kind: "ok", record: forWorker(stored) } } };
  let data: JsonObject = stored.data;
  let { sub, claims } = stored;
  if (e.state) {
    // The source could not account for every write since the restore's base: merge its whole document.
    const merged = applyMergePatch(data, e.state.data);
    data = isJsonObject(merged) ? merged : data;
    if (sub === undefined && e.state.sub !== undefined) ({ sub, claims } = e.state);
  }
  for (const x of entries) {
    const patched = x.patch ? applyMergePatch(data, x.patch) : x.state ? applyMergePatch(data, x.state.data) : data;
    data = isJsonObject(patched) ? patched : data;
  }
  const highest = Math.max(seen, ...entries.map((x) => x.version));
  let record: SessionRecord = {
    ...stored,
    data,
    dataBytes: byteLength(data),
    version: stored.version + 1,
    updatedAt: now,
    ...(sub !== undefined ? { sub } : {}),
    ...(claims ? { claims } : {}),
  };
  record = withAudit(record, "caught_up", `${entries.length} write(s) from epoch ${e.from.epoch}`, now);
  const st = commit(s, record, now, { patch: data });
  st.state.book = { ...st.state.book, caughtUp: { ...s.book.caughtUp, [key]: highest } };
  return { ...st, reply: { to: "write", result: { kind: "ok", record: forWorker(record) } } };
}

function abandon(s: MachineState, e: Extract<SessionEvent, { type: "abandon" }>, now: number): Step {
  if (s.stored) return { state: s, effects: [], reply: { to: "abandon", result: "adopted" } };
  // This epoch never received the state and now never will: a later adopt finds a tombstone.
  const tombstone: SessionTombstone = {
    status: "destroyed",
    sid: e.sid,
    epoch: e.epoch,
    reason: "aborted",
    endedAt: now,
    // Longer than any token or forward pointer that could name this epoch.
    purgeAt: now + ABANDONED_KEEP_MS,
  };
  return {
    state: { stored: tombstone, book: EMPTY_BOOK },
    effects: [{ type: "log", level: "warn", event: "migration_target_abandoned", fields: { from_epoch: e.fromEpoch } }],
    reply: { to: "abandon", result: "abandoned" },
  };
}

function revoke(s: MachineState, e: Extract<SessionEvent, { type: "revoke" }>, now: number): Step {
  const cur = current(s, now);
  if (cur.read.kind === "ended" || cur.read.kind === "moved")
    return { state: cur.s, effects: cur.effects, reply: { to: "write", result: cur.read } };
  const record = cur.read.kind === "active" ? withAudit(cur.read.record, "revoked", e.why, now) : e.meta;
  const st = end(cur.s, record, "revoked", now);
  const delta = "status" in record ? { counts: counts(record.origin, record.region, -1) } : {};
  return {
    ...st,
    effects: cur.effects.concat(st.effects),
    reply: { to: "write", result: { kind: "destroyed", ...delta } },
  };
}

function migrate(s: MachineState, e: Extract<SessionEvent, { type: "migrate" }>, now: number): Step {
  const cur = current(s, now);
  const reply = (result: MigrateResult, st: Step = { state: cur.s, effects: cur.effects, reply: none }): Step => ({
    ...st,
    reply: { to: "migrate", result },
  });
  if (cur.read.kind === "fresh") return reply({ kind: "not_found" });
  if (cur.read.kind === "ended") return reply({ kind: "ended", reason: cur.read.reason });
  if (cur.read.kind === "moved") return reply({ kind: "moved", to: cur.read.to });
  let record = cur.read.record;
  if (!record.migration) {
    if (!jurisdictionAllows(record.jurisdiction, e.target))
      return reply({
        kind: "refused",
        code: "ERR_JURISDICTION",
        message: `session is pinned to the ${record.jurisdiction} jurisdiction; ${e.target.jurisdiction ?? e.target.region} is outside it`,
      });
    const jur = e.target.jurisdiction ?? record.jurisdiction;
    const ep = Math.max(record.epoch, s.book.lastAbandonedEpoch ?? 0) + 1;
    const to: Forward = { epoch: ep, region: e.target.region, ...(jur ? { jurisdiction: jur } : {}) };
    record = { ...record, migration: { to, startedAt: now, trigger: e.trigger } };
    delete record.away;
  }
  const { to } = record.migration ?? { to: { epoch: 0, region: "" } };
  const failures = s.book.handOverFailures ?? 0;
  const book: Book = { ...s.book };
  delete book.handOverRetry;
  return reply(
    { kind: "pending", to },
    {
      state: { stored: record, book },
      effects: [
        ...cur.effects,
        { type: "handOver", record, to, abandonOnFailure: failures + 1 >= HANDOVER_ATTEMPTS_BEFORE_ABORT },
      ],
      reply: none,
    },
  );
}

function handOverDone(s: MachineState, e: Extract<SessionEvent, { type: "handOverDone" }>, now: number): Step {
  const { stored } = s;
  // The hand-over awaited another object; whatever ran meanwhile could not write (frozen), but may have ended it.
  if (stored?.status !== "active" || stored.migration?.to.epoch !== e.to.epoch)
    return {
      state: s,
      effects: [],
      reply: {
        to: "migrate",
        result: stored?.status === "moved" ? { kind: "moved", to: stored.to } : { kind: "not_found" },
      },
    };
  const m = stored.migration;
  const from = forwardOf(stored);
  const out = withAudit(stored, "migrated_out", `to ${e.to.region}`, now);
  const durationMs = now - m.startedAt;
  return {
    // The next epoch holds the state and snapshots it itself; nothing is owed here any more.
    state: {
      stored: movedFrom(out, e.to, "migrated", now),
      book: { snapshottedVersion: s.book.snapshottedVersion, ...(s.book.snapshotted ? { snapshotted: true } : {}) },
    },
    effects: [
      ...auditLog(stored, out),
      { type: "trimLog", through: Number.MAX_SAFE_INTEGER },
      {
        type: "log",
        level: "info",
        event: "session_migrated",
        fields: {
          sid: stored.sid,
          from_region: from.region,
          from_epoch: from.epoch,
          to_region: e.to.region,
          to_epoch: e.to.epoch,
          trigger: m.trigger,
          duration_ms: durationMs,
          bytes: stored.dataBytes,
        },
      },
      {
        type: "metric",
        point: {
          event: "migration",
          origin: stored.origin,
          region: e.to.region,
          detail: `${from.region}→${e.to.region} ${m.trigger}`,
          ms: durationMs,
        },
      },
      {
        type: "report",
        pool: stored.pool,
        counts: { sessions: {}, regions: { [from.region]: -1, [e.to.region]: 1 } },
        event: {
          name: "session_migrated",
          oid: stored.origin,
          detail: `${stored.sid} ${from.region}→${e.to.region} (${m.trigger}, ${durationMs} ms)`,
        },
      },
    ],
    reply: { to: "migrate", result: { kind: "migrated", from, to: e.to, durationMs } },
  };
}

function handOverFailed(s: MachineState, e: Extract<SessionEvent, { type: "handOverFailed" }>, now: number): Step {
  const { stored } = s;
  if (stored?.status !== "active" || stored.migration?.to.epoch !== e.to.epoch)
    return { state: s, effects: [], reply: { to: "migrate", result: { kind: "pending", to: e.to } } };
  if (e.abandoned) {
    // The target confirmed it never took the state and never will: unfreeze, one active copy still.
    const { migration, ...rest } = stored;
    const record = withAudit(rest as SessionRecord, "migration_aborted", `to ${e.to.region}: ${e.error}`, now);
    const book: Book = { ...s.book, lastAbandonedEpoch: e.to.epoch };
    delete book.handOverRetry;
    delete book.handOverFailures;
    return {
      state: { stored: record, book },
      effects: [
        ...auditLog(stored, record),
        {
          type: "log",
          level: "error",
          event: "migration_aborted",
          fields: {
            sid: stored.sid,
            epoch: stored.epoch,
            to_epoch: e.to.epoch,
            to_region: e.to.region,
            message: e.error,
          },
        },
        {
          type: "report",
          pool: stored.pool,
          event: {
            name: "migration_aborted",
            oid: stored.origin,
            detail: `${stored.sid} → ${e.to.region}: ${e.error}`,
          },
        },
      ],
      reply: {
        to: "migrate",
        result: { kind: "refused", code: "ERR_MIGRATION_ABORTED", message: `migration aborted: ${e.error}` },
      },
    };
  }
  const attempt = (s.book.handOverFailures ?? 0) + 1;
  return {
    state: {
      stored,
      book: {
        ...s.book,
        handOverFailures: attempt,
        handOverRetry: { at: now + Math.min(30_000, 1000 * 2 ** (attempt - 1)) },
      },
    },
    effects: [
      {
        type: "log",
        level: "error",
        event: "migration_stalled",
        fields: { sid: stored.sid, epoch: stored.epoch, to_epoch: e.to.epoch, attempt, message: e.error },
      },
    ],
    reply: { to: "migrate", result: { kind: "pending", to: e.to } },
  };
}

function snapshotWritten(s: MachineState, e: Extract<SessionEvent, { type: "snapshotWritten" }>, now: number): Step {
  const book: Book = {
    ...s.book,
    snapshottedVersion: Math.max(s.book.snapshottedVersion, e.version),
    lastSnapshotAt: now,
    snapshotWrites: (s.book.snapshotWrites ?? 0) + 1,
    snapshotted: true,
  };
  delete book.snapshotRetryAt;
  // Writes that landed while the snapshot was in flight are still owed: their clock starts now.
  if (s.stored?.status === "active" && s.stored.version > book.snapshottedVersion) book.owedSince = now;
  else delete book.owedSince;
  return {
    state: { stored: s.stored, book },
    effects: [{ type: "trimLog", through: book.snapshottedVersion }],
    reply: none,
  };
}

function alarm(s: MachineState, now: number): Step {
  const { stored, book } = s;
  const effects: Effect[] = [];
  let state = s;
  if (stored && stored.status !== "active" && now >= stored.purgeAt && !book.catchUp) {
    return { state: { stored: undefined, book: EMPTY_BOOK }, effects: [{ type: "purge" }], reply: none };
  }
  if (stored?.status === "active") {
    const expired = expiryReason(stored, now);
    if (expired && !stored.migration) {
      const st = end(s, stored, expired, now);
      const report: Effect = { type: "report", pool: stored.pool, counts: counts(stored.origin, stored.region, -1) };
      return { ...st, effects: [...st.effects, report] };
    }
  }
  const due = snapshotDueAt(s);
  if (due !== undefined && due <= now) effects.push({ type: "putSnapshot" });
  if (book.fencePush && book.fencePush.at <= now && stored?.status === "active")
    effects.push({
      type: "pushFence",
      sid: stored.sid,
      targets: book.fencePush.targets,
      to: forwardOf(stored),
      base: book.fencePush.base,
    });
  if (book.catchUp && book.catchUp.at <= now && stored)
    effects.push({
      type: "pushCatchUp",
      sid: stored.sid,
      from: { epoch: stored.epoch, region: "region" in stored ? (stored.region ?? "") : "" },
      to: book.catchUp.to,
      base: book.catchUp.base,
    });
  if (book.handOverRetry && book.handOverRetry.at <= now && stored?.status === "active" && stored.migration) {
    const retry = migrate(s, { type: "migrate", target: stored.migration.to, trigger: stored.migration.trigger }, now);
    state = retry.state;
    effects.push(...retry.effects);
  }
  return { state, effects, reply: none };
}

/** The transition function: pure, no I/O, no clock but `now`. */
export function step(s: MachineState, e: SessionEvent, now: number): Step {
  switch (e.type) {
    case "read":
      return read(s, e, now);
    case "write":
      return write(s, e, now);
    case "adopt":
      return adopt(s, e, now);
    case "restore":
      return restore(s, e, now);
    case "fence":
      return fence(s, e, now);
    case "catchUp":
      return catchUp(s, e, now);
    case "abandon":
      return abandon(s, e, now);
    case "revoke":
      return revoke(s, e, now);
    case "migrate":
      return migrate(s, e, now);
    case "handOverDone":
      return handOverDone(s, e, now);
    case "handOverFailed":
      return handOverFailed(s, e, now);
    case "snapshotWritten":
      return snapshotWritten(s, e, now);
    case "snapshotFailed": {
      const book: Book = { ...s.book, snapshotRetryAt: now + SNAPSHOT_INTERVAL_MS };
      return {
        state: { stored: s.stored, book },
        effects: [{ type: "log", level: "warn", event: "snapshot_failed", fields: { message: e.error } }],
        reply: none,
      };
    }
    case "fencePushed": {
      const push = s.book.fencePush;
      if (!push) return { state: s, effects: [], reply: none };
      const answered = new Set(e.answered.map((f) => `${f.epoch}`));
      const left = push.targets.filter((t) => !answered.has(`${t.epoch}`));
      const book: Book = { ...s.book };
      if (left.length)
        // Retried briskly: until it lands, a copy that comes back could still answer reads.
        book.fencePush = {
          ...push,
          targets: left,
          attempt: push.attempt + 1,
          at: now + Math.min(FENCE_RETRY_MAX_MS, 500 * 2 ** push.attempt),
        };
      else delete book.fencePush;
      return { state: { stored: s.stored, book }, effects: [], reply: none };
    }
    case "catchUpDelivered": {
      const c = s.book.catchUp;
      if (!c) return { state: s, effects: [], reply: none };
      const book: Book = { ...s.book };
      if (e.ok) delete book.catchUp;
      else book.catchUp = { ...c, attempt: c.attempt + 1, at: now + Math.min(60_000, 1000 * 2 ** c.attempt) };
      return {
        state: { stored: s.stored, book },
        effects: e.ok ? [{ type: "trimLog", through: Number.MAX_SAFE_INTEGER }] : [],
        reply: none,
      };
    }
    case "alarm":
      return alarm(s, now);
  }
}
