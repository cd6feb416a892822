/**
 * The dashboard's per-user panel: look a user up by `sub`, see their sessions
 * (GET /__edge/users/:sub/sessions), and revoke them all after a confirmation.
 * Plain browser JavaScript in a string (see client.ts); it runs in the same
 * function scope, after the core script, whose helpers it uses.
 */
export const USERS_JS = String.raw`
async function showUser(sub) {
  const out = $("user-result");
  if (!sub) return out.replaceChildren();
  try {
    const body = await getJson("users/" + encodeURIComponent(sub) + "/sessions");
    renderUser(sub, body.sessions);
  } catch (e) {
    out.replaceChildren(h("p", { class: "muted", text: "Cannot list the sessions of " + sub + ": " + e.message }));
  }
}

function renderUser(sub, sessions) {
  const rows = sessions.map((s) => h("li", { "data-sid": s.sid, "data-status": s.status }, [
    h("code", { text: s.sid.slice(0, 10) + "\u2026", title: s.sid }),
    h("span", { class: "ev", text: s.status }),
    h("span", { text: s.region + " \u00b7 epoch " + s.epoch + " \u00b7 " + s.origin }),
    h("span", { class: "muted", text: "since " + clock(Date.parse(s.createdAt)) + (s.lastSeen ? ", seen " + clock(Date.parse(s.lastSeen)) : "") }),
  ]));
  const revoke = h("button", { class: "warn", type: "button", text: "Revoke all", onclick: () => revokeAll(sub, sessions.length, revoke) });
  revoke.hidden = !sessions.length;
  $("user-result").replaceChildren(
    h("p", { "data-field": "user-count", text: plural(sessions.length, "live session", "live sessions") + " of " + sub }),
    h("ol", { class: "events user-sessions" }, rows),
    revoke,
  );
}

async function revokeAll(sub, n, button) {
  if (!confirm("End all " + plural(n, "session", "sessions") + " of " + sub + "? They are logged out everywhere.")) return;
  button.disabled = true;
  try {
    const res = await fetch(API + "users/" + encodeURIComponent(sub) + "/sessions", { method: "DELETE", headers: { "x-edge-admin": "1" } });
    if (res.status === 401) return location.replace(API);
    const b = await res.json().catch(() => null);
    if (!res.ok) return problem("Revoking the sessions of " + sub + " failed: " + ((b && b.error && b.error.message) || "HTTP " + res.status));
    problem(b.pending ? b.pending + " of them could not be reached: their revocation is recorded and retried until they answer." : null);
    await showUser(sub);
    tick();
  } catch (e) {
    problem("Revoking the sessions of " + sub + " failed: " + e.message);
  } finally {
    button.disabled = false;
  }
}

$("user-form").addEventListener("submit", (ev) => { ev.preventDefault(); showUser($("user-sub").value.trim()); });
`;
