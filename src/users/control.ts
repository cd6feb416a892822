import { readCacheFor } from "../cache/index.ts";
import type { EdgeConfig } from "../config/index.ts";
import { log } from "../log.ts";
import { poolStubNamed, reportEnded } from "../origins/client.ts";
import { writeRevocation } from "../replication/store.ts";
import type { CommitOutcome, LiveSession, ObjectCall } from "../session/client.ts";
import { SKEW_MS } from "../session/record.ts";
import { type EndResult, endEntry, type Liveness, livenessOf } from "./end.ts";
import { byAge, overCap, type PrincipalEntry } from "./policy.ts";
import type { PrincipalRpc } from "./principal-object.ts";

/** What the Worker needs to reach principals and sessions during one request. */
export interface UsersScope {
  env: Env;
  cfg: EdgeConfig;
  call: ObjectCall;
  waitUntil: (p: Promise<unknown>) => void;
}

export function principalStub(env: Env, sub: string): PrincipalRpc {
  const ns = env.PRINCIPALS;
  return ns.get(ns.idFromName(sub)) as unknown as PrincipalRpc;
}

function entryFor(cfg: EdgeConfig, s: LiveSession): PrincipalEntry {
  return {
    sid: s.sid,
    epoch: s.epoch,
    region: s.region,
    ...(s.jurisdiction ? { jurisdiction: s.jurisdiction } : {}),
    origin: s.origin,
    // The login is happening now: milliseconds, where the token's `ct` has seconds.
    createdAt: Math.max(Date.now(), s.createdSec * 1000),
    expiresAt: (s.createdSec + cfg.absoluteTimeout) * 1000 + SKEW_MS,
    idleMs: cfg.idleTimeout * 1000,
    absoluteMs: cfg.absoluteTimeout * 1000,
    pool: cfg.pool.name,
  };
}

/** One line of a revocation report. */
export interface Revoked {
  sid: string;
  region: string;
  epoch: number;
  origin: string;
  /** pending: the object could not be reached; the revocation is recorded and retried until it answers. */
  result: "revoked" | "already_ended" | "pending";
}

/** At most this many session objects are called at once for one principal. */
const FAN_OUT = 16;

async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += FAN_OUT) out.push(...(await Promise.all(items.slice(i, i + FAN_OUT).map(fn))));
  return out;
}

/**
 * Ends the given sessions of `sub`. Each one ends in its own object (its audit
 * trail records `why`); one that cannot be reached is not skipped: a
 * revocation is recorded in KV (a restore honours it) and in the principal
 * (whose alarm retries until the object answers). Throws only when that record
 * itself cannot be written, so callers can answer 503.
 */
export async function endSessions(
  x: UsersScope,
  sub: string,
  victims: readonly PrincipalEntry[],
  why: string,
  event: string,
): Promise<Revoked[]> {
  const principal = principalStub(x.env, sub);
  const results = await inBatches(victims, async (e) => ({ e, r: await endEntry(x.env, e, why, x.call) }));
  const pending = results.filter(({ r }) => r.status === "unreachable");
  for (const { e } of pending) await writeRevocation(x.env.SNAPSHOTS, e.sid, e.expiresAt, why);
  if (pending.length)
    await principal.markRevoking(
      pending.map(({ e }) => e.sid),
      why,
      x.cfg.faultInjection,
    );
  const done = results.filter(({ r }) => r.status !== "unreachable").map(({ e }) => e.sid);
  if (done.length) await principal.unregister(done);
  // Ended (or about to be): this isolate stops answering them from memory now, every other one
  // through the pool view (within POOL_CACHE_SECONDS).
  const ended = victims.map((e) => e.sid);
  const cache = readCacheFor(x.cfg);
  for (const sid of ended) cache.evict(sid);
  x.waitUntil(reportEnded(x.env, x.cfg, ended));
  const pool = poolStubNamed(x.env, x.cfg.pool.name);
  for (const { e, r } of results) {
    if (r.status === "gone") continue;
    log(r.status === "revoked" ? "info" : "warn", event, { sub, sid: e.sid, why, result: r.status });
    const detail = `${e.sid} of ${sub}: ${why}${r.status === "unreachable" ? " (pending: object unreachable)" : ""}`;
    x.waitUntil(pool.recordEvent(event, e.origin, detail).catch(() => {}));
  }
  return results.map(({ e, r }) => ({
    sid: e.sid,
    region: e.region,
    epoch: e.epoch,
    origin: e.origin,
    result: resultOf(r),
  }));
}

