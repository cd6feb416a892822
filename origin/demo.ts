/**
 * A demo origin behind edge-session: plain node:http, no framework.
 *
 *   node origin/demo.ts --id origin-1 --port 0 \
 *     --jwks http://127.0.0.1:8787/.well-known/edge-session/jwks.json
 *
 * Flags win over the environment: ORIGIN_ID, PORT, HOST, EDGE_SESSION_JWKS_URL.
 * Prints `listening <id> <url>` once it accepts connections.
 *
 * It keeps no state of its own: who is logged in and what is in the cart come
 * from the signed X-Edge-Session header (or, for a document too large for it,
 * from the layer), and every change goes back to the layer as an
 * X-Edge-Session-* response header. All of that is the `edge-session-origin`
 * package (packages/origin); this file is only the application.
 *
 *   GET  /              HTML page: origin, session, login state, cart
 *   POST /login         form field `user`  → X-Edge-Session-Login, 303 to /
 *   POST /logout        → X-Edge-Session-Logout, 303 to /
 *   POST /cart          form field `item`  → X-Edge-Session-Set, 303 to /
 *   GET  /api/session   the verified claims as JSON (401 without a valid header)
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { type EdgeSession, EdgeSessionError, edgeSession } from "edge-session-origin";

const { values: flags } = parseArgs({
  options: { id: { type: "string" }, port: { type: "string" }, host: { type: "string" }, jwks: { type: "string" } },
});
const id = flags.id ?? process.env.ORIGIN_ID ?? "origin-1";
const port = Number(flags.port ?? process.env.PORT ?? 0);
const host = flags.host ?? process.env.HOST ?? "127.0.0.1";
const jwksUrl =
  flags.jwks ?? process.env.EDGE_SESSION_JWKS_URL ?? "http://127.0.0.1:8787/.well-known/edge-session/jwks.json";

const edge = edgeSession({
  jwksUrl,
  onError: (e) => console.warn(`${id}: refused X-Edge-Session: ${e instanceof Error ? e.message : String(e)}`),
});

const MAX_CART_ITEMS = 20;
const MAX_FORM_BYTES = 8 * 1024;

function cartOf(session: EdgeSession): string[] {
  const cart = session.dataAvailable ? session.data.cart : undefined;
  return Array.isArray(cart) ? cart.filter((item): item is string => typeof item === "string") : [];
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error("form too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

function page(session: EdgeSession): string {
  const cart = cartOf(session);
  const who = session.sub
    ? `yes, as <b>${escapeHtml(session.sub)}</b>
       <form method="post" action="/logout"><button>Log out</button></form>`
    : `no
       <form method="post" action="/login"><input name="user" placeholder="user name" required maxlength="64">
       <button>Log in</button></form>`;
  const items = cart.length ? cart.map((item) => `<li>${escapeHtml(item)}</li>`).join("") : "<li><i>empty</i></li>";
  return `<!doctype html>
<html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>edge-session demo · ${escapeHtml(id)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
dt{font-weight:600}form{display:inline}code{background:#f3f3f3;padding:0 .25em}</style>
<h1>Served by <code>${escapeHtml(id)}</code></h1>
<dl>
  <dt>Session</dt><dd><code>${escapeHtml(session.sid)}</code> (version ${session.version}, region ${escapeHtml(session.claimsOfHeader.reg)})</dd>
  <dt>Logged in</dt><dd>${who}</dd>
  <dt>Cart</dt><dd><ul>${items}</ul>
    <form method="post" action="/cart"><input name="item" placeholder="item" required maxlength="60">
    <button>Add</button></form></dd>
</dl>
<p>Reload as often as you like: this browser stays on <code>${escapeHtml(id)}</code>.
Logging in gives the session a new id. <a href="/api/session">/api/session</a> shows the verified header.</p>
</html>`;
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}) {
  // Per-session content: no shared cache may keep it.
  res.writeHead(status, { ...headers, "content-type": type, "cache-control": "no-store", "x-served-by": id });
  res.end(body);
}

/** 303 See Other: the browser follows with a GET, so a reload does not re-post the form. */
function redirectHome(res: ServerResponse) {
  res.writeHead(303, { location: "/", "cache-control": "no-store", "x-served-by": id }).end();
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://origin").pathname;
  const route = `${req.method} ${path}`;
  // Health probes carry no session; the layer sends `edge-session-health/<version>` (docs/origins.md).
  if (route === "GET /healthz") return send(res, 200, "application/json", '{"ok":true}');
  if (!["GET /", "GET /api/session", "POST /login", "POST /logout", "POST /cart"].includes(route))
    return send(res, 404, "text/plain", "not found\n");
  // Answers 401 itself when the request did not come through the layer with a valid header.
  const session = await edge.node(req, res);
  if (!session) return;

  if (route === "GET /api/session") return send(res, 200, "application/json", JSON.stringify(session, null, 2));
  if (route === "GET /") return send(res, 200, "text/html; charset=utf-8", page(session));
  if (route === "POST /logout") {
    session.logout();
    return redirectHome(res);
  }

  const form = await readForm(req);
  if (route === "POST /login") {
    const user = form.get("user")?.trim() ?? "";
    if (!user || user.length > 64) return send(res, 400, "text/plain", "user: 1-64 characters\n");
    // The layer rotates the session id on login, so a session id seen before login is useless afterwards.
    session.login(user, { loggedInBy: id });
    return redirectHome(res);
  }

  // POST /cart
  const item = form.get("item")?.trim() ?? "";
  if (!item || item.length > 60) return send(res, 400, "text/plain", "item: 1-60 characters\n");
  const cart = cartOf(session);
  if (cart.length >= MAX_CART_ITEMS) return send(res, 409, "text/plain", "the cart is full\n");
  // A merge patch replaces arrays whole, so this is the complete new cart. The package makes it conditional
  // on the version this request saw (another tab's add is not overwritten), and refuses to write at all
  // if it could not read the document.
  session.set({ cart: [...cart, item] });
  return redirectHome(res);
}

const server = createServer((req, res) => {
  res.on("finish", () => console.log(`${id} ${req.method} ${req.url} ${res.statusCode}`));
  handle(req, res).catch((e: unknown) => {
    console.error(`${id}: ${e instanceof Error ? e.message : String(e)}`);
    if (res.headersSent) res.destroy();
    else if (e instanceof EdgeSessionError) send(res, e.status, "application/json", JSON.stringify(e));
    else send(res, 400, "text/plain", "bad request\n");
  });
});

server.listen(port, host, () => {
  const { port: bound } = server.address() as AddressInfo;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  console.log(`listening ${id} http://${shownHost}:${bound}`);
});

for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
