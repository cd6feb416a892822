import { DurableObject } from "cloudflare:workers";
import { log } from "../log.ts";
import { writeMetric } from "../observe/metrics.ts";
import { poolStubNamed } from "../origins/client.ts";
import { putSnapshot, readFence, snapshotKeyFor } from "../replication/store.ts";
import { sessionStub } from "./client.ts";
import {
  type Book,
  type Effect,
  EMPTY_BOOK,
  type LogEntry,
  type MachineState,
  nextAlarm,
  type Replies,
  type Reply,
  type RestoreSource,
  type SessionEvent,
  snapshotOwed,
  step,
} from "./machine.ts";
import type {
  Forward,
  MigrateResult,
  ReadResult,
  SessionChange,
  SessionMeta,
  SessionRecord,
  SessionRpc,
  StoredSession,
  WriteResult,
} from "./record.ts";

const KEY = "session";
const BOOK = "book";
const LOG = "log:";
/** How long a "no newer epoch" answer from the KV fence is trusted before asking again. */
const FENCE_CHECK_MS = 2000;
/** Forward pointers a catch-up follows to reach the epoch that holds the session now. */
const CATCH_UP_HOPS = 4;

const logKey = (version: number) => `${LOG}${String(version).padStart(15, "0")}`;

/**
 * One object per session and epoch: the thin shell around the state machine in
 * machine.ts. Every RPC is one event: load the state, step, persist what
 * changed, run the effects. Effects that await I/O (KV, another object) open the
 * input gate; their outcome comes back as a new event, stepped against the state
 * as it is then, never against a copy read before the await.
 */
export class SessionObject extends DurableObject<Env> implements SessionRpc {
  #alarmAt: number | null | undefined;
  #fenceCheckedAt = 0;
  #readFenceChecked = false;
  /**
   * The state as last read or written. This object is its only writer, so the
   * copy in memory is never behind storage; a read then costs no storage read and
   * no decoding. The machine never changes a state in place (it returns new
   * objects), so handing out this copy is safe.
   */
  #held: MachineState | undefined;

  #state(): MachineState {
    if (this.#held) return this.#held;
    const kv = this.ctx.storage.kv;
    this.#held = { stored: kv.get<StoredSession>(KEY), book: kv.get<Book>(BOOK) ?? EMPTY_BOOK };
    return this.#held;
  }

