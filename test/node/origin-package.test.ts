/**
 * The origin package (packages/origin, `edge-session-origin`) against the real
 * layer under `wrangler dev`: one small application written for node:http,
 * Express, Hono and Fastify, each a real origin in the pool, reads, writes
 * (Unicode included), logs in and out, and reads a 50 KB session through the
 * layer's document endpoint. The same layer also serves a Python origin
 * (PyJWT, /usr/bin/python3) and an echo origin that shows what a raw HTTP/1.1
 * client's headers become by the time they reach an origin.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { type EdgeSession, edgeSession, sessionOf } from "edge-session-origin";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RecordedRequest, type RunningOrigin, startOrigin } from "../support/origin-server.ts";
import {
  freePort,
  type ManagedProcess,
  PROJECT_ROOT,
  spawnManaged,
  startWranglerDev,
  type WranglerDev,
} from "./support/wrangler-dev.ts";

const COOKIE = "__Host-edge-session";
const FRAMEWORKS = ["node-http", "express", "hono", "fastify"] as const;
type Framework = (typeof FRAMEWORKS)[number];

/** What every framework's /whoami answers: the session as the package shows it. */
function view(origin: string, s: EdgeSession) {
  return {
    origin,
    sid: s.sid,
    version: s.version,
    sub: s.sub ?? null,
    claims: s.claims ?? null,
    data: s.data,
    omitted: s.claimsOfHeader.data_omitted === true,
  };
}

type Patch = Record<string, unknown>;
type Login = { sub: string; claims?: Patch };

let layer: WranglerDev | undefined;
const closers: (() => Promise<unknown>)[] = [];
let echoOrigin: RunningOrigin;
let python: ManagedProcess | undefined;

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

async function readJson(req: IncomingMessage): Promise<Patch> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Patch;
}

/** The same application in each framework's own idiom. */
async function startFrameworks(layerUrl: string): Promise<Record<Framework, string>> {
  const edge = edgeSession({ layerUrl });
  // The same origin with the layer's document endpoint out of reach (a closed port): writes must refuse.
  const blind = edgeSession({
    layerUrl,
    fetch: (_url, init) => fetch("http://127.0.0.1:9/.well-known/edge-session/document", init),
  });

  // node:http
  const nodeServer = createServer(
    edge.handler(
      async (req, res, session) => {
        const send = (body: unknown) =>
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
        const route = `${req.method} ${req.url}`;
        if (route === "GET /whoami") return send(view("node-http", session));
        if (route === "POST /set") session.set(await readJson(req));
        else if (route === "POST /login") {
          const { sub, claims } = (await readJson(req)) as Login;
          session.login(sub, claims);
        } else if (route === "POST /logout") session.logout();
        return send({ ok: true });
      },
      { exempt: ["/healthz"] },
    ),
  );
  const blindServer = createServer(
    blind.handler(async (req, res, session) => {
      res.setHeader("x-served-by", "blind");
      if (req.method === "POST") session.set(await readJson(req));
      res.end(JSON.stringify({ origin: "blind", version: session.version }));
    }),
  );

  // Express
  const app = express();
  app.use(express.json());
  app.get("/healthz", (_req, res) => void res.json({ ok: true }));
  app.use(edge.express());
  app.get("/whoami", (req, res) => void res.json(view("express", req.edgeSession)));
  app.post("/set", (req, res) => {
    req.edgeSession.set(req.body as Patch);
    res.json({ ok: true });
  });
  app.post("/login", (req, res) => {
    const { sub, claims } = req.body as Login;
    req.edgeSession.login(sub, claims);
    res.json({ ok: true });
  });
  app.post("/logout", (req, res) => {
    req.edgeSession.logout();
    res.json({ ok: true });
  });
  app.use(edge.expressErrors());
  const expressServer = createServer(app);

  // Hono, served on Node by @hono/node-server
  const hono = new Hono();
  hono.use(edge.hono({ exempt: ["/healthz"] }));
  hono.get("/healthz", (c) => c.json({ ok: true }));
  hono.get("/whoami", (c) => c.json(view("hono", sessionOf(c))));
  hono.post("/set", async (c) => {
    sessionOf(c).set(await c.req.json());
    return c.json({ ok: true });
  });
  hono.post("/login", async (c) => {
    const { sub, claims } = (await c.req.json()) as Login;
    sessionOf(c).login(sub, claims);
    return c.json({ ok: true });
  });
  hono.post("/logout", (c) => {
    sessionOf(c).logout();
    return c.json({ ok: true });
  });
  const honoServer = serve({ fetch: hono.fetch, port: 0, hostname: "127.0.0.1" }) as Server;
  await new Promise<void>((resolve) => (honoServer.listening ? resolve() : honoServer.once("listening", resolve)));

  // Fastify
  const fastify = Fastify();
  await fastify.register(edge.fastify({ exempt: ["/healthz"] }));
  fastify.get("/healthz", async () => ({ ok: true }));
  fastify.get("/whoami", async (request) => view("fastify", sessionOf(request)));
  fastify.post("/set", async (request) => {
    sessionOf(request).set(request.body as Patch);
    return { ok: true };
  });
  fastify.post("/login", async (request) => {
    const { sub, claims } = request.body as Login;
    sessionOf(request).login(sub, claims);
    return { ok: true };
  });
  fastify.post("/logout", async (request) => {
    sessionOf(request).logout();
    return { ok: true };
  });
  const fastifyUrl = await fastify.listen({ port: 0, host: "127.0.0.1" });

  const urls = {
    "node-http": await listen(nodeServer),
    express: await listen(expressServer),
    hono: `http://127.0.0.1:${(honoServer.address() as AddressInfo).port}`,
    fastify: fastifyUrl,
  };
  blindUrl = await listen(blindServer);
  closers.push(
    () => close(nodeServer),
    () => close(blindServer),
    () => close(expressServer),
    () => close(honoServer),
    () => fastify.close(),
  );
  return urls;
}
let blindUrl = "";
let layerKey: CryptoKey;
let pythonDirect = "";
let scratch = "";

