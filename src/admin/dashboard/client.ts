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
// Human times: "2 min ago", "in 45 s"; the exact clock time is in the element's title.
const ago = (ms, now) => (now - ms < 5000 ? "just now" : span(now - ms) + " ago");
const inFuture = (ms, now) => (ms - now < 1000 ? "now" : "in " + span(ms - now));
const plural = (n, one, many) => n + " " + (n === 1 ? one : many);
// "1 session moves", "3 sessions move".
const sessionsThat = (n, verb, verbs) => plural(n, "session", "sessions") + " " + (n === 1 ? verbs : verb);

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

// The state comes from the server (src/admin/health.ts), derived once from checks, ejection, drain and faults.
const stateOf = (o) => o.status.state;
const STATE_COLOR = { healthy: "#15803d", down: "#d92d20", ejected: "#e8590c", draining: "#dc8a04", drained: "#98a2b3", idle: "#98a2b3" };
const STATE_LABEL = { healthy: "Healthy", down: "Down", ejected: "Ejected", draining: "Draining", drained: "Drained", idle: "No new sessions" };

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
  const o = stats.origins;
  // Every origin counts in exactly one tile: the tiles add up to the number of origins.
  const count = (...states) => o.filter((x) => states.includes(stateOf(x))).length;
  const healthy = count("healthy"), down = count("down"), ejected = count("ejected");
  const drained = count("draining", "drained"), idle = count("idle");
  const recent = stats.events.filter((e) => now - Date.parse(e.at) < 15 * 60000).length;
  const tile = (key, value, label, cls) => h("div", { class: "kpi " + (cls || ""), "data-kpi": key }, [h("b", { text: value }), h("span", { text: label })]);
  $("kpis").replaceChildren(
    tile("sessions", stats.totals.sessions, "live sessions"),
    tile("healthy", healthy + " / " + o.length, "origins healthy", healthy < o.length ? "bad" : ""),
    tile("down", down, "origins down", down ? "bad" : ""),
    tile("ejected", ejected, "origins ejected", ejected ? "bad" : ""),
    tile("drained", drained, "origins draining or drained", drained ? "warn" : ""),
    ...(idle ? [tile("idle", idle, "origins at weight 0")] : []),
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
  // Draining moves live sessions: the button asks first, and the change happens on "Confirm drain".
  c.form = h("form", { onsubmit: (ev) => { ev.preventDefault(); askDrain(o.id, c); } }, [c.drainButton, h("span", { text: "in" }), c.seconds, h("span", { text: "s" })]);
  c.confirm = h("div", { class: "confirm", hidden: "" });
  c.undrainButton = h("button", { class: "undo", type: "button", text: "Undrain", onclick: () => act(c, o.id, "undrain") });
  c.errors = h("ol", { class: "probe-errors", "data-field": "probe-errors", hidden: "" });
  c.root = h("article", { class: "card", "data-origin": o.id }, [
    h("div", { class: "head" }, [h("span", { class: "id", text: o.id }), c.pills]),
    c.url,
    h("div", { class: "count" }, [c.count, h("small", { text: " live sessions" })]),
    c.conns, c.progress, c.note, c.errors, c.form, c.confirm, c.undrainButton,
  ]);
  cards.set(o.id, c);
  return c;
}

function pill(cls, label) { return h("span", { class: "pill " + cls, "data-pill": cls, text: label }); }

function updateCard(c, o, now) {
  const state = stateOf(o);
  c.root.dataset.state = state;
  c.root.title = o.status.reason;
  // One pill per condition that holds, worst first; "Healthy" only when nothing else does.
  c.pills.replaceChildren(...o.status.conditions.map((s) => pill(s, STATE_LABEL[s] || s)));
  const errors = o.health.recentErrors.slice().reverse();
  c.errors.hidden = !errors.length;
  c.errors.replaceChildren(...(errors.length ? [h("li", { class: "muted", text: "Recent probe errors" })] : []), ...errors.map((e) =>
    h("li", { "data-probe-error": "" }, [h("time", { datetime: e.at, title: clock(Date.parse(e.at)), text: ago(Date.parse(e.at), now) }), h("span", { text: " " + e.error })])));
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
  c.form.hidden = Boolean(d) || !c.confirm.hidden;
  c.undrainButton.hidden = !d;
}

function noteFor(o, state, now) {
  const d = o.drain, n = o.sessions;
  const upper = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  if (state === "down") return upper(o.status.reason) + (o.health.state === "unhealthy" ? ", since " + ago(Date.parse(o.health.since), now) : "") + ".";
  if (state === "ejected") return upper(o.status.reason) + "; back " + inFuture(Date.parse(o.ejectedUntil), now) + ".";
  if (d && d.status === "complete") return "Drained " + ago(Date.parse(d.completedAt), now) + ": no sessions left; takes no new ones.";
  if (d && d.deadline && Date.parse(d.deadline) > now) return "Draining: no new sessions; " + sessionsThat(n, "move", "moves") + " " + inFuture(Date.parse(d.deadline), now) + " (" + clock(Date.parse(d.deadline)) + ").";
  if (d && d.deadline) return "Deadline passed: " + sessionsThat(n, "move", "moves") + " on their next request.";
  if (d) return "Draining, no deadline: " + sessionsThat(n, "stay", "stays") + " until they end.";
  if (state === "idle") return "Weight 0: takes no new sessions.";
  if (o.health.checked) return upper(o.status.reason) + (o.health.lastCheckAt ? "; last probe " + ago(Date.parse(o.health.lastCheckAt), now) : "") + ".";
  return upper(o.status.reason) + ".";
}

