/** docs/benchmarks.md sections for the failover, migration and recovery figures . */
import type { FailoverLatency, FailoverLoad } from "./failover.ts";
import { fmt, table } from "./format.ts";
import type { MigrationSize } from "./migration.ts";
import type { RecoveryFigures } from "./recovery.ts";
import { max, median, percentile } from "./stats.ts";

const vars = (v: Record<string, string> | undefined) =>
  v && Object.keys(v).length
    ? Object.entries(v)
        .map(([k, x]) => `\`${k}=${x}\``)
        .join(", ")
    : "the defaults (`ENVIRONMENT=production`)";

export function failoverMarkdown(
  f: { latency: FailoverLatency; load: FailoverLoad },
  command: string,
  v: Record<string, string> | undefined,
): string {
  const { latency: l, load } = f;
  const added = median(l.failoverMs) - median(l.normalMs);
  const reasons = Object.entries(l.reasons)
    .map(([r, n]) => `\`${r}\` × ${n}`)
    .join(", ");
  const methods = ["GET", "POST"];
  const failedBy = (m: string) => load.failed.filter((x) => x.method === m).length;
  const codes = new Map<string, number>();
  for (const x of load.failed) {
    const key = `${x.method} ${x.status || "socket error"} ${x.code}`;
    codes.set(key, (codes.get(key) ?? 0) + 1);
  }
  const after = load.failed.map((x) => x.afterKillMs);
  const total = (r: Record<string, number>) => Object.values(r).reduce((a, n) => a + n, 0);
  return `## Failover when an origin dies

Measured by ${command},
against the deployed bundle with ${vars(v)}, two origins on two ports of one origin process. An
origin "dies" by really closing its listening socket and its open connections,
so the layer's next connection is refused.

### Added latency of the failover request

${table(
  ["request", "samples", "p50 ms", "p90 ms"],
  [
    [
      "normal: sticky GET, session read, origin up",
      fmt(l.normalMs.length),
      fmt(median(l.normalMs), 2),
      fmt(percentile(l.normalMs, 0.9), 2),
    ],
    [
      "failover: first GET after its origin closed",
      fmt(l.failoverMs.length),
      fmt(median(l.failoverMs), 2),
      fmt(percentile(l.failoverMs, 0.9), 2),
    ],
  ],
)}

Failing over adds **${fmt(added, 1)} ms** at the median (p50 − p50): the refused
connection, the re-pin written to the session's Durable Object (a session with
stored state), a new forwarded-header signature and the retry on the other
origin. ${l.repetitions} repetitions, each with a new session (one origin write,
so it has stored state), 10 normal GETs, then its origin closed and one GET
timed; the origin reopens before the next. The new origin saw ${reasons} in
\`X-Edge-Session\`, and the session stayed there for the next request.${
    l.problems.length ? `\n\nProblems: ${l.problems.join("; ")}.` : ""
  }

### Requests failed while an origin dies under load

${load.clients} closed-loop clients, each with its own sticky session (${load.sessionsOnKilled}
of them on the origin that dies), alternating \`GET /\` and \`POST /write\` (a
session write) for ${load.seconds} s; one origin is closed ${load.killAt} s in and stays down.

${table(
  ["", ...methods, "total"],
  [
    ["sent", ...methods.map((m) => fmt(load.requests[m] ?? 0)), fmt(total(load.requests))],
    ["answered 2xx", ...methods.map((m) => fmt(load.answered[m] ?? 0)), fmt(total(load.answered))],
    ["**failed**", ...methods.map((m) => `**${fmt(failedBy(m))}**`), `**${fmt(load.failed.length)}**`],
    ["received by an origin", ...methods.map((m) => fmt(load.received[m] ?? 0)), fmt(total(load.received))],
  ],
)}

${
  load.failed.length
    ? `Failures: ${[...codes].map(([k, n]) => `${n} × ${k}`).join(", ")}, sent ${
        Math.min(...after) === Math.max(...after)
          ? fmt(Math.min(...after), 0)
          : `${fmt(Math.min(...after), 0)} to ${fmt(Math.max(...after), 0)}`
      } ms after the bench told the origin to close (negative: while it was closing).`
    : "No request failed."
} GETs are retried on the other origin and never fail. A POST is not idempotent,
so a POST whose origin refuses it is answered \`502 ERR_ORIGIN_UNREACHABLE\` and
not sent again; its session has already moved, so the client's retry succeeds.
"Received by an origin" equals "answered 2xx" when no failed POST reached an
origin: none was sent twice. After \`OUTLIER_CONSECUTIVE_FAILURES\` (5) refused
connections the isolate ejects the origin, and the sessions still pinned to it
move without trying it (reason \`ejected\`).`;
}

