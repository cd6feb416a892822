import { DurableObject } from "cloudflare:workers";
import { log } from "../log.ts";
import { writeMetric } from "../observe/metrics.ts";
import { poolStubNamed } from "../origins/client.ts";
import type { SessionSnapshot } from "../replication/codec.ts";
import { putSnapshot, readFence, SNAPSHOT_INTERVAL_MS, snapshotKeyFor } from "../replication/store.ts";
import { sessionStub } from "./client.ts";
import { awayAfter, jurisdictionAllows, shouldFollow } from "./migration.ts";
import {
  type AuditEntry,
  applyChange,
  byteLength,
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
  type SessionRpc,
  type StoredSession,
  tombstoneFor,
  touchInterval,
  type WriteResult,
  withAudit,
} from "./record.ts";

const KEY = "session";

/**
 * What a request needs back: the record without its audit trail, which is for
 * operators (inspect) and would otherwise be copied over RPC on every request.
 */
function forWorker(r: SessionRecord): SessionRecord {
  if (!r.audit) return r;
  const { audit: _audit, ...rest } = r;
  return rest;
}
const TIMERS = "timers";
/** How long a "no newer epoch" answer from the KV fence is trusted before asking again. */
const FENCE_CHECK_MS = 2000;

/** Work the alarm owes, beside the session's own deadlines. */
interface Timers {
  /** A snapshot is owed at this time (coalesced: at most one per SNAPSHOT_INTERVAL_MS). */
  snapshotAt?: number;
  lastSnapshotAt?: number;
  snapshotWrites?: number;
  /** Predecessor objects to fence after a restore, retried until each has answered. */
  fencePush?: { targets: Forward[]; at: number; attempt: number };
  /** A migration whose hand-over failed is resumed at this time. */
  migrationRetryAt?: number;
  /** Whether a snapshot exists in KV that must be deleted when the session ends. */
  snapshotted?: boolean;
}

/**
 * One object per session and epoch. A state machine stored in the object:
 *
 *   (none) ──write──▶ active ──migrate──▶ active+migration (frozen) ──hand-over──▶ moved ──purge──▶ (none)
 *                       │  └──fence (a newer epoch exists)────────────────────────▶ moved
 *                       └──logout / rotation / revoke──▶ destroyed ──purge──▶ (none)
 *                       └──idle / absolute timeout──▶ (none)
 *
 * Every method applies its change without awaiting anything but this object's
 * storage, so concurrent calls are applied one after another. The exceptions
 * (the KV fence check, the hand-over to the next epoch) re-read the state after
 * their await: awaiting I/O opens the input gate, and other calls interleave.
 */
export class SessionObject extends DurableObject<Env> implements SessionRpc {
  #alarmAt: number | null | undefined;
  #fenceCheckedAt = 0;

