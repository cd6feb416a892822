/**
 * The chaos run as a table (for the terminal, or Markdown for
 * docs/reliability.md), and as a compact diagnosis when something failed.
 */
import { type Counters, FAILURE_KINDS, type OutageSession, type Problem } from "./ledger.ts";
import type { ChaosResult } from "./run.ts";

const COLUMNS: { head: string; cell: (c: Counters) => string }[] = [
  { head: "writes sent", cell: (c) => `${c.writesSent}` },
  { head: "acked", cell: (c) => `${c.writesAcked}` },
  { head: "present at end", cell: (c) => `${c.presentAtEnd}` },
  { head: "logged out", cell: (c) => `${c.loggedOut}` },
  { head: "LOST", cell: (c) => `${c.lost}` },
  { head: "applied twice", cell: (c) => `${c.appliedTwice + c.originDuplicates}` },
  { head: "two truths", cell: (c) => `${c.twoTruths}` },
  { head: "stale reads", cell: (c) => `${c.staleReads}` },
  { head: "logins acked / lost", cell: (c) => `${c.loginsAcked} / ${c.loginsLost}` },
  { head: "logouts acked / lost", cell: (c) => `${c.logoutsAcked} / ${c.logoutsLost}` },
  { head: "typed 503", cell: (c) => `${c.typed503}` },
  { head: "502/504 (POST)", cell: (c) => `${c.originFailed}` },
  { head: "other 5xx", cell: (c) => `${c.bad5xx}` },
  { head: "requests", cell: (c) => `${c.requests}` },
];

function latencyCells(r: ChaosResult, scenario: string | undefined): string[] {
  const all = scenario ? (r.ledger.latencies.get(scenario) ?? []) : [...r.ledger.latencies.values()].flat();
  return [`${quantile(all, 0.5)}`, `${quantile(all, 0.99)}`, `${all.length ? Math.max(...all) : 0}`];
}

function rows(r: ChaosResult): string[][] {
  const out = r.scenarios.map((s) => {
    const c = r.ledger.scenarios.get(s.name);
    return [s.name, ...COLUMNS.map((col) => (c ? col.cell(c) : "0")), ...latencyCells(r, s.name)];
  });
  out.push(["total", ...COLUMNS.map((col) => col.cell(r.ledger.totals())), ...latencyCells(r, undefined)]);
  return out;
}

function textTable(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  return [line(head), ...body.map(line)].join("\n");
}

function markdownTable(head: string[], body: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? "---" : "---:"))), ...body.map(line)].join("\n");
}

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
};

/** Recovery point and recovery time over the sessions a region outage exposed. */
export function outageSummary(outages: OutageSession[]): string[] {
  if (!outages.length) return ["no region outage in this run"];
  const losing = outages.filter((o) => o.lostWrites > 0);
  const homed = outages.filter((o) => o.homed && o.requests > 0);
  const recovered = homed.filter((o) => o.recoveryMs !== undefined).map((o) => o.recoveryMs ?? 0);
  const lost = losing.reduce((n, o) => n + o.lostWrites, 0);
  const spans = losing.map((o) => o.lostSpanMs);
  return [
    `sessions exposed to an outage (counted once per outage): ${outages.length}, ${outages.filter((o) => o.homed).length} of them seen living in the downed region; typed 503s they got: ${outages.reduce((n, o) => n + o.typed503, 0)}`,
    losing.length
      ? `recovery point: ${lost} acknowledged writes lost in ${losing.length} sessions; up to ${Math.max(...losing.map((o) => o.lostWrites))} writes and ${Math.max(...spans)} ms of writes in one session (median ${quantile(spans, 0.5)} ms)`
      : "recovery point: no acknowledged write lost",
    `recovery time (fault, or arrival in the downed region → first 2xx served from elsewhere, or once the region is back): ${recovered.length ? `median ${quantile(recovered, 0.5)} ms, max ${Math.max(...recovered)} ms` : "none recovered"}${homed.length - recovered.length ? `; ${homed.length - recovered.length} of ${homed.length} never were` : ""}`,
  ];
}

function mapLines(m: Map<string, number>, limit = 14): string[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([k, n]) => `${String(n).padStart(6)} × ${k}`);
}

export function problemLines(problems: Problem[], perKind = 6): string[] {
  const out: string[] = [];
  const kinds = [...new Set(problems.map((p) => p.kind))];
  for (const kind of kinds) {
    const all = problems.filter((p) => p.kind === kind);
    out.push(`${kind} (${all.length}${FAILURE_KINDS.includes(kind) ? "" : ", not a failure by itself"}):`);
    for (const p of all.slice(0, perKind))
      out.push(
        `  [${p.scenario}] ${p.client}${p.sid ? ` sid ${p.sid.slice(0, 8)}` : ""} +${(p.at / 1000).toFixed(2)}s: ${p.detail}`,
      );
    if (all.length > perKind) out.push(`  … and ${all.length - perKind} more`);
  }
  return out;
}

export function textReport(r: ChaosResult, verbose = true): string {
  const head = ["scenario", ...COLUMNS.map((c) => c.head), "p50 ms", "p99 ms", "max ms"];
  const parts = [textTable(head, rows(r))];
  const answers = [...r.ledger.answers5xx.entries()].map(
    ([k, v]) => `${String(v.n).padStart(6)} × ${k}${v.allowed ? "" : "   ← FAILURE"}`,
  );
  parts.push(`\nlayer answers ≥ 500:\n${answers.length ? answers.join("\n") : "  none"}`);
  parts.push(
    `\nregion outages:\n${outageSummary(r.ledger.outages)
      .map((l) => `  ${l}`)
      .join("\n")}`,
  );
  if (verbose) {
    parts.push(`\noperator calls:\n${mapLines(r.ledger.operator).join("\n")}`);
    parts.push(`\nworker warnings and errors:\n${mapLines(r.logs).join("\n") || "  none"}`);
  }
  const problems = r.ledger.problems;
  if (problems.length) parts.push(`\n${problemLines(problems, verbose ? 6 : 3).join("\n")}`);
  return parts.join("\n");
}

export function markdownReport(r: ChaosResult, command: string): string {
  const head = ["scenario", ...COLUMNS.map((c) => c.head), "p50 ms", "p99 ms", "max ms"];
  const answers = [...r.ledger.answers5xx.entries()].map(
    ([k, v]) => `| ${k} | ${v.n} | ${v.allowed ? "allowed" : "**failure**"} |`,
  );
  return [
    `Command: \`${command}\` (${r.clients} clients, ${(r.options.durationMs / 1000).toFixed(0)} s, seed ${r.options.seed}).`,
    "",
    markdownTable(head, rows(r)),
    "",
    "| layer answer ≥ 500 | count | verdict |",
    "| --- | ---: | --- |",
    ...(answers.length ? answers : ["| none | 0 | |"]),
    "",
    ...outageSummary(r.ledger.outages).map((l) => `- ${l}`),
  ].join("\n");
}
