/**
 * `npm start`: the whole thing on your machine, offline.
 *
 * Three demo origins (origin/demo.ts) and the layer under `wrangler dev` on
 * 127.0.0.1:8787 (or PORT; 8787 falls back to a free port when taken), with a
 * development signing key and a random ADMIN_TOKEN generated for this run.
 * Ctrl-C (or SIGTERM) stops every process it started.
 *
 * `npm start -- --origin app=http://127.0.0.1:3000` (repeatable) puts your own
 * origins behind the layer instead of the demo ones: every session goes to them.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
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

/** `--origin id=url`, repeatable: the developer's own origins, in place of the demo ones. */
function ownOrigins(): { id: string; url: string }[] {
  const { values } = parseArgs({ options: { origin: { type: "string", multiple: true } }, allowPositionals: true });
  return (values.origin ?? []).map((spec) => {
    const [id = "", ...url] = spec.split("=");
    if (!id || !url.length) throw new Error(`--origin ${spec}: expected id=url, e.g. app=http://127.0.0.1:3000`);
    return { id, url: url.join("=") };
  });
}

const started: { stop(): Promise<void> }[] = [];
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await Promise.allSettled(started.reverse().map((p) => p.stop()));
  }
  process.exit(code);
}

process.on("SIGINT", () => void stopAll(130));
process.on("SIGTERM", () => void stopAll(143));
// Under `npm start` the parent is a shell that npm signals; a SIGTERM to npm kills that shell but never
// reaches this process, so treat being re-parented as the same request to stop.
const parentPid = process.ppid;
setInterval(() => process.ppid !== parentPid && void stopAll(143), 500).unref();

const prefixed = (name: string) => (line: string) => {
  if (!stopping) console.log(`[${name}] ${line}`);
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

async function main(): Promise<void> {
  const port = await layerPort();
  const base = `http://127.0.0.1:${port}`;
  // Known before the layer is up: the origins only fetch it when the first request arrives.
  const jwksUrl = `${base}${JWKS_PATH}`;

  const own = ownOrigins();
  const origins: DemoOrigin[] = [];
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
  const signingKeys: Record<string, string> = ownKey ? { SESSION_SIGNING_KEYS: await developmentKeySet() } : {};
  const originsVar = own.length
    ? own.map((o) => ({ ...o, region: "enam", weight: 1 }))
    : origins.map((o, i) => ({ id: o.id, url: o.url, region: ORIGINS[i]?.region, weight: 1 }));
  console.log("Starting wrangler dev…");
  const layer: WranglerDev = await startWranglerDev({
    port,
    // The project's usual local state (.wrangler/state), like `npm run dev`.
    persistTo: ".wrangler/state",
    vars: { ENVIRONMENT: "development", ORIGINS: JSON.stringify(originsVar), ADMIN_TOKEN: adminToken, ...signingKeys },
    onLine: prefixed("layer"),
  });
  started.push(layer);

  // If any of them dies, take the rest down rather than leave half a demo running.
  for (const proc of [...origins.map((o) => o.process), layer.process])
    void proc.exited.then(({ code, signal }) => {
      if (stopping) return;
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

 Operator status:
   curl -s -H 'Authorization: Bearer ${adminToken}' ${base}/__edge/status

 Notes:
   - ${
     ownKey
       ? "The signing key is a DEVELOPMENT key generated for this run: sessions last until Ctrl-C.\n     Never use such a key in production: set SESSION_SIGNING_KEYS (npm run --silent keygen)."
       : "SESSION_SIGNING_KEYS comes from your environment."
   }
   - The ADMIN_TOKEN above was generated for this run only.
   - Browsers that refuse the Secure cookie on http://127.0.0.1 get a new session on every load.
   - wrangler's warnings about missing secrets and "Unable to fetch the Request.cf object"
     are expected here.

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
