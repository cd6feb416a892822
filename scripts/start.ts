/**
 * `npm start`: the whole thing on your machine, offline.
 *
 * Three demo origins (origin/demo.ts) and the layer under `wrangler dev` on
 * 127.0.0.1:8787 (or PORT; 8787 falls back to a free port when taken), with a
 * development signing key, a snapshot key and a random ADMIN_TOKEN generated
 * for this run and passed as secrets (an env file, not the command line).
 * Sessions live in a temporary directory deleted on exit, so a new run starts
 * empty; `npm start -- --keep-state` (or KEEP_STATE=1) keeps them in
 * .wrangler/state instead. Ctrl-C (or SIGTERM) stops every process it started.
 *
 * `npm start -- --origin app=http://127.0.0.1:3000` (repeatable) puts your own
 * origins behind the layer instead of the demo ones: every session goes to them.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
import { startMcpOrigin } from "../test/node/support/mcp-server.ts";
import {
  type DemoOrigin,
  freePort,
  JWKS_PATH,
  portIsFree,
  startDemoOrigin,
  startWranglerDev,
  type WranglerDev,
} from "../test/node/support/wrangler-dev.ts";

const ORIGINS = [
  { id: "origin-1", region: "weur" },
  { id: "origin-2", region: "enam" },
  { id: "origin-3", region: "apac" },
] as const;

const { values: flags } = parseArgs({
  options: {
    "keep-state": { type: "boolean" },
    mcp: { type: "boolean" },
    origin: { type: "string", multiple: true },
  },
});
const KEEP_STATE = flags["keep-state"] === true || process.env.KEEP_STATE === "1";
const KEPT_STATE_DIR = ".wrangler/state";

/** `--origin id=url`, repeatable: the developer's own origins, in place of the demo ones. */
function ownOrigins(): { id: string; url: string }[] {
  return (flags.origin ?? []).map((spec) => {
    const [id = "", ...url] = spec.split("=");
    if (!id || !url.length) throw new Error(`--origin ${spec}: expected id=url, e.g. app=http://127.0.0.1:3000`);
    return { id, url: url.join("=") };
  });
}

const started: { stop(): Promise<void> }[] = [];
let stopping: Promise<never> | undefined;

/** Idempotent: Ctrl-C reaches npm and this process both, and the second signal must not cut the cleanup short. */
function stopAll(code: number): Promise<never> {
  stopping ??= Promise.allSettled(started.reverse().map((p) => p.stop())).then(() => process.exit(code));
  return stopping;
}

process.on("SIGINT", () => void stopAll(130));
process.on("SIGTERM", () => void stopAll(143));
// Under `npm start` the parent is a shell that npm signals; a SIGTERM to npm kills that shell but never
// reaches this process, so treat being re-parented as the same request to stop.
const parentPid = process.ppid;
setInterval(() => process.ppid !== parentPid && void stopAll(143), 500).unref();

const prefixed = (name: string) => (line: string) => {
  if (stopping === undefined) console.log(`[${name}] ${line}`);
};

async function layerPort(): Promise<number> {
  if (process.env.PORT) {
    const port = Number(process.env.PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`PORT=${process.env.PORT} is not a port`);
    if (!(await portIsFree(port))) throw new Error(`PORT=${port} is in use on 127.0.0.1`);
    return port;
  }
  const port = await freePort(8787);
  if (port !== 8787) console.log(`Port 8787 is in use; the layer will listen on ${port}.`);
  return port;
}

/**
 * `npm start -- --mcp`: three stateful MCP servers (the official SDK's Streamable HTTP
 * transport, one session per process) behind the layer, with LEARNED_AFFINITY on
 * Mcp-Session-Id, for any MCP client pointed at <layer>/mcp.
 */
async function mainMcp(port: number, base: string): Promise<void> {
  const servers = await Promise.all(["mcp-1", "mcp-2", "mcp-3"].map(startMcpOrigin));
  for (const s of servers) started.push({ stop: () => s.close() });
  const adminToken = randomBytes(24).toString("base64url");
  const layer = await startWranglerDev({
    port,
    persistTo: ".wrangler/state",
    vars: {
      ENVIRONMENT: "development",
      ADMIN_TOKEN: adminToken,
      SESSION_SIGNING_KEYS: process.env.SESSION_SIGNING_KEYS ?? (await developmentKeySet()),
      LEARNED_AFFINITY: JSON.stringify([{ header: "Mcp-Session-Id", whenGone: "strict" }]),
      ORIGINS: JSON.stringify(
        servers.map((s) => ({ id: s.id, url: s.url, health: { path: "/health", interval: 2, fall: 1 } })),
      ),
    },
    onLine: prefixed("layer"),
  });
  started.push(layer);
  void layer.process.exited.then(() => !stopping && void stopAll(1));
  console.log(`
──────────────────────────────────────────────────────────────────────────────
 edge-session in front of three stateful MCP servers (ENVIRONMENT=development)

 MCP endpoint (Streamable HTTP): ${base}/mcp     tools: whoami, count, notify-later
 Servers: ${servers.map((s) => `${s.id} ${s.url}`).join("\n          ")}

 Each client session stays on the server that initialized it; its Mcp-Session-Id is
 sealed by the layer. Operator view: curl -s -H 'Authorization: Bearer ${adminToken}' ${base}/__edge/origins

 Ctrl-C stops everything.
──────────────────────────────────────────────────────────────────────────────
`);
}

