/**
 * What the counting Worker reports per session at GET /__bench/counts: shared by
 * the Worker (entry.ts) and the Node runner that reads it (bench/figures/cost.ts).
 * Types only, so both TypeScript projects can import it.
 */
export interface Counts {
  /** RPC calls and alarm invocations received by the session's objects, by method. */
  objectCalls: Record<string, number>;
  /** Busy wall time of the session's objects, ms. */
  objectBusyMs: number;
  /** Storage API calls, by operation. */
  storage: Record<string, number>;
  /** KV operations on the session's keys, by operation. */
  kv: Record<string, number>;
  kvBytesWritten: number;
  /** Calls the session's objects made to the pool object (live counts on timeout, events), by method. */
  poolCalls: Record<string, number>;
  /** Distinct objects (one per epoch). */
  objects: string[];
}