/** What an origin developer writes, once as CommonJS and once as ESM, in a project of its own. */
const SCRATCH_ORIGIN = (load: string) => `${load}
const edge = edgeSession({ layerUrl: process.env.LAYER_URL });
const id = process.env.ORIGIN_ID;
const server = createServer(edge.handler(async (req, res, session) => {
  if (req.method === "POST") { let body = ""; for await (const c of req) body += c; session.set(JSON.parse(body)); }
  res.setHeader("x-served-by", id);
  res.end(JSON.stringify({ origin: id, version: session.version, data: session.data }));
}));
server.listen(0, "127.0.0.1", () => console.log(\`listening \${id} http://127.0.0.1:\${server.address().port}\`));
`;

/**
 * The package as a user gets it: \`npm pack\`, installed from the tarball into a
 * scratch project outside the repository, then required (CommonJS) and
 * imported (ESM) by two origins.
 */
async function startScratchOrigins(layerUrl: string): Promise<{ id: string; url: string }[]> {
  scratch = mkdtempSync(join(tmpdir(), "edge-session-origin-scratch-"));
  const npm = (args: string[], cwd: string) =>
    execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  // dist/ is current (globalSetup); no prepack rebuild, which would empty it under the other test files' feet.
  npm(["pack", "--ignore-scripts", "--pack-destination", scratch], join(PROJECT_ROOT, "packages", "origin"));
  const tarball = readdirSync(scratch).find((f) => f.endsWith(".tgz")) ?? "";
  writeFileSync(join(scratch, "package.json"), '{ "name": "scratch", "private": true }\n');
  npm(["install", "--prefer-offline", "--no-audit", "--no-fund", join(scratch, tarball)], scratch);
  writeFileSync(
    join(scratch, "origin.cjs"),
    SCRATCH_ORIGIN(
      'const { createServer } = require("node:http");\nconst { edgeSession } = require("edge-session-origin");',
    ),
  );
  writeFileSync(
    join(scratch, "origin.mjs"),
    SCRATCH_ORIGIN('import { createServer } from "node:http";\nimport { edgeSession } from "edge-session-origin";'),
  );
  return Promise.all(
    [
      ["tarball-cjs", "origin.cjs"],
      ["tarball-esm", "origin.mjs"],
    ].map(async ([id = "", file = ""]) => {
      const proc = spawnManaged(id, process.execPath, [file], {
        cwd: scratch,
        env: { ...process.env, LAYER_URL: layerUrl, ORIGIN_ID: id },
      });
      closers.push(() => proc.stop());
      const [, , url = ""] = await proc.waitForLine(/^listening (\S+) (\S+)$/, 15_000);
      return { id, url };
    }),
  );
}
let frameworkUrls: Record<Framework, string>;

