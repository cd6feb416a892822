import { DurableObject } from "cloudflare:workers";
import { log } from "../log.ts";
import { poolStubNamed } from "../origins/client.ts";
import type { Fault } from "../origins/types.ts";
import { faultFor, ObjectUnavailable } from "../replication/failover.ts";
import { type ObjectCall, sessionStub } from "../session/client.ts";
import { SKEW_MS } from "../session/record.ts";
import { endEntry } from "./end.ts";
import { nextAttempt, type PrincipalEntry, revocationMoot, unexpired } from "./policy.ts";

const PREFIX = "e:";
/** Whether the Worker that recorded a revocation honours injected faults (development and tests). */
const FAULTS = "faultInjection";
const SEQ = "seq";

/** The principal object's RPC surface, as the Worker calls it. */
export interface PrincipalRpc {
  register(entry: PrincipalEntry, replaces?: string): Promise<PrincipalEntry[]>;
  unregister(sids: string[]): Promise<void>;
  entries(): Promise<PrincipalEntry[]>;
  markRevoking(sids: string[], why: string, faultInjection: boolean): Promise<void>;
}

/**
 * One object per principal (the `sub` an origin logged in): the index of that
 * user's sessions, so an operator or an origin can find and end them all. It
 * holds no session state, only where each session lives. Logins register,
 * logouts and revocations unregister; sessions that time out are found gone
 * (and dropped) when the index is next read. Revocations an unreachable
 * session object could not acknowledge are retried by the alarm until it does.
 */
export class PrincipalObject extends DurableObject<Env> implements PrincipalRpc {
  #all(): PrincipalEntry[] {
    return [...this.ctx.storage.kv.list<PrincipalEntry>({ prefix: PREFIX })].map(([, e]) => e);
  }

  /** Drops entries past their session's absolute end; returns the rest. */
  #pruned(now = Date.now()): PrincipalEntry[] {
    const all = this.#all();
    const kept = unexpired(all, now);
    if (kept.length !== all.length) {
      const keep = new Set(kept.map((e) => e.sid));
      for (const e of all) if (!keep.has(e.sid)) this.ctx.storage.kv.delete(PREFIX + e.sid);
    }
    return kept;
  }

  async register(entry: PrincipalEntry, replaces?: string): Promise<PrincipalEntry[]> {
    if (replaces) this.ctx.storage.kv.delete(PREFIX + replaces);
    const seq = (this.ctx.storage.kv.get<number>(SEQ) ?? 0) + 1;
    this.ctx.storage.kv.put(SEQ, seq);
    this.ctx.storage.kv.put(PREFIX + entry.sid, { ...entry, seq });
    return this.#pruned();
  }

  async unregister(sids: string[]): Promise<void> {
    for (const sid of sids) this.ctx.storage.kv.delete(PREFIX + sid);
  }

  async entries(): Promise<PrincipalEntry[]> {
    return this.#pruned();
  }

  async markRevoking(sids: string[], why: string, faultInjection: boolean): Promise<void> {
    const now = Date.now();
    for (const sid of sids) {
      const e = this.ctx.storage.kv.get<PrincipalEntry>(PREFIX + sid);
      if (!e) continue;
      const attempts = e.revoking?.attempts ?? 0;
      this.ctx.storage.kv.put(PREFIX + sid, {
        ...e,
        revoking: { since: e.revoking?.since ?? now, why, attempts, next: nextAttempt(attempts, now) },
      });
    }
    this.ctx.storage.kv.put(FAULTS, faultInjection);
    await this.#schedule();
  }

  async #schedule(): Promise<void> {
    const due = this.#all()
      .map((e) => e.revoking?.next)
      .filter((t): t is number => t !== undefined);
    if (due.length) await this.ctx.storage.setAlarm(Math.min(...due));
    else await this.ctx.storage.deleteAlarm();
  }

  /** Session objects as the Worker would reach them, injected faults included (development and tests). */
  async #caller(pools: Set<string>): Promise<ObjectCall> {
    let faults: Fault[] = [];
    if (this.ctx.storage.kv.get<boolean>(FAULTS))
      for (const pool of pools) faults = faults.concat(await poolStubNamed(this.env, pool).faults());
    return async (at, fn) => {
      const fault = faultFor(faults, at);
      if (fault?.mode === "down")
        throw new ObjectUnavailable(at, "ERR_FAULT_INJECTED", `injected fault: ${fault.target} is down`);
      return fn(sessionStub(this.env, at.sid, at.epoch, at.region, at.jurisdiction));
    };
  }

  override async alarm(): Promise<void> {
    // Every pending revocation is retried when the alarm runs (set for the earliest): early is harmless.
    const due = this.#pruned().filter((e) => e.revoking);
    if (due.length) {
      const call = await this.#caller(new Set(due.map((e) => e.pool)));
      for (const e of due) {
        const revoking = e.revoking;
        if (!revoking) continue;
        if (revocationMoot(e, Date.now(), SKEW_MS)) {
          this.ctx.storage.kv.delete(PREFIX + e.sid);
          log("warn", "principal_revocation_moot", { sid: e.sid, attempts: revoking.attempts, since: revoking.since });
          continue;
        }
        const result = await endEntry(this.env, e, revoking.why, call);
        // Re-read: the calls above opened the input gate, and the Worker may have changed the entry meanwhile.
        const latest = this.ctx.storage.kv.get<PrincipalEntry>(PREFIX + e.sid);
        if (!latest?.revoking) continue;
        if (result.status !== "unreachable") {
          this.ctx.storage.kv.delete(PREFIX + e.sid);
          log("info", "principal_revocation_done", { sid: e.sid, attempts: revoking.attempts + 1 });
          continue;
        }
        const attempts = latest.revoking.attempts + 1;
        this.ctx.storage.kv.put(PREFIX + e.sid, {
          ...latest,
          revoking: { ...latest.revoking, attempts, next: nextAttempt(attempts, Date.now()) },
        });
        log("warn", "principal_revocation_pending", { sid: e.sid, attempts, code: result.code });
      }
    }
    await this.#schedule();
  }
}
