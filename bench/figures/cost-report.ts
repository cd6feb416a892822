/** docs/benchmarks.md sections for the operation counts: KV writes per session and cost. */
import type { CostFigures, SessionOps, ShapeFigures } from "./cost.ts";
import { fmt, table } from "./format.ts";
import { PRICE_SOURCES, PRICES, PRICES_READ, type PricedOps, perMillion } from "./prices.ts";

const shapeById = (c: CostFigures, id: string) => c.shapes.find((s) => s.shape.id === id);

export function kvWritesMarkdown(c: CostFigures): string {
  const rows = ["every", "one-write", "login-3", "anonymous"].flatMap((id) => {
    const s = shapeById(c, id);
    if (!s) return [];
    return [
      [
        s.shape.label,
        fmt(s.burst.kvWrites, 1),
        fmt(s.paced.kvWrites),
        fmt(s.paced.kvReads),
        fmt(s.end.kvDeletes),
        fmt(s.paced.kvBytesWritten / Math.max(1, s.paced.kvWrites)),
      ],
    ];
  });
  return `### KV writes per 20-request session

${table(
  [
    "session (20 requests)",
    `KV writes, back to back (mean of ${c.burstSessions})`,
    `KV writes, a request every ${fmt(c.paceMs / 1000, 1)} s`,
    "KV reads (fence checks), paced",
    "KV deletes at its end",
    "bytes per snapshot",
  ],
  rows,
)}

Counted, not inferred: the Worker runs behind a counting shim
(bench/workers/counting/entry.ts) that wraps the \`SNAPSHOTS\` binding in the
Worker's env and in every session object's env, and counts each \`put\`, \`get\`,
\`getWithMetadata\` and \`delete\` by the session id in its key. Back to back,
the 1-per-second coalescing folds a session's writes into one or two snapshots; at a
human pace each write gets its own. Before accepting a write, an object checks
the KV fence at most every 2 s: those are the KV reads. The snapshot is deleted when
the session ends (idle timeout, logout, login rotation).`;
}

/** What is priced for one session: the paced run plus the end of its life. */
function lifetime(s: ShapeFigures): PricedOps {
  const a = s.paced;
  const b = s.end;
  return {
    workerRequests: a.workerRequests,
    workerCpuMs: s.cpuMsPerRequest * a.workerRequests,
    objectRequests: a.objectRequests + b.objectRequests + a.poolCalls + b.poolCalls,
    objectBusyMs: a.objectBusyMs + b.objectBusyMs,
    rowsRead: a.rowsRead + b.rowsRead,
    rowsWritten: a.rowsWritten + b.rowsWritten,
    kvReads: a.kvReads + b.kvReads,
    kvWrites: a.kvWrites + b.kvWrites,
    kvDeletes: a.kvDeletes + b.kvDeletes,
  };
}

/** The anonymous session if the Worker made no Durable Object call for a session that never stored anything. */
function withoutObject(anon: ShapeFigures): PricedOps {
  return {
    workerRequests: anon.paced.workerRequests,
    workerCpuMs: anon.cpuMsPerRequest * anon.paced.workerRequests,
    objectRequests: 0,
    objectBusyMs: 0,
    rowsRead: 0,
    rowsWritten: 0,
    kvReads: 0,
    kvWrites: 0,
    kvDeletes: 0,
  };
}

const breakdown = (r: Record<string, number>, keys?: string[]) =>
  Object.entries(r)
    .filter(([m]) => !keys || keys.includes(m))
    .sort((a, b) => b[1] - a[1])
    .map(([m, n]) => `${fmt(n)} ${m}`)
    .join(", ");
const calls = (o: SessionOps) => breakdown(o.objectCalls);
const WRITES = ["kv.put", "kv.delete", "setAlarm", "deleteAlarm", "deleteAll"];
const writes = (s: ShapeFigures) =>
  [breakdown(s.paced.storage, WRITES), s.end.rowsWritten ? `at its end ${breakdown(s.end.storage, WRITES)}` : ""]
    .filter(Boolean)
    .join("; ") || "–";