beforeAll(async () => {
  const port = await freePort();
  const layerUrl = `http://127.0.0.1:${port}`;
  const [urls, scratchOrigins] = await Promise.all([startFrameworks(layerUrl), startScratchOrigins(layerUrl)]);
  frameworkUrls = urls;
  echoOrigin = await startOrigin("echo");
  closers.push(() => echoOrigin.close());
  python = spawnManaged("python origin", "/usr/bin/python3", [
    `${PROJECT_ROOT}origin/python/edge_session_origin.py`,
    "--jwks",
    `${layerUrl}/.well-known/edge-session/jwks.json`,
    "--id",
    "python",
  ]);
  const [, , pythonUrl] = await python.waitForLine(/^listening (\S+) (\S+)$/, 15_000);
  const origins = [
    ...FRAMEWORKS.map((id) => ({ id, url: urls[id] })),
    { id: "blind", url: blindUrl },
    { id: "echo", url: echoOrigin.url },
    { id: "python", url: pythonUrl },
    ...scratchOrigins,
  ];
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  layerKey = privateKey;
  pythonDirect = pythonUrl;
  layer = await startWranglerDev({
    port,
    vars: {
      ENVIRONMENT: "development",
      ORIGINS: JSON.stringify(origins),
      SESSION_SIGNING_KEYS: JSON.stringify({
        keys: [{ ...(await exportJWK(privateKey)), kid: "pkg-1", alg: "EdDSA" }],
      }),
      ADMIN_TOKEN: randomBytes(24).toString("base64url"),
    },
  });
});

