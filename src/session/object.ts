import { DurableObject } from "cloudflare:workers";
import { log } from "../log.ts";
import type { PoolRpc } from "../origins/pool-object.ts";
import {
  applyChange,
  type EndReason,
  expiryReason,
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
} from "./record.ts";

const KEY = "session";

/**
 * One object per session (and epoch). Every method below runs to completion
 * without awaiting anything but this object's own storage, so the input gate
 * stays closed and concurrent calls are applied one after another: 25
 * concurrent patches give 25 versions, none lost.
 *
 * State is created lazily: reading a session that never stored anything
 * writes nothing, so a client that never gets data costs no storage.
 */
export class SessionObject extends DurableObject<Env> implements SessionRpc {
  #alarmAt: number | null | undefined;

  #load(): StoredSession | undefined {
    return this.ctx.storage.kv.get<StoredSession>(KEY);
  }

  async #schedule(at: number): Promise<void> {
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (this.#alarmAt === at) return;
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  async #save(record: SessionRecord): Promise<void> {
    this.ctx.storage.kv.put(KEY, record);
    await this.#schedule(nextDeadline(record));
  }

  async #end(stored: SessionRecord | SessionMeta, reason: EndReason, now: number): Promise<void> {
    if (reason === "idle" || reason === "absolute") {
      // Every token for it has expired by now (see idleDeadline): nothing needs to remain.
      await this.#purge();
    } else {
      const tombstone = tombstoneFor(stored, reason, now);
      this.ctx.storage.kv.put(KEY, tombstone);
      await this.#schedule(tombstone.purgeAt);
    }
    log("info", "session_ended", { sid: stored.sid, epoch: stored.epoch, reason });
    if ((reason === "idle" || reason === "absolute") && "pool" in stored) {
      // Timeouts happen here, not in a request: tell the pool so its live counts (and drains) stay true.
      const pools = this.env.POOLS;
      const pool = pools.get(pools.idFromName(stored.pool)) as unknown as PoolRpc;
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
    const expired = expiryReason(stored, now);
    if (expired) {
      await this.#end(stored, expired, now);
      return { kind: "ended", reason: expired };
    }
    return { kind: "active", record: stored };
  }

  async read(_meta: SessionMeta): Promise<ReadResult> {
    const now = Date.now();
    const current = await this.#current(now);
    if (current.kind === "active" && now - current.record.lastSeen >= touchInterval(current.record.idleMs)) {
      const record = { ...current.record, lastSeen: now };
      await this.#save(record);
      return { kind: "active", record };
    }
    return current;
  }

  async write(meta: SessionMeta, change: SessionChange): Promise<WriteResult> {
    const now = Date.now();
    const current = await this.#current(now);
    if (current.kind === "ended") return current;
    const record = current.kind === "active" ? current.record : newRecord(meta, now);
    if (change.logout) {
      await this.#end(record, "logout", now);
      return { kind: "destroyed" };
    }
    const applied = applyChange(record, change, meta.maxDataBytes, now);
    if (!applied.ok) return applied.result;
    if (change.login) {
      // Session id rotation: this id is finished; the Worker hands the state to a new one.
      await this.#end(applied.record, "rotated", now);
      return { kind: "rotated", record: applied.record };
    }
    await this.#save(applied.record);
    return current.kind === "fresh"
      ? { kind: "ok", record: applied.record, created: true }
      : { kind: "ok", record: applied.record };
  }

  /** Receives the state of a rotated session. Idempotent, so the Worker may retry it. */
  async adopt(meta: SessionMeta, from: SessionRecord): Promise<WriteResult> {
    const now = Date.now();
    const stored = this.#load();
    if (stored?.status === "active" && stored.version >= from.version) return { kind: "ok", record: stored };
    if (stored?.status === "destroyed") return { kind: "ended", reason: stored.reason };
    const record: SessionRecord = {
      ...from,
      sid: meta.sid,
      epoch: meta.epoch,
      oid: meta.oid,
      reg: meta.reg,
      createdAt: meta.createdAt,
      updatedAt: now,
      lastSeen: now,
      idleMs: meta.idleMs,
      absoluteMs: meta.absoluteMs,
      pool: meta.pool,
    };
    await this.#save(record);
    return { kind: "ok", record };
  }

  /** Server-side end of a session (operator revoke). */
  async revoke(meta: SessionMeta): Promise<WriteResult> {
    const now = Date.now();
    const current = await this.#current(now);
    if (current.kind === "ended") return current;
    await this.#end(current.kind === "active" ? current.record : meta, "revoked", now);
    return { kind: "destroyed" };
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    this.#alarmAt = null;
    const stored = this.#load();
    if (!stored) return;
    if (stored.status === "destroyed") {
      if (now >= stored.purgeAt) await this.#purge();
      else await this.#schedule(stored.purgeAt);
      return;
    }
    const expired = expiryReason(stored, now);
    if (expired) await this.#end(stored, expired, now);
    else await this.#schedule(nextDeadline(stored));
  }
}