async function main(): Promise<void> {
  const port = await layerPort();
  const base = `http://127.0.0.1:${port}`;
  if (flags.mcp) return mainMcp(port, base);
  // Known before the layer is up: the origins only fetch it when the first request arrives.
  const jwksUrl = `${base}${JWKS_PATH}`;

  const origins: DemoOrigin[] = [];
  const own = ownOrigins();
  for (const { id } of own.length ? [] : ORIGINS) {
    const origin = await startDemoOrigin(id, jwksUrl, { onLine: prefixed(id) });
    started.push(origin);
    origins.push(origin);
  }

  const adminToken = randomBytes(24).toString("base64url");
  // Left to itself, the Worker would generate a development key per isolate, i.e. a new one on every
  // reload after a source edit: every session would end and origins would refuse the unknown kid until
  // their JWKS cache refreshes. One key for the whole run avoids both. A key in the environment wins.
  const ownKey = !process.env.SESSION_SIGNING_KEYS;
  const signingKeys = process.env.SESSION_SIGNING_KEYS ?? (await developmentKeySet());
  const originsVar = own.length
    ? own.map((o) => ({ ...o, region: "enam", weight: 1 }))
    : origins.map((o, i) => ({ id: o.id, url: o.url, region: ORIGINS[i]?.region, weight: 1 }));
  console.log("Starting wrangler dev…");
  const layer: WranglerDev = await startWranglerDev({
    port,
    // Default: a temporary directory that stop() deletes, so one run's sessions never show up in the next.
    ...(KEEP_STATE ? { persistTo: KEPT_STATE_DIR } : {}),
    vars: { ENVIRONMENT: "development", ORIGINS: JSON.stringify(originsVar) },
    // Secrets as secrets: through an env file (mode 0600, deleted on exit), never on wrangler's command line.
    secrets: {
      SESSION_SIGNING_KEYS: signingKeys,
      SNAPSHOT_KEY: randomBytes(32).toString("base64"),
      ADMIN_TOKEN: adminToken,
    },
    onLine: prefixed("layer"),
  });
  started.push(layer);

  // If any of them dies, take the rest down rather than leave half a demo running.
  for (const proc of [...origins.map((o) => o.process), layer.process])
    void proc.exited.then(({ code, signal }) => {
      if (stopping !== undefined) return;
      console.error(`\n${proc.name} exited (${signal ?? `code ${code}`}); stopping everything.`);
      void stopAll(1);
    });

  const api = `-H "X-Edge-Session-Token: $TOKEN"`;
  console.log(`
──────────────────────────────────────────────────────────────────────────────
 edge-session is running (ENVIRONMENT=development)

 Open ${base}/ in a browser. Reload: you stay on one origin. Log in, add
 to the cart, log out. A private window gets another session (maybe another origin).

 Origins: ${originsVar.map((o) => `${o.id} ${o.url} (${o.region})`).join("\n          ")}
 JWKS:    ${jwksUrl}

 As an API client (no cookies; the token travels in X-Edge-Session-Token):
   TOKEN=$(curl -s -o /dev/null -D - -H 'X-Edge-Session-Token: new' ${base}/api/session \\
     | awk 'tolower($1)=="x-edge-session-token:" {print $2}' | tr -d '\\r')
   curl -s ${api} ${base}/api/session
   curl -s -i ${api} -d item=apple ${base}/cart
   curl -s ${api} ${base}/api/session        # ver 1, data.cart ["apple"]

 Operator dashboard: ${base}/__edge/   (sign in with the ADMIN_TOKEN below)
 Operator API:       curl -s -H 'Authorization: Bearer ${adminToken}' ${base}/__edge/status
 ADMIN_TOKEN:        ${adminToken}

 Notes:
   - ${
     ownKey
       ? "The signing key is a DEVELOPMENT key generated for this run: sessions last until Ctrl-C.\n     Never use such a key in production: set SESSION_SIGNING_KEYS (npm run --silent keygen)."
       : "SESSION_SIGNING_KEYS comes from your environment."
   }
   - The ADMIN_TOKEN above and the snapshot key were generated for this run only.
   - ${
     KEEP_STATE
       ? `State is KEPT in ${KEPT_STATE_DIR}: sessions, drains and events from earlier runs are still there.`
       : "State lives in a temporary directory deleted on exit: every run starts empty\n     (npm start -- --keep-state keeps it in .wrangler/state)."
   }
   - Browsers that refuse the Secure cookie on http://127.0.0.1 get a new session on every load.
   - wrangler's warning "Unable to fetch the Request.cf object" is expected offline.

 Ctrl-C stops everything.
──────────────────────────────────────────────────────────────────────────────
`);
}

async function developmentKeySet(): Promise<string> {
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const kid = `dev-start-${randomBytes(4).toString("hex")}`;
  return JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid, alg: "EdDSA" }] });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  void stopAll(1);
});