  /** Writes only what the step changed (it returns the same objects when nothing did): reads stay write-free. */
  #persist(before: MachineState, after: MachineState): void {
    const kv = this.ctx.storage.kv;
    // Until the writes below are done, storage is the truth: a write that throws leaves no copy to trust.
    this.#held = undefined;
    if (after.stored !== before.stored) {
      if (after.stored) kv.put(KEY, after.stored);
      else kv.delete(KEY);
    }
    if (after.book !== before.book) kv.put(BOOK, after.book);
    this.#held = after;
  }

  /** Steps one event, persists it, runs its effects; returns the reply (a follow-up may refine it). */
  async #run(e: SessionEvent): Promise<Reply> {
    const before = this.#state();
    const out = step(before, e, Date.now());
    this.#persist(before, out.state);
    const followUp = await this.#effects(out.effects);
    await this.#arm();
    return followUp ?? out.reply;
  }

  /** One alarm serves every deadline the state holds (machine.ts nextAlarm). */
  async #arm(): Promise<void> {
    const at = nextAlarm(this.#state());
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (this.#alarmAt === at) return;
    // An alarm already set earlier is left alone: when it fires it re-checks and re-arms. Most writes
    // only push the idle deadline later, so they do not rewrite the alarm every time.
    if (at !== null && this.#alarmAt !== null && this.#alarmAt <= at && this.#alarmAt > Date.now()) return;
    this.#alarmAt = at;
    if (at === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(at);
  }

  async #effects(effects: Effect[]): Promise<Reply | undefined> {
    let followUp: Reply | undefined;
    for (const fx of effects) {
      const reply = await this.#effect(fx);
      if (reply && reply.to !== "none") followUp = reply;
    }
    return followUp;
  }

  async #effect(fx: Effect): Promise<Reply | undefined> {
    const kv = this.ctx.storage.kv;
    switch (fx.type) {
      case "log":
        log(fx.level, fx.event, fx.fields);
        return;
      case "appendLog":
        kv.put(logKey(fx.entry.version), fx.entry);
        return;
      case "trimLog":
        for (const [k, v] of kv.list<LogEntry>({ prefix: LOG })) if (v.version <= fx.through) kv.delete(k);
        return;
      case "purge":
        await this.ctx.storage.deleteAlarm();
        await this.ctx.storage.deleteAll();
        this.#held = undefined;
        this.#alarmAt = null;
        return;
      case "deleteSnapshot":
        // The snapshot goes with the session: a logged-out or timed-out session must not be restorable.
        this.ctx.waitUntil(this.env.SNAPSHOTS.delete(`snap:${fx.sid}`).catch(() => {}));
        return;
      case "report":
        this.#report(fx);
        return;
      case "metric":
        writeMetric(this.env, fx.point);
        return;
      case "migrateSoon":
        this.ctx.waitUntil(this.migrate(fx.target, "auto").catch(() => {}));
        return;
      case "putSnapshot":
        return this.#snapshot();
      case "handOver":
        return this.#handOver(fx);
      case "pushFence":
        return this.#pushFence(fx);
      case "pushCatchUp":
        return this.#pushCatchUp(fx);
    }
  }

  #report(fx: Extract<Effect, { type: "report" }>): void {
    const pool = poolStubNamed(this.env, fx.pool);
    const calls: Promise<unknown>[] = [];
    if (fx.counts) calls.push(pool.adjustSessions(fx.counts.sessions, fx.counts.regions));
    if (fx.event) calls.push(pool.recordEvent(fx.event.name, fx.event.oid, fx.event.detail));
    this.ctx.waitUntil(Promise.all(calls).catch(() => {}));
  }

  /** Writes the record as it is now. A stale object (a newer epoch restored elsewhere) fences itself instead. */
  async #snapshot(): Promise<Reply | undefined> {
    const before = this.#state();
    if (!snapshotOwed(before) || before.stored?.status !== "active") return;
    try {
      const key = await snapshotKeyFor(this.env);
      if (!key) return;
      if (await this.#fencedByKv(before.stored.sid, before.stored.epoch)) return;
      // Re-read: the fence check awaited KV, and writes may have landed meanwhile; they go in this snapshot.
      const stored = this.#state().stored;
      if (stored?.status !== "active") return;
      await putSnapshot(this.env.SNAPSHOTS, key, stored, Date.now());
      return this.#run({ type: "snapshotWritten", version: stored.version });
    } catch (e) {
      // Owed still; a failed snapshot widens the recovery point for a moment, it does not lose the session.
      return this.#run({ type: "snapshotFailed", error: String(e) });
    }
  }

  async #handOver(fx: Extract<Effect, { type: "handOver" }>): Promise<Reply | undefined> {
    const { record, to } = fx;
    const meta: SessionMeta = {
      sid: record.sid,
      epoch: to.epoch,
      origin: record.origin,
      region: to.region,
      createdAt: record.createdAt,
      idleMs: record.idleMs,
      absoluteMs: record.absoluteMs,
      maxDataBytes: Number.MAX_SAFE_INTEGER,
      pool: record.pool,
      ...(to.jurisdiction ? { jurisdiction: to.jurisdiction } : {}),
    };
    const next = sessionStub(this.env, record.sid, to.epoch, to.region, to.jurisdiction);
    let error: string;
    try {
      const adopted = await next.adopt(meta, record, "migration");
      if (adopted.kind === "ok") return this.#run({ type: "handOverDone", to });
      // The target will never take it (an abandoned epoch, or one already ended): abort, try a later epoch next time.
      return this.#run({ type: "handOverFailed", to, abandoned: true, error: `target answered ${adopted.kind}` });
    } catch (e) {
      error = String(e);
    }
    if (fx.abandonOnFailure) {
      try {
        const answer = await next.abandon(record.sid, to.epoch, record.epoch);
        if (answer === "adopted") return this.#run({ type: "handOverDone", to });
        return this.#run({ type: "handOverFailed", to, abandoned: true, error });
      } catch {
        // Unreachable: it may yet hold the state, so the session stays frozen and the hand-over is retried.
      }
    }
    return this.#run({ type: "handOverFailed", to, abandoned: false, error });
  }

  async #pushFence(fx: Extract<Effect, { type: "pushFence" }>): Promise<Reply | undefined> {
    const answered: Forward[] = [];
    for (const p of fx.targets) {
      try {
        await sessionStub(this.env, fx.sid, p.epoch, p.region, p.jurisdiction).fence(fx.to, fx.base);
        answered.push(p);
      } catch {
        // Retried by the alarm with backoff until it answers.
      }
    }
    return this.#run({ type: "fencePushed", answered });
  }

  /** Sends the writes committed here past `base` to the epoch that took over (following it if it moved on). */
  async #pushCatchUp(fx: Extract<Effect, { type: "pushCatchUp" }>): Promise<Reply | undefined> {
    const { stored, book } = this.#state();
    const pending = book.catchUp;
    if (!pending) return;
    const entries = Array.from(this.ctx.storage.kv.list<LogEntry>({ prefix: LOG }), ([, v]) => v).filter(
      (x) => x.version > fx.base,
    );
    const until = stored?.status === "moved" ? (stored.version ?? 0) : 0;
    const complete = entries.length >= until - fx.base && entries.every((x, i) => x.version === fx.base + i + 1);
    let to = fx.to;
    try {
      for (let hop = 0; hop < CATCH_UP_HOPS; hop++) {
        const result = await sessionStub(this.env, fx.sid, to.epoch, to.region, to.jurisdiction).catchUp(
          fx.from,
          entries,
          complete ? undefined : pending.state,
        );
        if (result.kind !== "moved") {
          log("info", "session_caught_up", {
            sid: fx.sid,
            from_epoch: fx.from.epoch,
            to_epoch: to.epoch,
            writes: entries.length,
            complete,
            result: result.kind,
          });
          return this.#run({ type: "catchUpDelivered", ok: true });
        }
        to = result.to;
      }
    } catch (e) {
      log("warn", "catch_up_failed", { sid: fx.sid, to_epoch: to.epoch, message: String(e) });
    }
    return this.#run({ type: "catchUpDelivered", ok: false });
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
    await this.#fencedByKv(sid, epoch).catch(() => false);
    this.#fenceCheckedAt = Date.now();
  }

  /** Reads the KV fence a restore leaves; when it names a newer epoch, this object is fenced (true). */
  async #fencedByKv(sid: string, epoch: number): Promise<boolean> {
    const fence = await readFence(this.env.SNAPSHOTS, sid);
    if (!fence || fence.epoch <= epoch) return false;
    await this.#run({ type: "fence", to: fence, base: fence.base ?? 0 });
    return true;
  }

  /** Runs an RPC's event and returns its reply, which must be of the kind the RPC promises. */
  async #ask<K extends keyof Replies>(to: K, e: SessionEvent): Promise<Replies[K]> {
    const reply = await this.#run(e);
    if (reply.to !== to || !("result" in reply)) throw new Error(`session object: ${e.type} answered ${reply.to}`);
    return reply.result as Replies[K];
  }

  async read(meta: SessionMeta, seenFrom?: string): Promise<ReadResult> {
    // Once per instance (a copy coming back after an outage starts a new one): has a restore taken over?
    if (!this.#readFenceChecked && this.#state().stored?.status === "active") {
      this.#readFenceChecked = true;
      await this.#fencedByKv(meta.sid, meta.epoch).catch(() => false);
    }
    return this.#ask("read", { type: "read", meta, ...(seenFrom ? { seenFrom } : {}) });
  }

  async write(meta: SessionMeta, change: SessionChange): Promise<WriteResult> {
    await this.#checkFence(meta.sid, meta.epoch);
    return this.#ask("write", { type: "write", meta, change });
  }

  /** Receives a session's state: from a rotated id (new session) or from the previous epoch (migration). Idempotent. */
  async adopt(meta: SessionMeta, from: SessionRecord, via: "rotation" | "migration"): Promise<WriteResult> {
    return this.#ask("write", { type: "adopt", meta, from, via });
  }

  /** Rebuilds the session after its object was lost; the alarm then fences the epochs it replaces. */
  async restore(meta: SessionMeta, from: RestoreSource, predecessors: Forward[]): Promise<WriteResult> {
    return this.#ask("write", { type: "restore", meta, from, predecessors });
  }

  async fence(to: Forward, base: number): Promise<void> {
    await this.#run({ type: "fence", to, base });
  }

  async catchUp(from: Forward, entries: LogEntry[], state?: LogEntry["state"]): Promise<WriteResult> {
    return this.#ask("write", { type: "catchUp", from, entries, ...(state ? { state } : {}) });
  }

  async abandon(sid: string, epoch: number, fromEpoch: number): Promise<"abandoned" | "adopted"> {
    return this.#ask("abandon", { type: "abandon", sid, epoch, fromEpoch });
  }

  /** Migration: freeze, hand over to the next epoch in the target region, then forward (machine.ts). */
  async migrate(target: Omit<Forward, "epoch">, trigger: string): Promise<MigrateResult> {
    return this.#ask("migrate", { type: "migrate", target, trigger });
  }

  /** Server-side end of a session (operator revoke). */
  async revoke(meta: SessionMeta, why?: string): Promise<WriteResult> {
    return this.#ask("write", { type: "revoke", meta, ...(why ? { why } : {}) });
  }

  /**
   * Forgets the state held in memory; the next event reads storage. For
   * storage changed outside the machine: tests that move a session's clock
   * back or stage a stalled hand-over. No Worker path calls it.
   */
  dropHeldState(): void {
    this.#held = undefined;
  }

  async inspect(): Promise<StoredSession | undefined> {
    return this.#state().stored;
  }

  override async alarm(): Promise<void> {
    this.#alarmAt = null;
    await this.#run({ type: "alarm" });
  }
}