  #load(): StoredSession | undefined {
    return this.ctx.storage.kv.get<StoredSession>(KEY);
  }

  #timers(): Timers {
    return this.ctx.storage.kv.get<Timers>(TIMERS) ?? {};
  }

  #setTimers(t: Timers): void {
    this.ctx.storage.kv.put(TIMERS, t);
  }

  /**
   * One alarm serves every deadline: the session's timeouts, a purge, an owed snapshot, a fence push, a retry.
   * Callers that have just written the state pass it, rather than have it read back.
   */
  async #reschedule(stored = this.#load(), t = this.#timers()): Promise<void> {
    const times: number[] = [];
    if (stored?.status === "active") times.push(nextDeadline(stored));
    else if (stored) times.push(stored.purgeAt);
    for (const at of [t.snapshotAt, t.fencePush?.at, t.migrationRetryAt]) if (at !== undefined) times.push(at);
    const at = times.length ? Math.min(...times) : null;
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (this.#alarmAt === at) return;
    // An alarm already set earlier is left alone: when it fires it re-checks and re-arms. Most writes
    // only push the idle deadline later, so they no longer rewrite the alarm every time.
    if (at !== null && this.#alarmAt !== null && this.#alarmAt <= at && this.#alarmAt > Date.now()) return;
    this.#alarmAt = at;
    if (at === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(at);
  }

  /** One JSON log line per audit entry a save adds: the trail in the logs matches the one in the API. */
  #logAudit(before: StoredSession | undefined, after: { sid: string; epoch: number; audit?: AuditEntry[] }): void {
    const seen = before && "audit" in before ? (before.audit?.at(-1)?.n ?? 0) : 0;
    for (const e of after.audit ?? [])
      if ((e.n ?? 0) > seen)
        log("info", "session_audit", { sid: after.sid, epoch: after.epoch, what: e.event, detail: e.detail ?? null });
  }

  /** Stores the record and owes KV a snapshot of it, no sooner than one interval after the last. */
  async #save(record: SessionRecord, changed = true): Promise<void> {
    this.#logAudit(this.#load(), record);
    this.ctx.storage.kv.put(KEY, record);
    const t = this.#timers();
    if (changed && t.snapshotAt === undefined) {
      t.snapshotAt = Math.max(Date.now(), (t.lastSnapshotAt ?? 0) + SNAPSHOT_INTERVAL_MS);
      this.#setTimers(t);
    }
    await this.#reschedule(record, t);
  }

  async #end(stored: SessionRecord | SessionMeta, reason: EndReason, now: number): Promise<void> {
    const hadSnapshot = this.#timers().snapshotted === true;
    if (reason === "idle" || reason === "absolute") {
      // Every token for it has expired by now (see idleDeadline): nothing needs to remain.
      await this.#purge();
    } else {
      const tombstone = tombstoneFor(stored, reason, now);
      this.#logAudit(this.#load(), tombstone);
      this.ctx.storage.kv.put(KEY, tombstone);
      this.ctx.storage.kv.delete(TIMERS);
      await this.#reschedule(tombstone, {});
    }
    // The snapshot goes with the session: a logged-out or timed-out session must not be restorable.
    if (hadSnapshot) this.ctx.waitUntil(this.env.SNAPSHOTS.delete(`snap:${stored.sid}`).catch(() => {}));
    log("info", "session_ended", { sid: stored.sid, epoch: stored.epoch, reason });
    if ((reason === "idle" || reason === "absolute") && "pool" in stored) {
      // Timeouts happen here, not in a request: tell the pool so its live counts (and drains) stay true.
      const pool = poolStubNamed(this.env, stored.pool);
      this.ctx.waitUntil(pool.adjustSessions({ [stored.oid]: -1 }, { [stored.reg]: -1 }).catch(() => {}));
    }
  }

  async #purge(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.#alarmAt = null;
  }

  /** The session as of now, ending it first if a timeout has passed (the alarm may lag). */
  async #current(now: number): Promise<ReadResult> {
    const stored = this.#load();
    if (!stored) return { kind: "fresh" };
    if (stored.status === "destroyed") return { kind: "ended", reason: stored.reason };
    if (stored.status === "moved") return { kind: "moved", to: stored.to };
    const expired = expiryReason(stored, now);
    if (expired) {
      await this.#end(stored, expired, now);
      return { kind: "ended", reason: expired };
    }
    return { kind: "active", record: stored };
  }

  /**
   * Before accepting a write, make sure no newer epoch has taken the session
   * over (a restore elsewhere while this object was unreachable). The restored
   * object also pushes a fence here; this check covers the time before that
   * push arrives, within KV's propagation delay (see docs/replication.md).
   */
  async #checkFence(sid: string, epoch: number): Promise<void> {
    const now = Date.now();
    if (now - this.#fenceCheckedAt < FENCE_CHECK_MS) return;
    const fence = await readFence(this.env.SNAPSHOTS, sid).catch(() => undefined);
    this.#fenceCheckedAt = Date.now();
    if (fence && fence.ep > epoch) await this.fence(fence);
  }

  async read(meta: SessionMeta, seenFrom?: string): Promise<ReadResult> {
    const now = Date.now();
    const current = await this.#current(now);
    if (current.kind !== "active") return current;
    let record = current.record;
    const away = seenFrom ? awayAfter(record, seenFrom, now) : record.away;
    const touched = now - record.lastSeen >= touchInterval(record.idleMs);
    if (touched || away !== record.away) {
      record = { ...record, lastSeen: touched ? now : record.lastSeen };
      if (away) record.away = away;
      else delete record.away;
      await this.#save(record, false);
    }
    if (meta.migrateAfter && seenFrom && !record.migration && shouldFollow(away, meta.migrateAfter, now)) {
      const target = { reg: seenFrom };
      // The session follows its user; this request is served from here meanwhile, the next one is forwarded.
      if (jurisdictionAllows(record.jur, target)) this.ctx.waitUntil(this.migrate(target, "auto").catch(() => {}));
    }
    return { kind: "active", record: forWorker(record) };
  }

  /** The record a session's first write starts from: the Worker's view of it (token claims and config). */
  #initial(meta: SessionMeta, now: number): SessionRecord {
    return withAudit(newRecord(meta, now), "created", `origin ${meta.oid}, region ${meta.reg}`, now);
  }

  async write(meta: SessionMeta, change: SessionChange): Promise<WriteResult> {
    await this.#checkFence(meta.sid, meta.epoch);
    const now = Date.now();
    const current = await this.#current(now);
    if (current.kind === "ended" || current.kind === "moved") return current;
    const record = current.kind === "active" ? current.record : this.#initial(meta, now);
    if (record.migration) return { kind: "migrating", to: record.migration.to };
    if (change.logout) {
      await this.#end(record, "logout", now);
      return { kind: "destroyed" };
    }
    const applied = applyChange(record, change, meta.maxDataBytes, now, meta.maxKeys);
    if (!applied.ok) return applied.result;
    if (change.login) {
      // Session id rotation: this id is finished; the Worker hands the state to a new one.
      await this.#end(applied.record, "rotated", now);
      return { kind: "rotated", record: applied.record };
    }
    await this.#save(applied.record);
    return current.kind === "fresh"
      ? { kind: "ok", record: forWorker(applied.record), created: true }
      : { kind: "ok", record: forWorker(applied.record) };
  }

  /** Receives a session's state: from a rotated id (new session) or from the previous epoch (migration). Idempotent. */
  async adopt(meta: SessionMeta, from: SessionRecord, via: "rotation" | "migration"): Promise<WriteResult> {
    const now = Date.now();
    const stored = this.#load();
    if (stored?.status === "active" && stored.version >= from.version) return { kind: "ok", record: stored };
    if (stored?.status === "destroyed") return { kind: "ended", reason: stored.reason };
    if (stored?.status === "moved") return { kind: "moved", to: stored.to };
    const { migration: _m, away: _a, ...state } = from;
    let record: SessionRecord = {
      ...state,
      sid: meta.sid,
      epoch: meta.epoch,
      reg: meta.reg,
      updatedAt: now,
      lastSeen: now,
      idleMs: meta.idleMs,
      absoluteMs: meta.absoluteMs,
      pool: meta.pool,
      ...(via === "rotation" ? { oid: meta.oid, createdAt: meta.createdAt } : {}),
    };
    if (meta.jur) record.jur = meta.jur;
    else delete record.jur;
    // Rotation keeps the history (its last line is the login that caused it); a migration adds its arrival.
    if (via === "migration") record = withAudit(record, "migrated_in", `from epoch ${from.epoch} in ${from.reg}`, now);
    await this.#save(record);
    return { kind: "ok", record };
  }

  /**
   * Rebuilds the session from its KV snapshot after its object was lost, then
   * fences the objects it replaces (retried by the alarm until each answers).
   */
  async restore(meta: SessionMeta, snapshot: SessionSnapshot, predecessors: Forward[]): Promise<WriteResult> {
    const now = Date.now();
    const stored = this.#load();
    if (stored?.status === "active") return { kind: "ok", record: stored };
    if (stored?.status === "destroyed") return { kind: "ended", reason: stored.reason };
    if (stored?.status === "moved") return { kind: "moved", to: stored.to };
    let record: SessionRecord = {
      ...newRecord(meta, now),
      version: snapshot.version,
      data: snapshot.data,
      dataBytes: byteLength(snapshot.data),
      oid: snapshot.origin,
      createdAt: snapshot.createdAt,
      updatedAt: snapshot.updatedAt,
      ...(snapshot.home ? { home: snapshot.home } : {}),
      ...(snapshot.auth.sub !== undefined ? { sub: snapshot.auth.sub } : {}),
      ...(snapshot.auth.claims ? { claims: snapshot.auth.claims } : {}),
    };
    const age = now - snapshot.takenAt;
    record = withAudit(
      record,
      "restored",
      `from snapshot v${snapshot.version} of epoch ${snapshot.epoch}, ${age} ms old`,
      now,
    );
    this.#setTimers({ ...this.#timers(), fencePush: { targets: predecessors, at: now, attempt: 0 } });
    await this.#save(record);
    return { kind: "ok", record };
  }

  /** A newer epoch holds the session: stop accepting writes, forward instead. */
  async fence(to: Forward): Promise<void> {
    const stored = this.#load();
    if (stored?.status !== "active" || stored.epoch >= to.ep) return;
    this.ctx.storage.kv.put(KEY, movedFrom(stored, to, "fenced", Date.now()));
    const t = this.#timers();
    delete t.snapshotAt;
    this.#setTimers(t);
    await this.#reschedule();
    log("warn", "session_fenced", {
      sid: stored.sid,
      epoch: stored.epoch,
      to_epoch: to.ep,
      to_region: to.reg,
      version: stored.version,
    });
  }

  /**
   * Migration: freeze, hand over to (sid, epoch + 1) in the target region,
   * switch to a forwarding tombstone. While frozen, writes are answered
   * "migrating" (the Worker waits and retries); reads see the frozen state.
   * If the hand-over fails the object stays frozen and the alarm retries it:
   * unfreezing could leave two objects accepting writes.
   */
  async migrate(target: Omit<Forward, "ep">, trigger: string): Promise<MigrateResult> {
    const now = Date.now();
    const current = await this.#current(now);
    if (current.kind === "fresh") return { kind: "not_found" };
    if (current.kind === "ended") return current;
    if (current.kind === "moved") return { kind: "moved", to: current.to };
    let record = current.record;
    if (!record.migration) {
      if (!jurisdictionAllows(record.jur, target))
        return {
          kind: "refused",
          code: "ERR_JURISDICTION",
          message: `session is pinned to the ${record.jur} jurisdiction; ${target.jur ?? target.reg} is outside it`,
        };
      const jur = target.jur ?? record.jur;
      const to: Forward = { ep: record.epoch + 1, reg: target.reg, ...(jur ? { jur } : {}) };
      record = { ...record, migration: { to, startedAt: now, trigger } };
      delete record.away;
      await this.#save(record, false);
    }
    return this.#handOver(record);
  }

  async #handOver(frozen: SessionRecord): Promise<MigrateResult> {
    const migration = frozen.migration;
    if (!migration) return { kind: "refused", code: "ERR_NOT_MIGRATING", message: "no migration in progress" };
    const { to } = migration;
    const meta: SessionMeta = {
      sid: frozen.sid,
      epoch: to.ep,
      oid: frozen.oid,
      reg: to.reg,
      createdAt: frozen.createdAt,
      idleMs: frozen.idleMs,
      absoluteMs: frozen.absoluteMs,
      maxDataBytes: Number.MAX_SAFE_INTEGER,
      pool: frozen.pool,
      ...(to.jur ? { jur: to.jur } : {}),
    };
    try {
      const adopted = await sessionStub(this.env, frozen.sid, to.ep, to.reg, to.jur).adopt(meta, frozen, "migration");
      if (adopted.kind !== "ok") throw new Error(`next epoch refused the hand-over (${adopted.kind})`);
    } catch (e) {
      this.#setTimers({ ...this.#timers(), migrationRetryAt: Date.now() + 1000 });
      await this.#reschedule();
      log("error", "migration_stalled", { sid: frozen.sid, epoch: frozen.epoch, to_epoch: to.ep, message: String(e) });
      return { kind: "pending", to };
    }
    const now = Date.now();
    // Re-read: the hand-over awaited another object, so other calls may have run (none could write: frozen).
    const latest = this.#load();
    if (latest?.status !== "active")
      return latest?.status === "moved" ? { kind: "moved", to: latest.to } : { kind: "not_found" };
    this.ctx.storage.kv.put(
      KEY,
      movedFrom(withAudit(latest, "migrated_out", `to ${to.reg}`, now), to, "migrated", now),
    );
    const t = this.#timers();
    delete t.snapshotAt;
    delete t.migrationRetryAt;
    this.#setTimers(t);
    await this.#reschedule();
    const from: Forward = { ep: frozen.epoch, reg: frozen.reg, ...(frozen.jur ? { jur: frozen.jur } : {}) };
    const durationMs = now - migration.startedAt;
    log("info", "session_migrated", {
      sid: frozen.sid,
      from_region: from.reg,
      from_epoch: from.ep,
      to_region: to.reg,
      to_epoch: to.ep,
      trigger: migration.trigger,
      duration_ms: durationMs,
      bytes: frozen.dataBytes,
    });
    writeMetric(this.env, {
      event: "migration",
      origin: frozen.oid,
      region: to.reg,
      detail: `${from.reg}→${to.reg} ${migration.trigger}`,
      ms: durationMs,
    });
    const pool = poolStubNamed(this.env, frozen.pool);
    this.ctx.waitUntil(
      Promise.all([
        pool.adjustSessions({}, { [from.reg]: -1, [to.reg]: 1 }),
        pool.recordEvent(
          "session_migrated",
          frozen.oid,
          `${frozen.sid} ${from.reg}→${to.reg} (${migration.trigger}, ${durationMs} ms)`,
        ),
      ]).catch(() => {}),
    );
    return { kind: "migrated", from, to, durationMs };
  }

  /** Server-side end of a session (operator revoke). */
  async revoke(meta: SessionMeta, why?: string): Promise<WriteResult> {
    const now = Date.now();
    const current = await this.#current(now);
    if (current.kind === "ended" || current.kind === "moved") return current;
    await this.#end(current.kind === "active" ? withAudit(current.record, "revoked", why) : meta, "revoked", now);
    return { kind: "destroyed" };
  }

  async inspect(): Promise<StoredSession | undefined> {
    return this.#load();
  }

  async #writeSnapshot(t: Timers): Promise<void> {
    const before = this.#load();
    if (before?.status !== "active") return;
    const key = await snapshotKeyFor(this.env);
    if (!key) return;
    // A stale object (a newer epoch restored elsewhere) must not overwrite the newer epoch's snapshot.
    // Its own read, not the write path's cached one: a snapshot is written at most once a second.
    const fence = await readFence(this.env.SNAPSHOTS, before.sid).catch(() => undefined);
    if (fence && fence.ep > before.epoch) await this.fence(fence);
    const stored = this.#load();
    if (stored?.status !== "active") return;
    const now = Date.now();
    await putSnapshot(this.env.SNAPSHOTS, key, stored, now);
    t.lastSnapshotAt = now;
    t.snapshotWrites = (t.snapshotWrites ?? 0) + 1;
    t.snapshotted = true;
  }

  async #pushFences(t: Timers): Promise<void> {
    const push = t.fencePush;
    const stored = this.#load();
    if (!push || stored?.status !== "active") return;
    const to: Forward = { ep: stored.epoch, reg: stored.reg, ...(stored.jur ? { jur: stored.jur } : {}) };
    const left: Forward[] = [];
    for (const p of push.targets) {
      try {
        await sessionStub(this.env, stored.sid, p.ep, p.reg, p.jur).fence(to);
      } catch {
        left.push(p);
      }
    }
    if (left.length)
      t.fencePush = {
        targets: left,
        attempt: push.attempt + 1,
        at: Date.now() + Math.min(60_000, 1000 * 2 ** push.attempt),
      };
    else delete t.fencePush;
  }

  override async alarm(): Promise<void> {
    this.#alarmAt = null;
    const now = Date.now();
    const t = this.#timers();
    if (t.snapshotAt !== undefined && t.snapshotAt <= now) {
      delete t.snapshotAt;
      await this.#writeSnapshot(t).catch((e: unknown) => {
        // Owed again shortly; a failed snapshot widens the recovery point, it does not lose the session.
        t.snapshotAt = Date.now() + SNAPSHOT_INTERVAL_MS;
        log("warn", "snapshot_failed", { message: String(e) });
      });
    }
    if (t.fencePush && t.fencePush.at <= now) await this.#pushFences(t);
    const retry = t.migrationRetryAt !== undefined && t.migrationRetryAt <= now;
    if (retry) delete t.migrationRetryAt;
    if (this.#load()) this.#setTimers(t);

    const stored = this.#load();
    if (stored?.status === "active" && stored.migration && retry) await this.#handOver(stored);
    else if (stored && stored.status !== "active" && Date.now() >= stored.purgeAt) await this.#purge();
    else if (stored?.status === "active") {
      const expired = expiryReason(stored, Date.now());
      if (expired) await this.#end(stored, expired, Date.now());
    }
    if (this.#load()) await this.#reschedule();
  }
}