/** A confirmation step in place of the form: what will happen, then Confirm or Cancel. */
function confirmStep(box, message, label, onConfirm, onClose) {
  const close = () => { box.hidden = true; box.replaceChildren(); if (onClose) onClose(); };
  const yes = h("button", { class: "warn", type: "button", text: label, onclick: async () => { yes.disabled = true; await onConfirm(); close(); } });
  box.replaceChildren(h("p", { text: message }), h("div", { class: "actions" }, [yes, h("button", { class: "undo", type: "button", text: "Cancel", onclick: close })]));
  box.hidden = false;
  yes.focus();
}

function askDrain(id, c) {
  const raw = c.seconds.value.trim();
  const o = stats.origins.find((x) => x.id === id), n = plural(o ? o.sessions : 0, "session", "sessions");
  const when = raw === "" ? "stay until they end" : Number(raw) === 0 ? "move on their next request" : "move in " + span(Number(raw) * 1000);
  c.form.hidden = true;
  confirmStep(c.confirm, "Drain " + id + "? It takes no new sessions from now; its " + n + " " + when + ".", "Confirm drain",
    () => act(c, id, "drain", raw === "" ? {} : { in: Number(raw) }), () => render());
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
  barChart($("chart-origins"), stats.origins.map((o) => ({ key: o.id, label: o.id, value: o.sessions, color: STATE_COLOR[stateOf(o)], note: o.region || "" })), "origins");
  const t = stats.totals, unlisted = t.unlisted.map((u) => u.id + " (" + u.sessions + ")").join(", ");
  $("totals-note").hidden = !t.unlisted.length;
  $("totals-note").textContent = t.unlisted.length
    ? plural(t.sessions - t.onListedOrigins, "session is", "sessions are") + " still pinned to origins no longer in ORIGINS: " + unlisted +
      ". They count in their region (" + t.byRegion + " in all) but on no origin above (" + t.onListedOrigins + "), and move on their next request."
    : "";
  const regions = stats.regions.slice().sort((a, b) => b.sessions - a.sessions);
  donutChart($("chart-regions"), regions.map((r) => ({ key: r.region, label: r.region + " · " + (REGION_NAMES[r.region] || "region"), value: r.sessions })), "regions");
  renderEvacuate(regions);
  // Lanes for configured origins only: fault targets and pool-wide events are in the list below, not on a lane.
  timelineChart($("timeline"), stats.events.filter((e) => e.lane), stats.origins, now);
}

let evacuating = false;
function renderEvacuate(regions) {
  const box = $("evacuate");
  if (evacuating || !$("evacuate-confirm").hidden) return;
  const select = $("evacuate-region"), keep = select.value;
  select.replaceChildren(...regions.map((r) => h("option", { value: r.region, text: r.region + " (" + plural(r.sessions, "session", "sessions") + ")" })));
  if (regions.some((r) => r.region === keep)) select.value = keep;
  box.hidden = !regions.length;
}

function askEvacuate() {
  const region = $("evacuate-region").value;
  const r = stats.regions.find((x) => x.region === region);
  if (!r) return;
  $("evacuate-form").hidden = true;
  confirmStep($("evacuate-confirm"), "Evacuate " + region + "? Its " + plural(r.sessions, "session", "sessions") + " migrate to another region now, one by one.",
    "Confirm evacuation", () => evacuate(region), () => { $("evacuate-form").hidden = false; render(); });
}

async function evacuate(region) {
  evacuating = true;
  const out = $("evacuate-result");
  out.textContent = "Evacuating " + region + "…";
  try {
    const res = await fetch(API + "regions/" + encodeURIComponent(region) + "/evacuate", { method: "POST", headers: { "x-edge-admin": "1" } });
    if (res.status === 401) return location.replace(API);
    const text = await res.text();
    if (!res.ok) {
      let b = null;
      try { b = JSON.parse(text); } catch {}
      out.textContent = "Evacuating " + region + " failed: " + ((b && b.error && b.error.message) || "HTTP " + res.status);
      return;
    }
    const lines = text.trim().split("\n").map((l) => JSON.parse(l));
    const done = lines[lines.length - 1] || {};
    out.dataset.done = done.done ? "1" : "0";
    out.textContent = (done.done ? "Evacuated " : "Evacuation stopped: ") + region + ": " + done.migrated + " migrated, " + done.skipped + " skipped, " + done.failed + " failed" + (done.error ? " (" + done.error + ")" : "") + ".";
  } catch (e) {
    out.textContent = "Evacuating " + region + " failed: " + e.message;
  } finally {
    evacuating = false;
    await tick();
  }
}

function renderEvents() {
  const now = Date.now();
  const items = stats.events.slice(-10).reverse().map((e) => {
    const sw = h("i", { class: "swatch" });
    sw.style.setProperty("--c", categoryOf(e.event).color);
    return h("li", { "data-event": e.event }, [
      h("time", { datetime: e.at, title: clock(Date.parse(e.at)), text: ago(Date.parse(e.at), now) }), sw,
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
$("evacuate-form").addEventListener("submit", (ev) => { ev.preventDefault(); askEvacuate(); });
$("signout").addEventListener("click", async () => {
  await fetch(API + "logout", { method: "POST", headers: { "x-edge-admin": "1" } }).catch(() => {});
  location.replace(API);
});
tick();
`;

/** One strict-mode function scope for all parts: the charts' constants first, the user panel after the core. */
export const DASHBOARD_JS = `(() => {\n"use strict";\n${CHARTS_JS}\n${CORE_JS}\n${USERS_JS}\n})();\n`;
