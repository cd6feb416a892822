/**
 * Cloudflare's published list prices (Workers Paid plan, beyond the monthly
 * included usage), used to price the counted operations. They cannot be
 * fetched by the bench: they were read from Cloudflare's documentation (the
 * pages below) on 2026-11-21, as stored copies that were not checked against
 * the live site. Update PRICES_READ and the figures when they change.
 */
export const PRICES_READ = "2026-11-21";

export const PRICE_SOURCES = [
  { what: "Workers requests and CPU time", url: "https://developers.cloudflare.com/workers/platform/pricing/" },
  {
    what: "Durable Objects requests, duration, SQLite rows and storage",
    url: "https://developers.cloudflare.com/durable-objects/platform/pricing/",
  },
  { what: "Workers KV reads, writes, deletes, storage", url: "https://developers.cloudflare.com/kv/platform/pricing/" },
];

/** US dollars per unit. */
export const PRICES = {
  workerRequest: 0.3 / 1e6,
  workerCpuMs: 0.02 / 1e6,
  objectRequest: 0.15 / 1e6,
  /** Duration is billed for 128 MB per active object: GB-s = seconds × 0.128 (as Cloudflare's examples compute it). */
  objectGbSecond: 12.5 / 1e6,
  rowRead: 0.001 / 1e6,
  rowWritten: 1.0 / 1e6,
  kvRead: 0.5 / 1e6,
  kvWrite: 5.0 / 1e6,
  kvDelete: 5.0 / 1e6,
} as const;

export const OBJECT_GB = 0.128;

export interface PricedOps {
  workerRequests: number;
  workerCpuMs: number;
  objectRequests: number;
  objectBusyMs: number;
  rowsRead: number;
  rowsWritten: number;
  kvReads: number;
  kvWrites: number;
  kvDeletes: number;
}

/** Dollars per million sessions, by line. */
export function perMillion(o: PricedOps): Record<string, number> {
  const m = 1e6;
  return {
    "Worker requests": o.workerRequests * PRICES.workerRequest * m,
    "Worker CPU": o.workerCpuMs * PRICES.workerCpuMs * m,
    "DO requests": o.objectRequests * PRICES.objectRequest * m,
    "DO duration": (o.objectBusyMs / 1000) * OBJECT_GB * PRICES.objectGbSecond * m,
    "SQLite rows read": o.rowsRead * PRICES.rowRead * m,
    "SQLite rows written": o.rowsWritten * PRICES.rowWritten * m,
    "KV reads": o.kvReads * PRICES.kvRead * m,
    "KV writes": o.kvWrites * PRICES.kvWrite * m,
    "KV deletes": o.kvDeletes * PRICES.kvDelete * m,
  };
}