export function migrationMarkdown(m: MigrationSize[], command: string, v: Record<string, string> | undefined): string {
  const rows = m.map((s) => [
    s.label,
    fmt(s.dataBytes),
    fmt(s.apiMs.length),
    fmt(median(s.apiMs), 0),
    fmt(max(s.apiMs), 0),
    fmt(median(s.wallMs), 1),
    fmt(max(s.wallMs), 1),
  ]);
  const stall = m.map((s) => [
    s.label,
    fmt(s.stall.length),
    fmt(max(s.stall.map((x) => x.maxMs)), 1),
    fmt(median(s.stall.map((x) => x.outsideP50Ms)), 1),
    fmt(s.stall.reduce((a, x) => a + x.during, 0)),
    fmt(s.stall.reduce((a, x) => a + x.failed, 0)),
  ]);
  const problems = m.flatMap((s) => s.problems);
  return `## Migration between regions

Measured by ${command},
against the deployed bundle with ${vars(v)}. Each session is filled by origin patches of at most
60,000 bytes, left a second for its snapshot, then moved with
\`POST /__edge/sessions/:sid/migrate {"region":"apac"}\` (enam → apac). Locally
every "region" is the same workerd process: the figures are the protocol's own
cost (freeze, hand-over of the whole record by RPC, switch), not a
transcontinental copy.

${table(["session", "dataBytes", "migrations", "durationMs p50", "durationMs max", "call p50 ms", "call max ms"], rows)}

\`durationMs\` is what the API answers, timed inside the old object from the
freeze to the switch. "call" is the wall time of the operator request from the
bench: the Worker, the lookup of the session (a KV metadata read and an object
call) and HTTP on top. Each migration was checked afterwards: epoch 2, region
apac, same dataBytes.

**Longest stall seen by a concurrent request.** While the session migrates, a
reader (\`GET /\`) and a writer (an origin patch on every request) loop on it,
each sending its next request when the last is answered, from 1.5 s before the
migration to 1 s after.

${table(["session", "migrations", "longest request during migration, ms", "median outside, ms", "requests during", "failed"], stall)}

Writes that reach the old object while it is frozen are answered "migrating"
and retried by the Worker (25 ms, doubling, at most 400 ms per pause); reads
are served from the frozen state. ${
    m.some((s) => s.stall.some((x) => x.failed)) ? "**Some requests failed** (column failed)." : "No request failed."
  }${problems.length ? `\n\nProblems: ${problems.join("; ")}.` : ""}`;
}

export function recoveryMarkdown(r: RecoveryFigures, command: string, v: Record<string, string> | undefined): string {
  const rto = r.rto.map((f) => [
    f.mode === "down"
      ? "`down`: calls to the region fail at once"
      : `\`slow\`: calls wait ${fmt(r.slowMs)} ms, over SESSION_TIMEOUT_MS=${fmt(r.sessionTimeoutMs)}`,
    fmt(f.rtoMs.length),
    fmt(median(f.normalMs), 1),
    fmt(median(f.rtoMs), 1),
    fmt(max(f.rtoMs), 1),
    fmt(median(f.restoreMs), 0),
  ]);
  const lost = r.rpo.map((x) => x.lostWrites);
  const windows = r.rpo.map((x) => x.windowMs);
  const ages = r.rpo.map((x) => x.snapshotAgeMs);
  const raced = r.rpo.filter((x) => x.raced).length;
  const staleKv = r.problems.filter((p) => p.includes("KV holds")).length;
  const problems = [...r.rto.flatMap((f) => f.problems), ...r.problems];
  return `## Recovery when a session's Durable Object is lost

Measured by ${command},
against the deployed bundle with ${vars(v)}. The home region of the sessions (enam) is made
unreachable with \`POST /__edge/faults {"target":"region:enam",…}\`; with
\`POOL_CACHE_SECONDS=0\` the next request sees the fault.

### RTO: from the failure to the first served request

${table(["fault", "runs", "normal request p50 ms", "RTO p50 ms", "RTO max ms", "restore_ms p50 (log)"], rto)}

RTO is the time from the fault being in force (the faults call answered) to the
end of the first response, which is the restore itself: the failed call, a KV
snapshot read, the fence write to KV, a new object (epoch 2) in another region,
and the request served from it. \`restore_ms\` is the layer's own measure of the
restore, from its \`session_restored\` log line. With \`slow\`, detection waits out
\`SESSION_TIMEOUT_MS\`, so RTO ≈ SESSION_TIMEOUT_MS + restore. Every restored
session had its data (checked in the forwarded header), epoch 2 and a region other than enam.

### RPO: what the restore starts without

${table(
  [
    "runs",
    "missing writes p50",
    "missing writes max",
    "window p50 ms",
    "window max ms",
    "snapshot age at restore p50 ms",
    "max ms",
  ],
  [
    [
      fmt(r.rpo.length),
      fmt(median(lost), 1),
      fmt(max(lost)),
      fmt(median(windows), 0),
      fmt(max(windows), 0),
      fmt(median(ages), 0),
      fmt(max(ages), 0),
    ],
  ],
)}

A client writes a counter into the session every 100 ms, each write
acknowledged before the next, for 2.0–2.9 s (a different point of the 1-second
snapshot cycle each run); then the region goes down and the next request reads
the restored counter. Missing writes = last acknowledged counter − restored
counter; the window = how long before the failure the restored write had been
acknowledged. Both are bounded by the snapshot coalescing: at most one second of
writes (here at most 10) plus the time to write a snapshot. They are missing, not
lost: the old object keeps them and hands them to the restored one once it is
reachable again (catch-up, docs/replication.md); the chaos test checks they come
back (docs/reliability.md). ${raced ? `In ${raced} run(s) the old object's alarm wrote a snapshot after the fault was injected (the injected fault leaves the object running; a real outage would not), which makes those runs optimistic.` : "In no run did the old object write a snapshot after the fault was injected (the injected fault leaves it running; a real outage would not)."} ${
    staleKv
      ? `**In ${staleKv} run(s) KV held a snapshot of the fenced epoch after the restore** (see Problems).`
      : "After the runs, KV held the restored epoch's snapshot for every session."
  }${problems.length ? `\n\nProblems: ${problems.join("; ")}.` : ""}`;
}
