import { ASSETS } from "./assets.ts";

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function shell(view: string, title: string, body: string, withScript: boolean): string {
  const script = withScript ? `<script src="${ASSETS.js.path}" defer></script>` : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="${ASSETS.css.path}">${script}</head>
<body data-view="${view}">${body}</body></html>`;
}

/** The dashboard's frame; the script fills it from /__edge/stats and /__edge/status. */
export function dashboardPage(version: string): string {
  return shell(
    "dashboard",
    "edge-session · operator",
    `<header class="top"><div class="brand"><b>edge-session</b><span class="muted" id="meta">v${escapeHtml(version)}</span></div>
<div class="live" id="live" data-state="connecting"><span class="dot"></span><span id="updated">connecting…</span></div>
<button id="signout" class="ghost" type="button">Sign out</button></header>
<div id="problem" class="problem" role="alert" hidden></div>
<main>
<section class="kpis" id="kpis" aria-label="Summary"></section>
<section class="panel"><h2>Origins</h2><div id="origins" class="cards"></div></section>
<section class="row">
<div class="panel"><h2>Sessions per origin</h2><div id="chart-origins" class="chart"></div><p id="totals-note" class="note" data-field="totals-note" hidden></p></div>
<div class="panel"><h2>Sessions per region</h2><div id="chart-regions" class="chart"></div>
<div id="evacuate" class="evacuate" hidden><form id="evacuate-form"><label for="evacuate-region">Region</label> <select id="evacuate-region"></select> <button class="warn" type="submit">Evacuate…</button></form>
<div id="evacuate-confirm" class="confirm" hidden></div><p id="evacuate-result" class="note" role="status"></p></div></div>
</section>
<section class="panel"><h2>Timeline <span class="muted">re-pins, migrations, drains, ejections, health</span></h2>
<div id="timeline" class="chart"></div><ol id="events" class="events"></ol></section>
<section class="panel" id="users"><h2>A user's sessions <span class="muted">by the <code>sub</code> an origin logged in</span></h2>
<form id="user-form" class="user-form"><input id="user-sub" aria-label="user (sub)" placeholder="sub" maxlength="256" required>
<button type="submit" class="undo">Show sessions</button></form><div id="user-result"></div></section>
</main>`,
    true,
  );
}

/** Plain HTML form: signing in works without the script, which only spares a second sign-in after a cross-site link. */
export function signInPage(error?: string): string {
  const problem = error ? `<p class="problem" role="alert">${escapeHtml(error)}</p>` : "";
  return shell(
    "signin",
    "Sign in · edge-session",
    `<main class="signin"><form method="post" action="/__edge/login" class="panel">
<h1>edge-session</h1><p>Operator dashboard. Sign in with the admin token (<code>ADMIN_TOKEN</code>).</p>${problem}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus maxlength="512">
<button type="submit">Sign in</button>
<p class="muted small">You get a sign-in cookie for 8 hours. The token itself is not stored in the browser.</p>
</form></main>`,
    true,
  );
}

export function disabledPage(reason: string): string {
  return shell(
    "disabled",
    "edge-session",
    `<main class="signin"><div class="panel"><h1>edge-session</h1>
<p>The operator API and this dashboard are disabled: ${escapeHtml(reason)}.</p></div></main>`,
    false,
  );
}
