import type { Located } from "../migration/index.ts";
import type { AuditEntry } from "../session/record.ts";

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** What an operator sees of one session; data only when asked for. */
export function sessionView({ at, stored }: Located, withData: boolean) {
  const base = {
    sid: stored.sid,
    status: stored.status,
    epoch: stored.epoch,
    region: at.region,
    jurisdiction: at.jurisdiction ?? null,
  };
  const trail = (audit: AuditEntry[] | undefined) =>
    (audit ?? []).map((e) => ({ at: new Date(e.at).toISOString(), event: e.event, detail: e.detail ?? null }));
  if (stored.status !== "active")
    return {
      ...base,
      reason: stored.reason,
      endedAt: iso(stored.status === "destroyed" ? stored.endedAt : stored.movedAt),
      origin: null,
      version: null,
      sub: null,
      dataBytes: null,
      audit: trail(stored.status === "destroyed" ? stored.audit : undefined),
    };
  return {
    ...base,
    status: stored.migration ? ("migrating" as const) : ("active" as const),
    reason: null,
    endedAt: null,
    origin: stored.origin,
    home: stored.home ?? null,
    version: stored.version,
    sub: stored.sub ?? null,
    dataBytes: stored.dataBytes,
    createdAt: iso(stored.createdAt),
    updatedAt: iso(stored.updatedAt),
    lastSeen: iso(stored.lastSeen),
    audit: trail(stored.audit),
    ...(withData ? { data: stored.data, claims: stored.claims ?? null } : {}),
  };
}
