/**
 * The system under test, for the chaos run: three real origins
 * (test/support/origin-server.ts) and the real Worker, bundled as a deploy
 * bundles it (`wrangler deploy --dry-run`) and served by workerd through the
 * Miniflare API, with the Durable Objects, KV and vars of wrangler.toml (as
 * `wrangler dev` would give them), in development mode so that faults can be
 * injected and clients can pretend to be in a region (X-Edge-Dev-Region).
 *
 * Not `wrangler dev`: its dev proxy serialises requests and caps throughput,
 * which would hide races. POOL_CACHE_SECONDS is left at its default (3 s): the
 * delay with which isolates see faults and drains is part of what is measured.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { type RecordedRequest, type RunningOrigin, startOrigin } from "../support/origin-server.ts";

const PROJECT_ROOT = new URL("../../", import.meta.url).pathname;

export interface ChaosEdge {
  url: string;
  adminToken: string;
  origins: RunningOrigin[];
  /** Warnings and errors the Worker logged, by event (and code). */
  logs: Map<string, number>;
  /** The operator API: status, parsed JSON (or text), and headers. */
  admin(path: string, init?: { method?: string; body?: unknown }): Promise<AdminAnswer>;
  stop(): Promise<void>;
}

export interface AdminAnswer {
  status: number;
  body: unknown;
  text: string;
  headers: Headers;
  ms: number;
}

export interface EdgeOptions {
  /** Laid over the chaos defaults. */
  vars?: Record<string, string>;
  /** Every request an origin receives (for counting deliveries). */
  onOriginRequest?: (entry: RecordedRequest) => void;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(" ")}: ${code}\n${out}`))));
  });
}

/** The Worker exactly as `wrangler deploy` would upload it. */
async function bundleWorker(): Promise<string> {
  const outdir = await mkdtemp(join(tmpdir(), "edge-session-chaos-"));
  try {
    const wrangler = join(PROJECT_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
    await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outdir]);
    const script = (await readdir(outdir)).find((f) => f.endsWith(".js"));
    if (!script) throw new Error(`wrangler wrote no bundle to ${outdir}`);
    return await readFile(join(outdir, script), "utf8");
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

/** Bindings, compatibility settings and vars of wrangler.toml, as `wrangler dev` gives them to Miniflare. */
async function wranglerOptions(): Promise<Record<string, unknown>> {
  process.env.WRANGLER_LOG ??= "error";
  const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(PROJECT_ROOT, "wrangler.toml"));
  const { modulesRules: _rules, ...options } = workerOptions;
  return options as Record<string, unknown>;
}

/** One key per kind of log line: JSON lines by event and code. */
function logKey(message: string): string {
  const line = message.trim();
  try {
    const { event, code, message } = JSON.parse(line) as { event?: string; code?: string; message?: string };
    // A crash's message is what tells one crash from another.
    const why = event === "request_crashed" && message ? `: ${message.slice(0, 80)}` : "";
    if (event) return `${event}${code ? ` ${code}` : ""}${why}`;
  } catch {
    // not a JSON log line
  }
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}

export async function startChaosEdge(options: EdgeOptions = {}): Promise<ChaosEdge> {
  const ids = ["origin-a", "origin-b", "origin-c"];
  const origins = await Promise.all(
    ids.map((id) => startOrigin(id, 0, options.onOriginRequest ? { onRequest: options.onOriginRequest } : {})),
  );
  const adminToken = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url");
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const signingKeys = { keys: [{ ...(await exportJWK(privateKey)), kid: "chaos-ed-1", alg: "EdDSA" }] };
  const [script, fromConfig] = await Promise.all([bundleWorker(), wranglerOptions()]);
  const logs = new Map<string, number>();
  const miniflare = new Miniflare(
    convertV4MiniflareOptions({
      ...fromConfig,
      host: "127.0.0.1",
      port: 0,
      cf: false,
      handleStructuredLogs: ({ level, message }: { level: string; message: string }) => {
        if (level !== "warn" && level !== "error" && !/Uncaught|exception/.test(message)) return;
        const key = logKey(message);
        logs.set(key, (logs.get(key) ?? 0) + 1);
      },
      name: "edge-session",
      modules: true,
      script,
      bindings: {
        ...(fromConfig.bindings as Record<string, string> | undefined),
        ENVIRONMENT: "development",
        ORIGINS: JSON.stringify(origins.map((o) => ({ id: o.id, url: o.url }))),
        SESSION_SIGNING_KEYS: JSON.stringify(signingKeys),
        ADMIN_TOKEN: adminToken,
        SNAPSHOT_KEY: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64"),
        // Automatic migration within the run's few seconds: 3 requests from another region over 1 s.
        MIGRATE_AFTER_REQUESTS: "3",
        MIGRATE_AFTER_SECONDS: "1",
        ...options.vars,
      },
      unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    }),
  );
  const stopOrigins = () => Promise.all(origins.map((o) => o.close()));
  let url: string;
  try {
    await miniflare.ready;
    url = (await miniflare.unsafeGetDirectURL("edge-session")).href.replace(/\/$/, "");
    const res = await fetch(`${url}/.well-known/edge-session/jwks.json`);
    if (res.status !== 200) throw new Error(`edge-session did not start cleanly (${res.status}): ${await res.text()}`);
  } catch (e) {
    await miniflare.dispose().catch(() => {});
    await stopOrigins();
    throw e;
  }

  async function admin(path: string, init: { method?: string; body?: unknown } = {}): Promise<AdminAnswer> {
    const started = performance.now();
    const res = await fetch(`${url}/__edge/${path}`, {
      method: init.method ?? "GET",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // NDJSON (evacuation) or plain text: kept as text
    }
    return { status: res.status, body, text, headers: res.headers, ms: performance.now() - started };
  }

  return {
    url,
    adminToken,
    origins,
    logs,
    admin,
    stop: async () => {
      await miniflare.dispose().catch(() => {});
      await stopOrigins();
    },
  };
}