afterAll(async () => {
  await layer?.stop();
  await python?.stop();
  await Promise.all(closers.map((c) => c()));
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function edgeUrl(): string {
  if (!layer) throw new Error("wrangler dev did not start");
  return layer.url;
}

/** A client that keeps the affinity cookie by hand (Node's fetch has no jar), pinned to one origin. */
class Client {
  cookie: string | undefined;

  async send(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.cookie) headers.cookie = `${COOKIE}=${this.cookie}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${edgeUrl()}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair = "", ...attributes] = c.split(";");
      const [name, ...value] = pair.split("=");
      if (name?.trim() !== COOKIE) continue;
      this.cookie = attributes.some((a) => a.trim().toLowerCase() === "max-age=0") ? undefined : value.join("=");
    }
    return res;
  }

  async json(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.send(method, path, body);
    const text = await res.text();
    expect(res.status, text).toBe(200);
    return JSON.parse(text) as Record<string, unknown>;
  }

  /** A new session, on `origin`: new sessions are spread over the pool, so a few tries find it. */
  static async on(origin: string, path = "/whoami"): Promise<Client> {
    for (let attempt = 0; attempt < 80; attempt++) {
      const client = new Client();
      const res = await client.send("GET", path);
      const text = await res.text();
      let served = res.headers.get("x-served-by") ?? res.headers.get("x-origin");
      try {
        served ??= (JSON.parse(text) as { origin?: string }).origin ?? null;
      } catch {} // an HTML 404 from another origin
      if (served === origin) return client;
    }
    throw new Error(`no new session landed on ${origin} in 80 tries`);
  }
}

const UNICODE = "café — grüße € 😀 𝄞 日本";

describe("edge-session-origin behind wrangler dev", () => {
  it.each(FRAMEWORKS)(
    "%s: reads, writes Unicode, logs in and out, and reads and writes a 50 KB session",
    async (fw) => {
      const client = await Client.on(fw);
      expect(await client.json("GET", "/whoami")).toMatchObject({ origin: fw, version: 0, sub: null, data: {} });

      await client.json("POST", "/set", { note: UNICODE, cart: ["tea"] });
      expect(await client.json("GET", "/whoami")).toMatchObject({ version: 1, data: { note: UNICODE, cart: ["tea"] } });

      await client.json("POST", "/login", { sub: "ada", claims: { role: "admin", name: "Ada 👩‍💻" } });
      const loggedIn = await client.json("GET", "/whoami");
      expect(loggedIn).toMatchObject({ sub: "ada", claims: { role: "admin", name: "Ada 👩‍💻" }, version: 2 });

      // Past the forwarded header's bound: the package reads the document from the layer, and keeps writing.
      for (let i = 0; i < 9; i++)
        await client.json("POST", "/set", { [`part${i}`]: `${"😀".repeat(50)}${"x".repeat(5800)}` });
      const big = await client.json("GET", "/whoami");
      const data = big.data as Record<string, string>;
      expect(big.omitted).toBe(true);
      expect(JSON.stringify(data).length).toBeGreaterThan(50_000);
      expect(data.note).toBe(UNICODE);
      expect(data.part8?.startsWith("😀😀")).toBe(true);
      await client.json("POST", "/set", { cart: ["tea", "naïve 👍"], part0: null });
      const after = await client.json("GET", "/whoami");
      expect(after).toMatchObject({ sub: "ada", omitted: true, version: 12 });
      expect((after.data as Record<string, unknown>).cart).toEqual(["tea", "naïve 👍"]);
      expect(after.data).not.toHaveProperty("part0");

      // Logout clears the client's cookie; the session is gone on the layer (its next request is a new session).
      const cookie = client.cookie;
      await client.json("POST", "/logout");
      expect(client.cookie).toBeUndefined();
      const replayed = new Client();
      replayed.cookie = cookie;
      await (await replayed.send("GET", "/whoami")).body?.cancel();
      expect(replayed.cookie).toBeDefined();
      expect(replayed.cookie).not.toBe(cookie);
    },
  );

  it.each(FRAMEWORKS)("%s: a request without a valid header gets 401 JSON; the health path needs none", async (fw) => {
    // Straight at the origin, not through the layer: no header, or a made-up one.
    for (const headers of [{}, { "x-edge-session": "forged.header.value" }]) {
      const res = await fetch(`${frameworkUrls[fw]}/whoami`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code: "ERR_EDGE_SESSION_REQUIRED" } });
    }
    const health = await fetch(`${frameworkUrls[fw]}/healthz`, {
      headers: { "user-agent": "edge-session-health/0.1.0" },
    });
    expect(health.status).toBe(200);
  });

  it.each(["tarball-cjs", "tarball-esm"])(
    "%s: the packed package, installed in a project of its own, reads and writes a 50 KB session",
    async (id) => {
      const client = await Client.on(id, "/");
      expect(await client.json("POST", "/", { note: UNICODE })).toMatchObject({ origin: id, data: { note: UNICODE } });
      for (let i = 0; i < 9; i++) await client.json("POST", "/", { [`part${i}`]: "x".repeat(6000) });
      const big = await client.json("GET", "/");
      expect(big).toMatchObject({ origin: id, version: 10, data: { note: UNICODE } });
      expect(JSON.stringify(big.data).length).toBeGreaterThan(50_000);
    },
  );

  it("refuses to write a session it could not read, and the session stays as it was", async () => {
    const client = await Client.on("blind", "/");
    expect((await client.send("POST", "/", { seed: "x".repeat(5000) })).status).toBe(200);
    for (let i = 0; i < 2; i++) await client.send("POST", "/", { [`p${i}`]: "y".repeat(5000) });
    const before = await client.json("GET", "/");
    const refused = await client.send("POST", "/", { cart: ["small"] });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "ERR_DOCUMENT_UNAVAILABLE" } });
    expect(await client.json("GET", "/")).toEqual(before);
  });

  it("a Python origin (PyJWT) verifies the header, checks typ, writes Unicode, and reads a 50 KB session", async () => {
    const client = await Client.on("python", "/");
    await client.json("POST", "/", { note: UNICODE });
    const { claims } = (await client.json("GET", "/")) as { claims: Record<string, unknown> };
    expect(claims).toMatchObject({ ver: 1, data: { note: UNICODE }, iss: "edge-session", aud: "edge-session:origin" });
    // Straight at the Python origin: a header signed by the layer's own key is refused unless its typ is ours.
    const signed = (typ: string) =>
      new SignJWT({ sid: "s".repeat(24), ver: 0, oid: "python", reg: "enam", ep: 1, data: {} })
        .setProtectedHeader({ alg: "EdDSA", kid: "pkg-1", typ })
        .setIssuer("edge-session")
        .setAudience("edge-session:origin")
        .setIssuedAt()
        .setExpirationTime("2m")
        .sign(layerKey);
    const direct = async (typ: string) =>
      (await fetch(`${pythonDirect}/`, { headers: { "x-edge-session": await signed(typ) } })).status;
    expect(await direct("edge-session+jwt")).toBe(200);
    expect(await direct("JWT")).toBe(401);
    expect(await direct("edge-affinity+jwt")).toBe(401);
    // Past the header's bound, it reads the document from the layer's endpoint and keeps writing.
    for (let i = 0; i < 9; i++) await client.json("POST", "/", { [`part${i}`]: "x".repeat(6000) });
    const big = (await client.json("GET", "/")) as { claims: { ver: number; data_omitted: boolean; data: unknown } };
    expect(big.claims).toMatchObject({ ver: 10, data_omitted: true, data: { note: UNICODE } });
    expect(JSON.stringify(big.claims.data).length).toBeGreaterThan(50_000);
  });

  it("what a raw HTTP/1.1 client's headers become at the origin: Connection-nominated, underscored, client-address", async () => {
    const client = await Client.on("echo", "/");
    const { port } = new URL(edgeUrl());
    const request = [
      "GET /raw HTTP/1.1",
      `Host: 127.0.0.1:${port}`,
      `Cookie: ${COOKIE}=${client.cookie}`,
      "Connection: x-foo, close",
      "X-Foo: nominated",
      "X_Edge_Session: forged",
      "X-Forwarded_For: 10.6.6.6",
      "x_forwarded_host: evil.example",
      "X-Real-IP: 10.6.6.6",
      "True-Client-IP: 10.6.6.6",
      "X-Client-IP: 10.6.6.6",
      "CF-Connecting-IP: 10.7.7.7",
      "X-App: kept",
      "",
      "",
    ].join("\r\n");
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1", () => socket.end(request));
      const chunks: Buffer[] = [];
      socket.on("data", (c) => chunks.push(c));
      socket.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      socket.on("error", reject);
      socket.setTimeout(10_000, () => socket.destroy(new Error("no answer")));
    });
    const [head = "", ...rest] = raw.split("\r\n\r\n");
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const bodyText = rest.join("\r\n\r\n");
    // Chunked or not, the echo is one JSON object.
    const echo = JSON.parse(bodyText.slice(bodyText.indexOf("{"), bodyText.lastIndexOf("}") + 1)) as RecordedRequest;
    const h = echo.headers;
    expect(echo.origin).toBe("echo");
    expect(h["x-app"]).toBe("kept");
    expect(Object.keys(h).filter((n) => n.includes("_"))).toEqual([]);
    // workerd consumes the client's Connection header and never shows it to the Worker, so the layer cannot
    // know what it nominated: X-Foo arrives. docs/security.md says so; this pins that statement to the runtime.
    expect(h["x-foo"]).toBe("nominated");
    for (const name of ["true-client-ip", "x-client-ip", "cf-connecting-ip"]) expect(h[name]).toBeUndefined();
    // The origin gets one account of the client, the layer's, taken from CF-Connecting-IP. On Cloudflare the
    // edge sets that header; under wrangler dev the client's own passes through (docs/security.md).
    expect(JSON.stringify(h)).not.toContain("10.6.6.6");
    expect(h["x-real-ip"]).toBe("10.7.7.7");
    expect(h["x-forwarded-for"]).toBe("10.7.7.7");
    expect(h["x-forwarded-host"]).toBe(`127.0.0.1:${port}`);
  });
});