function resultOf(r: EndResult): Revoked["result"] {
  return r.status === "revoked" ? "revoked" : r.status === "gone" ? "already_ended" : "pending";
}

/** Every session of `sub`, ended (operator revoke, or an origin's `Logout: all`). */
export async function endAllSessions(x: UsersScope, sub: string, why: string): Promise<Revoked[]> {
  const entries = await principalStub(x.env, sub).entries();
  return endSessions(x, sub, byAge(entries), why, "user_sessions_revoked");
}

/** A session the index knows, with what its object says now. */
export interface Listed {
  entry: PrincipalEntry;
  live: Liveness;
}

/** A user's sessions as they are now: timed-out ones are found gone and dropped from the index. */
export async function liveSessions(x: UsersScope, sub: string): Promise<Listed[]> {
  const principal = principalStub(x.env, sub);
  const entries = byAge(await principal.entries());
  const checked = await inBatches(entries, async (entry) => ({ entry, live: await livenessOf(entry, x.call) }));
  // A pending revocation stays listed (as revoking) until the principal's retry has reached every epoch.
  const dropped = (c: Listed) => c.live.state === "gone" && !c.entry.revoking;
  const gone = checked.filter(dropped).map((c) => c.entry.sid);
  if (gone.length) await principal.unregister(gone);
  return checked.filter((c) => !dropped(c));
}

/**
 * The hook after an origin's directives were applied (src/proxy/steps.ts): a
 * login registers the new session id with its principal (and ends the oldest
 * sessions past MAX_SESSIONS_PER_USER), a logout unregisters it, and
 * `X-Edge-Session-Logout: all` ends every session of the user. Failures are
 * logged, never thrown: the origin has answered, and its response is served.
 */
export async function afterCommit(
  x: UsersScope,
  before: LiveSession,
  outcome: CommitOutcome,
  logoutAll: boolean,
): Promise<void> {
  try {
    if (outcome.kind === "logged-out") {
      if (before.sub === undefined) return;
      const forget = principalStub(x.env, before.sub).unregister([before.sid]);
      // A plain logout need not wait: an entry left behind is found gone when the index is next read.
      if (!logoutAll) return x.waitUntil(forget.catch(() => {}));
      await forget;
      await endAllSessions(x, before.sub, "logout of all sessions by the origin");
      return;
    }
    if (outcome.kind !== "rotated" || outcome.session.sub === undefined) return;
    const s = outcome.session;
    const sub = s.sub as string;
    const sameUser = before.sub === sub;
    if (before.sub !== undefined && !sameUser) await principalStub(x.env, before.sub).unregister([before.sid]);
    const entries = await principalStub(x.env, sub).register(entryFor(x.cfg, s), sameUser ? before.sid : undefined);
    await enforceCap(x, sub, s.sid, entries);
  } catch (e) {
    log("error", "principal_update_failed", { sid: before.sid, message: String(e) });
  }
}

/** Past the cap by count, the others' liveness decides: timed-out sessions do not count, and are dropped. */
async function enforceCap(x: UsersScope, sub: string, keep: string, entries: PrincipalEntry[]): Promise<void> {
  const cap = x.cfg.users.maxSessions;
  if (cap <= 0 || entries.filter((e) => !e.revoking).length <= cap) return;
  const others = entries.filter((e) => e.sid !== keep && !e.revoking);
  const checked = await inBatches(others, async (e) => ({ e, live: await livenessOf(e, x.call) }));
  const gone = checked.filter((c) => c.live.state === "gone").map((c) => c.e.sid);
  if (gone.length) await principalStub(x.env, sub).unregister(gone);
  const live = [
    ...checked.filter((c) => c.live.state !== "gone").map((c) => c.e),
    ...entries.filter((e) => e.sid === keep),
  ];
  const victims = overCap(live, cap, keep);
  if (victims.length) await endSessions(x, sub, victims, `over MAX_SESSIONS_PER_USER (${cap})`, "user_session_evicted");
}
