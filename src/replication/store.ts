import { DEVELOPMENT_SNAPSHOT_KEY } from "../config/index.ts";
import { log } from "../log.ts";
import type { Forward, SessionRecord } from "../session/record.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  fenceKey,
  importSnapshotKey,
  revokedKey,
  type SessionSnapshot,
  type SnapshotKey,
  type SnapshotMetadata,
  snapshotKey,
} from "./codec.ts";

export { SNAPSHOT_INTERVAL_MS } from "../session/machine.ts";

/** The imported key, once imported: a pending import is never shared between requests. */
let imported: { key: SnapshotKey | undefined } | undefined;

/**
 * The session object's own copy of SNAPSHOT_KEY (it shares the Worker's env).
 * Without one outside development, snapshots are off and that is logged: the
 * Worker itself refuses to serve in that case, so this is belt and braces.
 */
export async function snapshotKeyFor(env: Env): Promise<SnapshotKey | undefined> {
  if (imported) return imported.key;
  const key = await (async () => {
    const raw = (env as unknown as { SNAPSHOT_KEY?: string }).SNAPSHOT_KEY;
    if (raw) return importSnapshotKey(raw);
    if ((env as unknown as { ENVIRONMENT?: string }).ENVIRONMENT === "development")
      return importSnapshotKey(DEVELOPMENT_SNAPSHOT_KEY);
    log("error", "snapshots_disabled", {
      code: "ERR_CONFIG",
      message: "SNAPSHOT_KEY is not set: no snapshots are written",
    });
    return undefined;
  })().catch((e: unknown) => {
    log("error", "snapshots_disabled", { code: "ERR_CONFIG", message: `SNAPSHOT_KEY: ${String(e)}` });
    return undefined;
  });
  imported ??= { key };
  return imported.key;
}

export function toSnapshot(r: SessionRecord, now: number): SessionSnapshot {
  return {
    sid: r.sid,
    epoch: r.epoch,
    version: r.version,
    region: r.region,
    ...(r.jurisdiction ? { jurisdiction: r.jurisdiction } : {}),
    origin: r.origin,
    ...(r.home ? { home: r.home } : {}),
    data: r.data,
    auth: { ...(r.sub !== undefined ? { sub: r.sub } : {}), ...(r.claims ? { claims: r.claims } : {}) },
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    lastSeen: r.lastSeen,
    takenAt: now,
  };
}

/** Writes the latest snapshot; it expires with the session's absolute lifetime. */
export async function putSnapshot(kv: KVNamespace, key: SnapshotKey, r: SessionRecord, now: number): Promise<void> {
  const metadata: SnapshotMetadata = {
    oid: r.origin,
    reg: r.region,
    ep: r.epoch,
    ver: r.version,
    updatedAt: r.updatedAt,
    ...(r.jurisdiction ? { jur: r.jurisdiction } : {}),
  };
  // KV wants an absolute expiration at least 60 s ahead.
  const expiration = Math.max(Math.ceil((r.createdAt + r.absoluteMs) / 1000), Math.ceil(now / 1000) + 60);
  await kv.put(snapshotKey(r.sid), await encodeSnapshot(key, toSnapshot(r, now)), { expiration, metadata });
}

export async function readSnapshot(kv: KVNamespace, key: SnapshotKey, sid: string) {
  const { value, metadata } = await kv.getWithMetadata<SnapshotMetadata>(snapshotKey(sid), { type: "text" });
  if (value === null) return { found: false as const };
  return { found: true as const, metadata, decoded: await decodeSnapshot(key, sid, value) };
}

/** A restore's mark in KV: the epoch that took over, and the snapshot version it started from. */
export type Fence = Forward & { base?: number };

/** The newest epoch known to have taken over the session, as written by a restore. */
export async function readFence(kv: KVNamespace, sid: string): Promise<Fence | undefined> {
  const raw = await kv.get(fenceKey(sid));
  if (!raw) return undefined;
  try {
    const f = JSON.parse(raw) as Fence;
    return typeof f.epoch === "number" && typeof f.region === "string" ? f : undefined;
  } catch {
    return undefined;
  }
}

export async function writeFence(kv: KVNamespace, sid: string, to: Fence, expiresAt: number): Promise<void> {
  await kv.put(fenceKey(sid), JSON.stringify(to), {
    expiration: Math.max(Math.ceil(expiresAt / 1000), Math.ceil(Date.now() / 1000) + 60),
  });
}

/**
 * A revocation the session's object has not acknowledged yet (it was unreachable): a restore
 * reads it and refuses to bring the session back elsewhere. Kept until every session that could
 * carry this id has ended. `why`: who revoked it.
 */
export async function writeRevocation(kv: KVNamespace, sid: string, expiresAt: number, why = "revoked"): Promise<void> {
  await kv.put(revokedKey(sid), why, {
    expiration: Math.max(Math.ceil(expiresAt / 1000), Math.ceil(Date.now() / 1000) + 60),
  });
}

export async function isRevoked(kv: KVNamespace, sid: string): Promise<boolean> {
  return (await kv.get(revokedKey(sid))) !== null;
}
