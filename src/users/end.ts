import { EdgeError } from "../errors.ts";
import { reportCounts } from "../origins/client.ts";
import { ObjectUnavailable } from "../replication/failover.ts";
import { readFence } from "../replication/store.ts";
import { following, inspectAt, type ObjectCall, type SessionAt } from "../session/client.ts";
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
  try {
    // Inspect first: revoke() on an object that holds nothing leaves a tombstone, and the pool's live
    // counts must only drop for a session that was live.
    const { stored, at } = await inspectAt(start, call);
    if (stored?.status !== "active") return { status: "gone" };
    const { result } = await following(at, call, (s) => s.revoke(metaOf(stored, at), why));
    if (result.kind !== "destroyed") return { status: "gone" };
    await reportCounts(env, stored.pool, result.counts);
    return { status: "revoked" };
  } catch (e) {
    return unreachable(e);
  }
}

function unreachable(e: unknown): { status: "unreachable"; code: string; message: string } {
  if (e instanceof ObjectUnavailable || e instanceof EdgeError)
    return { status: "unreachable", code: e.code, message: e.message };
  return { status: "unreachable", code: "ERR_SESSION_OBJECT_FAILED", message: String(e) };
}

/**
 * Ends a session the index knows. Besides the epoch the index recorded, a
 * newer epoch named by the KV fence (a restore elsewhere while the recorded
 * one was unreachable) is ended too: a client holding the newer token must
 * not keep a session its operator revoked.
 */
export async function endEntry(env: Env, e: PrincipalEntry, why: string, call: ObjectCall): Promise<EndResult> {
  const at = entryAt(e);
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
  try {
    const { stored, at } = await inspectAt(entryAt(e), call);
    if (stored?.status !== "active") return { state: "gone" };
    return { state: "active", record: stored, at };
  } catch (err) {
    return { state: "unreachable", code: unreachable(err).code };
  }
}

function entryAt(e: PrincipalEntry): SessionAt {
  return {
    sid: e.sid,
    epoch: e.epoch,
    region: e.region,
    origin: e.origin,
    createdSec: Math.floor(e.createdAt / 1000),
    ...(e.jurisdiction ? { jurisdiction: e.jurisdiction } : {}),
  };
}