export function costMarkdown(c: CostFigures, command: string): string {
  const shapes = c.shapes;
  const anon = shapeById(c, "anonymous");
  const columns = [...shapes.map((s) => lifetime(s)), ...(anon ? [withoutObject(anon)] : [])];
  const head = [
    "per session",
    ...shapes.map((s) => s.shape.label),
    ...(anon ? ["anonymous, no object call (proposal)"] : []),
  ];
  const opsRows: string[][] = [
    ["Worker requests", ...columns.map((o) => fmt(o.workerRequests))],
    [
      "workerd CPU per request, ms (upper bound)",
      ...[...shapes, ...(anon ? [anon] : [])].map((s) => fmt(s.cpuMsPerRequest, 2)),
    ],
    ["Durable Object requests (session objects + pool)", ...columns.map((o) => fmt(o.objectRequests))],
    [
      "… of which",
      ...shapes.map((s) => calls(s.paced) + (s.end.objectRequests ? `; at its end ${calls(s.end)}` : "")),
      ...(anon ? ["–"] : []),
    ],
    [
      "… pool calls (live counts, events)",
      ...shapes.map((s) => fmt(s.paced.poolCalls + s.end.poolCalls, 1)),
      ...(anon ? ["0"] : []),
    ],
    ["Durable Object busy time, ms", ...columns.map((o) => fmt(o.objectBusyMs, 1))],
    ["SQLite rows read", ...columns.map((o) => fmt(o.rowsRead))],
    ["SQLite rows written", ...columns.map((o) => fmt(o.rowsWritten))],
    ["… of which", ...shapes.map(writes), ...(anon ? ["–"] : [])],
    ["KV reads", ...columns.map((o) => fmt(o.kvReads))],
    ["KV writes", ...columns.map((o) => fmt(o.kvWrites))],
    ["KV deletes", ...columns.map((o) => fmt(o.kvDeletes))],
  ];
  const priced = columns.map(perMillion);
  const lines = Object.keys(priced[0] ?? {});
  const dollars = (n: number) => `$${fmt(n, 2)}`;
  const priceRows = [
    ...lines.map((line) => [line, ...priced.map((p) => dollars(p[line] ?? 0))]),
    [
      "**total per million sessions**",
      ...priced.map((p) => `**${dollars(Object.values(p).reduce((a, n) => a + n, 0))}**`),
    ],
  ];
  return `## Operations and cost per session

Measured by ${command},
with the counting shim
around the real Worker (bench/workers/counting/entry.ts), at the production
defaults (\`ENVIRONMENT=production\`, \`POOL_CACHE_SECONDS=3\`). Each session makes
20 requests, one every ${fmt(c.paceMs / 1000, 1)} s; its end (the idle-timeout alarm: purge, snapshot
delete, pool count) is counted on a second instance with \`SESSION_IDLE_TIMEOUT=10\`
so that it happens within the run. What is counted:

- Durable Object requests: every RPC call and alarm invocation a session's objects receive (each is a billed request), plus the calls to the pool object made for that session;
- busy time: wall time inside those calls, overlapping calls on one object counted once (an object with nothing pending can hibernate and is not billed). workerd's clock stands still during work that does no I/O, so this is a lower bound, 0 for a read; at a full millisecond per call, 20 calls would still cost under $0.05 per million sessions;
- SQLite rows: each \`ctx.storage.kv.get\` and \`getAlarm\` as a row read; each \`kv.put\`, \`kv.delete\`, \`setAlarm\` and \`deleteAlarm\` as a row written (how SQLite-backed objects bill the key-value API and alarms);
- KV: each operation on the session's keys (\`snap:<sid>\`, \`fence:<sid>\`);
- CPU: the workerd process's CPU time (from /proc) over ${c.burstSessions} back-to-back sessions of each shape, divided by their requests. It includes the objects, the local KV and workerd's HTTP handling, so it overstates the Worker's billed CPU.

Pool view refreshes (\`POOL_CACHE_SECONDS=3\`) are per isolate, not per session: ${fmt(c.poolViewsPerSecond, 2)} a second here, one isolate.

${table(head, opsRows)}

### Dollars per million such sessions

At Cloudflare's list prices, read ${PRICES_READ} (below), beyond the included
usage of the Workers Paid plan (which also costs $5 a month and includes 10 M
Worker requests, 1 M Durable Object requests, 400,000 GB-s, 25 B rows read,
50 M rows written, 10 M KV reads and 1 M KV writes a month, not deducted here).
Duration: busy seconds × 0.128 GB (128 MB per object). Storage is left out: a
session's record and snapshot are a few kB and live at most until its timeout.

${table(["per million sessions", ...head.slice(1)], priceRows)}

Prices: Worker requests $${fmt(PRICES.workerRequest * 1e6, 2)}/M, CPU $${fmt(PRICES.workerCpuMs * 1e6, 2)}/M ms;
Durable Objects $${fmt(PRICES.objectRequest * 1e6, 2)}/M requests, $${fmt(PRICES.objectGbSecond * 1e6, 2)}/M GB-s,
rows read $${fmt(PRICES.rowRead * 1e6, 3)}/M, rows written $${fmt(PRICES.rowWritten * 1e6, 2)}/M; KV reads
$${fmt(PRICES.kvRead * 1e6, 2)}/M, writes $${fmt(PRICES.kvWrite * 1e6, 2)}/M, deletes $${fmt(PRICES.kvDelete * 1e6, 2)}/M. Sources:
${PRICE_SOURCES.map((s) => `${s.what}: ${s.url}`).join("; ")}. docs/cost.md discusses these numbers.`;
}

/** The read cache's effect: the same shapes with READ_CACHE_SECONDS at its default and at 0. */
export function cacheEffectMarkdown(cached: CostFigures, strict: CostFigures): string {
  const total = (s: ShapeFigures) => Object.values(perMillion(lifetime(s))).reduce((a, n) => a + n, 0);
  const rows = cached.shapes.flatMap((c) => {
    const s = strict.shapes.find((x) => x.shape.id === c.shape.id);
    if (!s) return [];
    const cl = lifetime(c);
    const sl = lifetime(s);
    return [
      [
        c.shape.label,
        `${fmt(cl.objectRequests)} / ${fmt(sl.objectRequests)}`,
        `${fmt(cl.rowsRead)} / ${fmt(sl.rowsRead)}`,
        `$${fmt(total(c), 2)} / $${fmt(total(s), 2)}`,
      ],
    ];
  });
  return `### The read cache's effect

The same sessions (20 requests, one every ${fmt(cached.paceMs / 1000, 1)} s), counted the same way, with the read
cache on (\`READ_CACHE_SECONDS=5\`) and in strict mode (\`READ_CACHE_SECONDS=0\`):

${table(["per session: cache on / strict", "Durable Object requests", "SQLite rows read", "dollars per million sessions"], rows)}`;
}
