/**
 * A small SVG bar chart of the throughput scenarios, written by the bench
 * from its own figures (docs/benchmarks-throughput.svg): requests per second
 * and p99 latency, one bar per scenario, coloured by what served it.
 */
import type { Target } from "./scenarios.ts";

export interface ChartRow {
  label: string;
  target: Target;
  rps: number;
  p99: number;
  rpsRatio: number;
  p99Ratio: number;
}

const COLORS: Record<Target, string> = {
  baseline: "#8c8c8c",
  "edge-session": "#2f6fb7",
  haproxy: "#d9822b",
  origin: "#5b8c5a",
};
const LEGEND: Record<Target, string> = {
  baseline: "bare pass-through Worker (workerd)",
  "edge-session": "edge-session (workerd)",
  haproxy: "HAProxy: native code without session state",
  origin: "no proxy (the setup's ceiling)",
};

const WIDTH = 990;
const LABEL_W = 330;
const BAR_W = 420;
const ROW_H = 26;
const BAR_H = 16;

function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Workers are what the chart compares; reference rows far beyond them get a broken bar instead of squashing them. */
const COMPARED: ReadonlySet<Target> = new Set(["baseline", "edge-session"]);

function panel(
  rows: ChartRow[],
  top: number,
  title: string,
  value: (r: ChartRow) => number,
  text: (r: ChartRow) => string,
): { svg: string; height: number } {
  const all = Math.max(...rows.map(value), 1e-9);
  const compared = Math.max(...rows.filter((r) => COMPARED.has(r.target)).map(value), 0);
  // Break the axis only when a reference row would shrink the compared ones to under a third of the width.
  const max = compared > 0 && all > compared * 3 ? compared * 1.25 : all;
  const parts = [`<text x="16" y="${top + 18}" class="h">${esc(title)}</text>`];
  rows.forEach((r, i) => {
    const y = top + 32 + i * ROW_H;
    const broken = value(r) > max;
    const w = broken ? BAR_W : Math.max(1, (value(r) / max) * BAR_W);
    parts.push(
      `<text x="${LABEL_W - 8}" y="${y + BAR_H - 3}" text-anchor="end">${esc(r.label)}</text>`,
      `<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLORS[r.target]}" rx="2"/>`,
    );
    if (broken) {
      // Two white slashes: this bar is not to scale.
      const x = LABEL_W + BAR_W * 0.8;
      parts.push(
        `<path d="M${x} ${y + BAR_H + 1} l6 ${-BAR_H - 2} m4 0 l-6 ${BAR_H + 2}" stroke="#fff" stroke-width="3"/>`,
      );
    }
    parts.push(
      `<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + BAR_H - 3}">${esc(text(r))}${broken ? " (axis broken)" : ""}</text>`,
    );
  });
  return { svg: parts.join("\n"), height: 32 + rows.length * ROW_H + 10 };
}

export function throughputSvg(rows: ChartRow[], subtitle: string): string {
  const header = [
    `<text x="16" y="26" class="t">edge-session throughput (npm run bench)</text>`,
    `<text x="16" y="46" class="s">${esc(subtitle)}</text>`,
  ];
  const rps = panel(
    rows,
    58,
    "Requests per second (higher is better)",
    (r) => r.rps,
    (r) => `${fmt(r.rps)}  (${fmt(r.rpsRatio, 2)}× baseline)`,
  );
  const p99 = panel(
    rows,
    58 + rps.height,
    "p99 latency in ms (lower is better)",
    (r) => r.p99,
    (r) => `${fmt(r.p99, 1)} ms  (${fmt(r.p99Ratio, 2)}× baseline)`,
  );
  const legendTop = 58 + rps.height + p99.height + 4;
  const targets = [...new Set(rows.map((r) => r.target))];
  let x = 16;
  const legend = targets.map((t) => {
    const item = `<rect x="${x}" y="${legendTop}" width="12" height="12" fill="${COLORS[t]}"/><text x="${x + 18}" y="${legendTop + 11}">${esc(LEGEND[t])}</text>`;
    // About 6.5 px a character at 12 px: room for the text, then a gap.
    x += 18 + LEGEND[t].length * 6.5 + 24;
    return item;
  });
  const height = legendTop + 28;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
    "<style>.t{font-size:16px;font-weight:600}.s{fill:#555}.h{font-weight:600}</style>",
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...header,
    rps.svg,
    p99.svg,
    ...legend,
    "</svg>",
    "",
  ].join("\n");
}
