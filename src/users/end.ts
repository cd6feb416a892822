import { poolStubNamed } from "../origins/client.ts";
import { ObjectUnavailable } from "../replication/failover.ts";
import { readFence } from "../replication/store.ts";
import type { ObjectCall, SessionAt } from "../session/client.ts";
import type { Forward, SessionMeta, SessionRecord } from "../session/record.ts";
import type { PrincipalEntry } from "./policy.ts";

/** What ending one session came to. */
export type EndResult =
  /** Its object ended it now (its audit trail says why). */
  | { status: "revoked" }
  /** It had already ended: logout, timeout, login rotation or an earlier revoke. */
  | { status: "gone" }
  /** Its object (or one of its epochs) could not be reached: the revocation is pending. */
  | { status: "unreachable"; code: string; message: string };

const MAX_HOPS = 6;

function follow(at: SessionAt, to: Forward): SessionAt {
  const next: SessionAt = { ...at, epoch: to.epoch, region: to.region };
  if (to.jurisdiction) next.jurisdiction = to.jurisdiction;
  else delete next.jurisdiction;
  return next;
}

function metaOf(r: SessionRecord, at: SessionAt): SessionMeta {
  return {
    sid: r.sid,
    epoch: at.epoch,
    origin: r.origin,
    region: r.region,
    createdAt: r.createdAt,
    idleMs: r.idleMs,
    absoluteMs: r.absoluteMs,
    maxDataBytes: Number.MAX_SAFE_INTEGER,
    pool: r.pool,
    ...(r.jurisdiction ? { jurisdiction: r.jurisdiction } : {}),
  };
}

/** Ends the session held at `start`, following forward pointers (migrations, fences). */
async function endAt(env: Env, start: SessionAt, why: string, call: ObjectCall): Promise<EndResult> {
  let at = start;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const here = at;
    try {
      // Inspect first: revoke() on an object that holds nothing leaves a tombstone, and the pool's live
      // counts must only drop for a session that was live.
      const stored = await call(here, (s) => s.inspect());
      if (!stored || stored.status === "destroyed") return { status: "gone" };
      if (stored.status === "moved") {
        at = follow(here, stored.to);
        continue;
      }
      const result = await call(here, (s) => s.revoke(metaOf(stored, here), why));
      if (result.kind === "moved") {
        at = follow(here, result.to);
        continue;
      }
      if (result.kind !== "destroyed") return { status: "gone" };
      await poolStubNamed(env, stored.pool)
        .adjustSessions({ [stored.origin]: -1 }, { [stored.region]: -1 })
        .catch(() => {});
      return { status: "revoked" };
    } catch (e) {
      if (e instanceof ObjectUnavailable) return { status: "unreachable", code: e.code, message: e.message };
      return { status: "unreachable", code: "ERR_SESSION_OBJECT_FAILED", message: String(e) };
    }
  }
  return { status: "unreachable", code: "ERR_SESSION_MOVED", message: `more than ${MAX_HOPS} forward pointers` };
}

/**
 * Ends a session the index knows. Besides the epoch the index recorded, a
 * newer epoch named by the KV fence (a restore elsewhere while the recorded
 * one was unreachable) is ended too: a client holding the newer token must
 * not keep a session its operator revoked.
 */
export async function endEntry(env: Env, e: PrincipalEntry, why: string, call: ObjectCall): Promise<EndResult> {
  const at: SessionAt = {
    sid: e.sid,
    epoch: e.epoch,
    region: e.region,
    origin: e.origin,
    createdSec: Math.floor(e.createdAt / 1000),
    ...(e.jurisdiction ? { jurisdiction: e.jurisdiction } : {}),
  };
  const results = [await endAt(env, at, why, call)];
  const fence = await readFence(env.SNAPSHOTS, e.sid).catch(() => undefined);
  if (fence && fence.epoch > e.epoch) results.push(await endAt(env, follow(at, fence), why, call));
  const unreachable = results.find((r) => r.status === "unreachable");
  if (unreachable) return unreachable;
  return results.find((r) => r.status === "revoked") ?? { status: "gone" };
}

/** Whether the session is alive, gone, or unknown (unreachable), with where it lives now. */
export type Liveness =
  | { state: "active"; record: SessionRecord; at: SessionAt }
  | { state: "gone" }
  | { state: "unreachable"; code: string };

export async function livenessOf(e: PrincipalEntry, call: ObjectCall): Promise<Liveness> {
  let at: SessionAt = {
    sid: e.sid,
    epoch: e.epoch,
    region: e.region,
    origin: e.origin,
    createdSec: Math.floor(e.createdAt / 1000),
    ...(e.jurisdiction ? { jurisdiction: e.jurisdiction } : {}),
  };
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const here = at;
    try {
      const stored = await call(here, (s) => s.inspect());
      if (!stored || stored.status === "destroyed") return { state: "gone" };
      if (stored.status === "moved") {
        at = follow(here, stored.to);
        continue;
      }
      return { state: "active", record: stored, at: here };
    } catch (err) {
      return { state: "unreachable", code: err instanceof ObjectUnavailable ? err.code : "ERR_SESSION_OBJECT_FAILED" };
    }
  }
  return { state: "unreachable", code: "ERR_SESSION_MOVED" };
}
