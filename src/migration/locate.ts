import type { EdgeConfig } from "../config/index.ts";
import type { SnapshotMetadata } from "../replication/codec.ts";
import { snapshotKey } from "../replication/codec.ts";
import { inspectAt, type ObjectCall, type SessionAt } from "../session/client.ts";
import type { StoredSession } from "../session/record.ts";

export interface Located {
  at: SessionAt;
  stored: StoredSession;
}

/**
 * Finds the object that holds a session now, for operator calls that know only
 * the sid. The latest snapshot's KV metadata names its epoch, region and
 * jurisdiction without decrypting anything; without one (not yet snapshotted),
 * the first epoch is tried in both namespaces. Forward pointers are followed.
 */
export async function locateSession(
  env: Env,
  cfg: EdgeConfig,
  sid: string,
  call: ObjectCall,
): Promise<Located | undefined> {
  const { metadata } = await env.SNAPSHOTS.getWithMetadata<SnapshotMetadata>(snapshotKey(sid));
  const starts: SessionAt[] = metadata
    ? [
        {
          sid,
          epoch: metadata.ep,
          region: metadata.reg,
          origin: metadata.oid,
          createdSec: 0,
          ...(metadata.jur ? { jurisdiction: metadata.jur } : {}),
        },
      ]
    : [
        { sid, epoch: 1, region: cfg.defaultRegion, origin: "", createdSec: 0 },
        ...(cfg.jurisdictions === "eu"
          ? [{ sid, epoch: 1, region: "weur", origin: "", createdSec: 0, jurisdiction: "eu" }]
          : []),
      ];
  for (const start of starts) {
    const { stored, at } = await inspectAt(start, call);
    if (stored) return { at, stored };
  }
  return undefined;
}
