/**
 * The dashboard's charts, drawn as SVG by the page: bars for sessions per
 * origin, a donut for sessions per region, and a time axis of pool events with
 * one lane per origin. Plain browser JavaScript in a string (see client.ts);
 * it runs inside the same function scope as the core script.
 */
export const CHARTS_JS = String.raw`
const SVG_NS = "http://www.w3.org/2000/svg";
const REGION_NAMES = { wnam: "W. North America", enam: "E. North America", sam: "South America", weur: "W. Europe",
  eeur: "E. Europe", apac: "Asia-Pacific", oc: "Oceania", afr: "Africa", me: "Middle East" };
const PALETTE = ["#2563eb", "#0e9384", "#7c3aed", "#e8590c", "#c4320a", "#db2777", "#15803d", "#475467", "#0891b2"];
// First match wins: "origin_unhealthy" is trouble before "healthy" makes it a recovery.
const CATEGORIES = [
  { key: "trouble", test: /unhealthy|eject|fail|error|down/, color: "#d92d20", label: "ejected / unhealthy / failed" },
  { key: "recovery", test: /healthy|recover|cancel|undrain/, color: "#15803d", label: "healthy again / drain cancelled" },
  { key: "drain", test: /drain/, color: "#dc8a04", label: "drain" },
  { key: "move", test: /repin|re_pin|failover|moved/, color: "#2563eb", label: "re-pin / failover" },
  { key: "migration", test: /migrat|evacuat/, color: "#7c3aed", label: "migration" },
  { key: "restore", test: /restor|snapshot/, color: "#0e9384", label: "restore" },
  { key: "other", test: /[\s\S]*/, color: "#667085", label: "other" },
];
const categoryOf = (name) => CATEGORIES.find((c) => c.test.test(name));

function svg(tag, attrs, kids) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const k in attrs || {}) if (attrs[k] !== undefined && attrs[k] !== null) el.setAttribute(k, String(attrs[k]));
  for (const kid of kids || []) if (kid) el.append(kid);
  return el;
}
const text = (x, y, s, cls, extra) => svg("text", Object.assign({ x, y, class: cls, "dominant-baseline": "middle" }, extra), [String(s)]);
const titled = (el, s) => { el.append(svg("title", {}, [s])); return el; };
const widthOf = (el, fallback) => Math.max(320, el.clientWidth || fallback);
// Origin ids may be 64 characters; the label column holds about 15 (the full id is in the tooltip).
const short = (s) => (s.length > 15 ? s.slice(0, 14) + "\u2026" : s);

/** rows: [{ key, label, value, color, note }] */
function barChart(el, rows, name) {
  const W = widthOf(el, 640), LW = 118, RH = 34, BH = 20, VW = 44;
  const H = Math.max(1, rows.length) * RH + 6;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": name, "data-chart": name });
  root.append(svg("line", { x1: LW, x2: LW, y1: 0, y2: H - 4, class: "grid" }));
  rows.forEach((r, i) => {
    const y = i * RH + RH / 2, w = r.value > 0 ? Math.max(3, ((W - LW - VW) * r.value) / max) : 0;
    const g = svg("g", { "data-bar": r.key });
    g.append(titled(text(0, y - (r.note ? 7 : 0), short(r.label), "label"), r.label));
    if (r.note) g.append(text(0, y + 9, r.note, "axis"));
    g.append(titled(svg("rect", { x: LW, y: y - BH / 2, width: w, height: BH, rx: 3, fill: r.color }), r.label + ": " + r.value));
    g.append(text(LW + w + 8, y, r.value, "value", { "data-value": r.value }));
    root.append(g);
  });
  if (!rows.length) root.append(text(LW + 10, RH / 2, "no origins", "empty"));
  el.replaceChildren(root);
}

/** parts: [{ key, label, value }] */
function donutChart(el, parts, name) {
  const total = parts.reduce((n, p) => n + p.value, 0), R = 58, SW = 22, C = 2 * Math.PI * R;
  const root = svg("svg", { viewBox: "0 0 150 150", role: "img", "aria-label": name, "data-chart": name });
  root.append(svg("circle", { cx: 75, cy: 75, r: R, fill: "none", stroke: "#eaecf0", "stroke-width": SW }));
  let offset = 0;
  parts.forEach((p, i) => {
    const len = total ? (C * p.value) / total : 0;
    const arc = svg("circle", { cx: 75, cy: 75, r: R, fill: "none", stroke: PALETTE[i % PALETTE.length], "stroke-width": SW,
      "stroke-dasharray": len + " " + (C - len), "stroke-dashoffset": -offset, transform: "rotate(-90 75 75)" });
    root.append(titled(arc, p.label + ": " + p.value));
    offset += len;
  });
  root.append(text(75, 70, total, "big", { "text-anchor": "middle", "data-value": total }));
  root.append(text(75, 94, total === 1 ? "session" : "sessions", "axis", { "text-anchor": "middle" }));
  const legend = document.createElement("ul");
  legend.className = "legend";
  parts.forEach((p, i) => {
    const li = document.createElement("li");
    li.dataset.region = p.key;
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.setProperty("--c", PALETTE[i % PALETTE.length]);
    const label = document.createElement("span");
    label.textContent = p.label;
    const value = document.createElement("b");
    value.dataset.value = String(p.value);
    value.textContent = p.value + (total ? " · " + Math.round((100 * p.value) / total) + "%" : "");
    li.append(sw, label, value);
    legend.append(li);
  });
  if (!parts.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No sessions with stored state yet.";
    legend.append(li);
  }
  const box = document.createElement("div");
  box.className = "donut";
  box.append(root, legend);
  el.replaceChildren(box);
}

// Minutes: the window is the smallest that holds the oldest event; ticks are at most 6 to a window.
const WINDOWS = [1, 5, 15, 60, 360, 1440];
const STEPS = [0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 240];
const hhmm = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
const hhmmss = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

/** One lane per origin; re-pins are arrows from the origin a session left to the one it went to. */
function timelineChart(el, events, origins, now) {
  // One lane per configured origin, nothing else: callers pass only events that belong to one (e.lane).
  const ids = origins.map((o) => o.id);
  const oldest = events.length ? Math.min(...events.map((e) => Date.parse(e.at))) : now;
  const minutes = WINDOWS.find((m) => m * 60000 >= (now - oldest) * 1.05) || WINDOWS[WINDOWS.length - 1];
  const t0 = now - minutes * 60000, W = widthOf(el, 900), LW = 118, RW = 14, LH = 30, AX = 24;
  const H = Math.max(1, ids.length) * LH + AX;
  const x = (t) => LW + ((Math.max(t0, t) - t0) / (now - t0)) * (W - LW - RW);
  const laneY = (id) => ids.indexOf(id) * LH + LH / 2;
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "timeline", "data-chart": "timeline" });
  const defs = svg("defs");
  for (const c of CATEGORIES) defs.append(svg("marker", { id: "arrow-" + c.key, viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" }, [svg("path", { d: "M0,0 L8,4 L0,8 z", fill: c.color })]));
  root.append(defs);
  ids.forEach((id, i) => {
    if (i % 2 === 0) root.append(svg("rect", { x: LW, y: i * LH, width: W - LW - RW, height: LH, class: "lane" }));
    root.append(titled(text(0, laneY(id), short(id), "label"), id));
  });
  const step = STEPS.find((s) => minutes / s <= 6) || 240;
  for (let t = Math.ceil(t0 / (step * 60000)) * step * 60000; t <= now; t += step * 60000) {
    root.append(svg("line", { x1: x(t), x2: x(t), y1: 0, y2: H - AX, class: "grid" }));
    const label = step < 1 ? hhmmss(t) : hhmm(t);
    if (x(t) < W - RW - 44) root.append(text(x(t), H - AX / 2, label, "axis", { "text-anchor": "middle" }));
  }
  root.append(text(W - RW, H - AX / 2, "now", "axis", { "text-anchor": "end" }));
  root.append(svg("line", { x1: W - RW, x2: W - RW, y1: 0, y2: H - AX, class: "now" }));
  for (const o of origins) {
    if (!o.drain) continue;
    const end = o.drain.completedAt ? Date.parse(o.drain.completedAt) : now, y = laneY(o.id);
    const band = svg("rect", { x: x(Date.parse(o.drain.since)), y: y - 9, width: Math.max(2, x(end) - x(Date.parse(o.drain.since))), height: 18, rx: 3, fill: "#fdb022", "fill-opacity": 0.3 });
    root.append(titled(band, o.id + " draining since " + hhmm(Date.parse(o.drain.since))));
  }
  // Events of one kind, lane, target and moment (8 px) make one mark with a count.
  const marks = new Map();
  for (const e of events) {
    const t = Date.parse(e.at);
    if (t < t0) continue;
    const cat = categoryOf(e.event), to = /\u2192\s*(\S+)/.exec(e.detail || "");
    const moves = cat.key === "move" || cat.key === "migration";
    const target = moves && to && ids.includes(to[1]) && to[1] !== e.lane ? to[1] : null;
    const slot = e.lane + "|" + Math.round(x(t) / 8), k = [slot, e.event, target].join("|");
    const m = marks.get(k) || { e, t, cat, target, slot, n: 0, details: [] };
    m.n += 1;
    if (m.details.length < 8) m.details.push(hhmm(t) + " " + e.event + " " + e.oid + (e.detail ? ": " + e.detail : ""));
    marks.set(k, m);
  }
  // Marks that share a lane and a moment are fanned out side by side rather than drawn over each other.
  const slots = new Map();
  for (const m of marks.values()) slots.set(m.slot, (slots.get(m.slot) || []).concat([m]));
  for (const m of marks.values()) {
    const group = slots.get(m.slot), i = group.indexOf(m);
    const cx = Math.min(W - RW, x(m.t) + (i - (group.length - 1)) * 20), y = laneY(m.e.lane);
    const g = svg("g", { "data-event": m.e.event });
    if (m.target) {
      const ty = laneY(m.target), dir = ty > y ? 1 : -1;
      g.append(svg("line", { x1: cx, y1: y + dir * 6, x2: cx, y2: ty - dir * 3, stroke: m.cat.color, "stroke-width": 2, "marker-end": "url(#arrow-" + m.cat.key + ")" }));
    }
    g.append(svg("circle", { cx, cy: y, r: m.n > 1 ? 9 : 6, fill: m.cat.color, stroke: "#fff", "stroke-width": 1.5 }));
    if (m.n > 1) g.append(text(cx, y + 1, m.n > 99 ? "99+" : m.n, "count", { "text-anchor": "middle" }));
    root.append(titled(g, m.details.join("\n") + (m.n > m.details.length ? "\n\u2026" : "")));
  }
  if (!events.length) root.append(text(LW + 12, LH / 2, "no events yet", "empty"));
  const keys = document.createElement("div");
  keys.className = "keys";
  const seen = new Set([...marks.values()].map((m) => m.cat.key));
  for (const c of CATEGORIES) {
    if (!seen.has(c.key)) continue;
    const span = document.createElement("span"), sw = document.createElement("i");
    sw.className = "swatch";
    sw.style.setProperty("--c", c.color);
    span.append(sw, c.label);
    keys.append(span);
  }
  const window_ = document.createElement("span");
  window_.textContent = "last " + (minutes < 60 ? minutes + " min" : minutes / 60 + " h");
  keys.append(window_);
  el.replaceChildren(root, keys);
}
`;
