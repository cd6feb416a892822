import type { EdgeConfig } from "../config/index.ts";
import type { SnapshotMetadata } from "../replication/codec.ts";
import type { ObjectCall, SessionAt } from "../session/client.ts";
import { evacuationTarget } from "./targets.ts";

export interface EvacuationLine {
  sid: string;
  status: "migrated" | "skipped" | "failed";
  to?: string;
  ms?: number;
  reason?: string;
}

const CONCURRENCY = 4;

/**
 * Migrates every session homed in `region`. Sessions are found by listing the
 * KV snapshots and reading their metadata (region, epoch, jurisdiction), so the
 * list covers sessions with stored state, as of KV's eventual consistency (up
 * to ~60 s) and the snapshot coalescing (1 s). Yields one line per session.
 */
export async function* evacuateRegion(
  env: Env,
  _cfg: EdgeConfig,
  region: string,
  requestedTarget: string | undefined,
  call: ObjectCall,
): AsyncGenerator<EvacuationLine> {
  let cursor: string | undefined;
  do {
    const page: KVNamespaceListResult<SnapshotMetadata> = await env.SNAPSHOTS.list<SnapshotMetadata>({
      prefix: "snap:",
      ...(cursor ? { cursor } : {}),
    });
    const homed = page.keys.filter((k) => k.metadata?.reg === region);
    for (let i = 0; i < homed.length; i += CONCURRENCY) {
      const batch = homed.slice(i, i + CONCURRENCY).map(async (k): Promise<EvacuationLine> => {
        const meta = k.metadata as SnapshotMetadata;
        const sid = k.name.slice("snap:".length);
        const to = evacuationTarget(region, requestedTarget, meta.jur);
        if (!to) return { sid, status: "skipped", reason: "no region allowed by its jurisdiction" };
        let at: SessionAt = {
          sid,
          epoch: meta.ep,
          region: meta.reg,
          origin: meta.oid,
          createdSec: 0,
          ...(meta.jur ? { jurisdiction: meta.jur } : {}),
        };
        try {
          for (let hop = 0; hop < 4; hop++) {
            const here = at;
            const result = await call(here, (stub) => stub.migrate({ region: to }, "evacuate"));
            if (result.kind === "migrated") return { sid, status: "migrated", to, ms: result.durationMs };
            if (result.kind !== "moved")
              return { sid, status: result.kind === "pending" ? "failed" : "skipped", reason: result.kind };
            // The snapshot's metadata was behind: the session already moved on. Evacuate it only if it is still here.
            if (result.to.region !== region)
              return { sid, status: "skipped", reason: `already in ${result.to.region}` };
            at = { ...at, epoch: result.to.epoch, region: result.to.region };
          }
          return { sid, status: "failed", reason: "too many forward pointers" };
        } catch (e) {
          return { sid, status: "failed", reason: String(e) };
        }
      });
      for (const line of await Promise.all(batch)) yield line;
    }
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
}
