/**
 * A revocation the session's object has not acknowledged yet (it was
 * unreachable), kept in KV beside the session's snapshot and fence: a restore
 * reads it and refuses to bring the session back elsewhere. It expires with the
 * session's absolute lifetime, after which no token for it can be valid anyway.
 */
const revokedKey = (sid: string) => `revoked:${sid}`;

export async function recordRevocation(kv: KVNamespace, sid: string, why: string, untilMs: number): Promise<void> {
  // KV wants an absolute expiration at least 60 s ahead.
  const expiration = Math.max(Math.ceil(untilMs / 1000), Math.ceil(Date.now() / 1000) + 60);
  await kv.put(revokedKey(sid), why, { expiration });
}

/** Whether a revocation is recorded for the session; an unreadable KV is treated as "no" by the caller's choice. */
export async function isRevoked(kv: KVNamespace, sid: string): Promise<boolean> {
  return (await kv.get(revokedKey(sid))) !== null;
}
