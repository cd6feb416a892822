import { CHARTS_JS } from "./client-charts.ts";
import { USERS_JS } from "./client-users.ts";

/**
 * The dashboard's script: polls /__edge/stats every 3 s (and /__edge/status
 * once), renders summary tiles, origin cards with Drain/Undrain, the charts and
 * the event list, all in place without reloading. Plain browser JavaScript in
 * a string, so the Worker serves it with no build step; it is exercised by
 * test/node/dashboard.test.ts in Chromium. It builds the DOM with textContent
 * and setAttribute only (no innerHTML), so ids and event details cannot inject
 * markup, and the page's CSP allows no inline script or style.
 */
// biome-ignore lint/complexity/noUselessStringRaw: browser source, raw so that a backslash means what it says there
const CORE_JS = String.raw`
const API = "/__edge/";
const REFRESH_MS = 3000;
const STALE_MS = 10000;
const $ = (id) => document.getElementById(id);
function h(tag, props, kids) {
  const el = document.createElement(tag);
  for (const k in props || {}) {
    if (k === "text") el.textContent = props[k];
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), props[k]);
    else if (props[k] !== undefined && props[k] !== null) el.setAttribute(k, String(props[k]));
  }
  for (const kid of kids || []) if (kid !== null && kid !== undefined) el.append(kid);
  return el;
}
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
function span(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 90 ? s + " s" : s < 5400 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
}
const plural = (n, one, many) => n + " " + (n === 1 ? one : many);

if (document.body.dataset.view === "signin") {
  // A link from another site arrives without the SameSite=Strict cookie. A same-origin
  // request does carry it: if the sign-in is still good, load the dashboard once.
  if (!sessionStorage.getItem("edge-recheck"))
    fetch(API + "status", { cache: "no-store" }).then((r) => {
      if (!r.ok) return;
      sessionStorage.setItem("edge-recheck", "1");
      location.replace(API);
    }, () => {});
  return;
}
sessionStorage.removeItem("edge-recheck");

let stats = null, status = null, lastOk = 0, timer = 0, rendered = false;
const cards = new Map();

async function getJson(path) {
  const res = await fetch(API + path, { cache: "no-store", headers: { accept: "application/json" } });
  if (res.status === 401) { location.replace(API); throw new Error("signed out"); }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error((body && body.error && body.error.message) || "HTTP " + res.status);
  return body;
}

function problem(message) {
  const el = $("problem");
  el.hidden = !message;
  el.textContent = message || "";
}

async function tick() {
  clearTimeout(timer);
  try {
    const [st, s] = await Promise.all([status ? status : getJson("status"), getJson("stats")]);
    status = st;
    stats = s;
    lastOk = Date.now();
    problem(null);
    render();
  } catch (e) {
    problem("Cannot refresh: " + e.message + ". Retrying every " + REFRESH_MS / 1000 + " s.");
  }
  live();
  if (!document.hidden) timer = setTimeout(tick, REFRESH_MS);
}

function live() {
  const el = $("live"), age = Date.now() - lastOk;
  el.dataset.state = !lastOk ? "connecting" : age > STALE_MS ? "stale" : "ok";
  $("updated").textContent = lastOk ? "live · updated " + clock(lastOk) + (age > STALE_MS ? " (" + span(age) + " ago)" : "") : "connecting…";
}

function stateOf(o, now) {
  if (o.health.state === "unhealthy") return "unhealthy";
  if (o.ejectedUntil && Date.parse(o.ejectedUntil) > now) return "ejected";
  if (o.drain) return o.drain.status === "complete" ? "drained" : "draining";
  return o.takesNewSessions ? "healthy" : "idle";
}
const STATE_COLOR = { healthy: "#15803d", unhealthy: "#d92d20", ejected: "#e8590c", draining: "#dc8a04", drained: "#98a2b3", idle: "#98a2b3" };

function render() {
  const now = Date.now();
  renderMeta();
  renderKpis(now);
  const ids = new Set(stats.origins.map((o) => o.id));
  for (const [id, c] of cards) if (!ids.has(id)) { c.root.remove(); cards.delete(id); }
  const list = $("origins");
  stats.origins.forEach((o, i) => {
    const c = cardFor(o);
    updateCard(c, o, now);
    if (list.children[i] !== c.root) list.insertBefore(c.root, list.children[i] || null);
  });
  renderCharts();
  renderEvents();
  if (!rendered) {
    rendered = true;
    document.body.dataset.ready = "1";
    performance.mark("edge-dashboard:first-render");
  }
}

function renderMeta() {
  if (!status) return;
  const k = status.keys;
  $("meta").textContent = "v" + status.version + " · " + status.environment + " · signing key " + k.signing + (k.generated ? " (generated: development only)" : "");
}

function renderKpis(now) {
  const o = stats.origins, total = o.reduce((n, x) => n + x.sessions, 0);
  const healthy = o.filter((x) => x.health.state === "healthy").length;
  const draining = o.filter((x) => x.drain && x.drain.status === "draining").length;
  const ejected = o.filter((x) => stateOf(x, now) === "ejected").length;
  const recent = stats.events.filter((e) => now - Date.parse(e.at) < 15 * 60000).length;
  const tile = (key, value, label, cls) => h("div", { class: "kpi " + (cls || ""), "data-kpi": key }, [h("b", { text: value }), h("span", { text: label })]);
  $("kpis").replaceChildren(
    tile("sessions", total, "live sessions"),
    tile("healthy", healthy + " / " + o.length, "origins healthy", healthy < o.length ? "bad" : ""),
    tile("draining", draining, "origins draining", draining ? "warn" : ""),
    tile("ejected", ejected, "origins ejected", ejected ? "bad" : ""),
    tile("events", recent, "events in the last 15 min"),
  );
}

function cardFor(o) {
  let c = cards.get(o.id);
  if (c) return c;
  c = {};
  c.pills = h("span", { class: "pills" });
  c.url = h("div", { class: "url" });
  c.count = h("b", { "data-field": "sessions" });
  c.conns = h("div", { class: "note", "data-field": "connections" });
  c.note = h("div", { class: "note", "data-field": "note" });
  c.bar = h("i");
  c.progress = h("div", { class: "progress", hidden: "" }, [c.bar]);
  c.seconds = h("input", { type: "number", min: 0, max: 2592000, value: 60, "aria-label": "drain deadline in seconds", title: "Seconds until its sessions move; empty: no deadline" });
  c.drainButton = h("button", { class: "warn", type: "submit", text: "Drain" });
  c.form = h("form", { onsubmit: (ev) => { ev.preventDefault(); drain(o.id, c); } }, [c.drainButton, h("span", { text: "in" }), c.seconds, h("span", { text: "s" })]);
  c.undrainButton = h("button", { class: "undo", type: "button", text: "Undrain", onclick: () => act(c, o.id, "undrain") });
  c.root = h("article", { class: "card", "data-origin": o.id }, [
    h("div", { class: "head" }, [h("span", { class: "id", text: o.id }), c.pills]),
    c.url,
    h("div", { class: "count" }, [c.count, h("small", { text: " live sessions" })]),
    c.conns, c.progress, c.note, c.form, c.undrainButton,
  ]);
  cards.set(o.id, c);
  return c;
}

function pill(cls, label) { return h("span", { class: "pill " + cls, "data-pill": cls, text: label }); }

function updateCard(c, o, now) {
  const state = stateOf(o, now);
  c.root.dataset.state = state;
  const pills = [o.health.state === "healthy" ? pill("healthy", "Healthy") : pill("unhealthy", "Unhealthy")];
  if (state === "ejected") pills.push(pill("ejected", "Ejected"));
  if (o.drain) pills.push(o.drain.status === "complete" ? pill("drained", "Drained") : pill("draining", "Draining"));
  else if (state === "idle") pills.push(pill("idle", "No new sessions"));
  c.pills.replaceChildren(...pills);
  c.url.textContent = o.url + " · " + (o.region ? "region " + o.region + " · " : "") + "weight " + o.weight;
  c.url.title = o.url;
  c.count.textContent = String(o.sessions);
  const k = o.connections || { open: 0, drainClosed: 0 };
  c.conns.textContent = plural(k.open, "open connection", "open connections") + " (WebSocket, SSE)" + (o.drain ? " · " + k.drainClosed + " closed by the drain" : "");
  c.note.textContent = noteFor(o, state, now);
  const d = o.drain, deadline = d && d.deadline ? Date.parse(d.deadline) : 0;
  c.progress.hidden = !(d && deadline && d.status === "draining");
  if (!c.progress.hidden) {
    const since = Date.parse(d.since);
    c.bar.style.width = Math.min(100, (100 * (now - since)) / Math.max(1, deadline - since)) + "%";
  }
  c.form.hidden = Boolean(d);
  c.undrainButton.hidden = !d;
}

function noteFor(o, state, now) {
  const d = o.drain, n = plural(o.sessions, "session", "sessions");
  if (d && d.status === "complete") return "Drained at " + clock(Date.parse(d.completedAt)) + ": no sessions left; takes no new ones.";
  if (d && d.deadline && Date.parse(d.deadline) > now) return "Draining: no new sessions; " + n + " move in " + span(Date.parse(d.deadline) - now) + " (" + clock(Date.parse(d.deadline)) + ").";
  if (d && d.deadline) return "Deadline passed: " + n + " move on their next request.";
  if (d) return "Draining, no deadline: " + n + " stay until they end.";
  if (state === "unhealthy") return "Unhealthy since " + clock(Date.parse(o.health.since)) + (o.health.lastError ? ": " + o.health.lastError : "");
  if (state === "ejected") return "Ejected by outlier detection until " + clock(Date.parse(o.ejectedUntil)) + ".";
  if (o.health.checked) return "Active health checks" + (o.health.lastCheckAt ? ", last at " + clock(Date.parse(o.health.lastCheckAt)) : "") + ".";
  return o.weight === 0 ? "Weight 0: takes no new sessions." : "Passive health only (no active checks configured).";
}

async function drain(id, c) {
  const raw = c.seconds.value.trim();
  await act(c, id, "drain", raw === "" ? {} : { in: Number(raw) });
}

async function act(c, id, what, body) {
  c.drainButton.disabled = c.undrainButton.disabled = true;
  try {
    const res = await fetch(API + "origins/" + encodeURIComponent(id) + "/" + what, {
      method: "POST",
      headers: Object.assign({ "x-edge-admin": "1" }, body ? { "content-type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401) return location.replace(API);
    if (!res.ok) {
      const b = await res.json().catch(() => null);
      problem(what + " " + id + " failed: " + ((b && b.error && b.error.message) || "HTTP " + res.status));
      return;
    }
    await tick();
  } catch (e) {
    problem(what + " " + id + " failed: " + e.message);
  } finally {
    c.drainButton.disabled = c.undrainButton.disabled = false;
  }
}

function renderCharts() {
  if (!stats) return;
  const now = Date.now();
  barChart($("chart-origins"), stats.origins.map((o) => ({ key: o.id, label: o.id, value: o.sessions, color: STATE_COLOR[stateOf(o, now)], note: o.region || "" })), "origins");
  const regions = stats.regions.slice().sort((a, b) => b.sessions - a.sessions);
  donutChart($("chart-regions"), regions.map((r) => ({ key: r.region, label: r.region + " · " + (REGION_NAMES[r.region] || "region"), value: r.sessions })), "regions");
  timelineChart($("timeline"), stats.events, stats.origins, now);
}

function renderEvents() {
  const items = stats.events.slice(-10).reverse().map((e) => {
    const sw = h("i", { class: "swatch" });
    sw.style.setProperty("--c", categoryOf(e.event).color);
    return h("li", { "data-event": e.event }, [
      h("time", { datetime: e.at, text: clock(Date.parse(e.at)) }), sw,
      h("span", { class: "ev", text: e.event.replace(/_/g, " ") }),
      h("span", { class: "oid", text: e.oid }),
      h("span", { class: "detail", text: e.detail || "", title: e.detail || "" }),
    ]);
  });
  if (!items.length) items.push(h("li", { class: "muted", text: "No events yet." }));
  $("events").replaceChildren(...items);
}

let resizeTimer = 0;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderCharts, 150); });
document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
setInterval(live, 1000);
$("signout").addEventListener("click", async () => {
  await fetch(API + "logout", { method: "POST", headers: { "x-edge-admin": "1" } }).catch(() => {});
  location.replace(API);
});
tick();
`;

/** One strict-mode function scope for all parts: the charts' constants first, the user panel after the core. */
export const DASHBOARD_JS = `(() => {\n"use strict";\n${CHARTS_JS}\n${CORE_JS}\n${USERS_JS}\n})();\n`;
