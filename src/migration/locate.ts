import type { EdgeConfig } from "../config/index.ts";
import { sessionUnavailable } from "../errors.ts";
import type { SnapshotMetadata } from "../replication/codec.ts";
import { snapshotKey } from "../replication/codec.ts";
import type { ObjectCall, SessionAt } from "../session/client.ts";
import type { StoredSession } from "../session/record.ts";

export interface Located {
  at: SessionAt;
  stored: StoredSession;
}

const MAX_HOPS = 6;

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
          ep: metadata.ep,
          reg: metadata.reg,
          oid: metadata.oid,
          ct: 0,
          ...(metadata.jur ? { jur: metadata.jur } : {}),
        },
      ]
    : [
        { sid, ep: 1, reg: cfg.defaultRegion, oid: "", ct: 0 },
        ...(cfg.jurisdictions === "eu" ? [{ sid, ep: 1, reg: "weur", oid: "", ct: 0, jur: "eu" }] : []),
      ];
  for (const start of starts) {
    let at = start;
    for (let hop = 0; ; hop++) {
      // The session exists (a pointer leads on), so running out of hops is "try again", not "no such session".
      if (hop === MAX_HOPS) throw sessionUnavailable(`session ${sid}: more than ${MAX_HOPS} forward pointers`);
      const here = at;
      const stored = await call(here, (stub) => stub.inspect());
      if (!stored) break;
      if (stored.status !== "moved") return { at: here, stored };
      at = { ...at, ep: stored.to.ep, reg: stored.to.reg };
      if (stored.to.jur) at.jur = stored.to.jur;
      else delete at.jur;
    }
  }
  return undefined;
}
