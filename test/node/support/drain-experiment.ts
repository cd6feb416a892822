/**
 * Draining an origin that holds many open WebSockets, through the real layer
 * under `wrangler dev`, with real `ws` clients that do what a well-behaved
 * client does: reconnect when closed with 1012, carrying their session token.
 * Shared by `npm run bench:drain` (200 sockets) and a bounded node test.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import type { WebSocket as WebSocketType } from "ws";
import { type RunningOrigin, startOrigin } from "../../support/origin-server.ts";
import { startWranglerDev, type WranglerDev } from "./wrangler-dev.ts";

// Through require: under vitest's module runner the ESM entry of `ws` resolves to its browser stub.
const { WebSocket } = createRequire(import.meta.url)("ws") as { WebSocket: typeof WebSocketType };

export interface DrainExperimentOptions {
  sockets: number;
  /** Seconds from the drain request to its deadline. */
  drainSeconds: number;
  log?: (line: string) => void;
}

export interface SocketOutcome {
  sid: string;
  firstOrigin: string;
  closeCode?: number;
  /** ms after the drain request. */
  closedAt?: number;
  reconnectedAt?: number;
  secondOrigin?: string;
  secondSid?: string;
}

export interface DrainExperimentResult {
  sockets: number;
  drainSeconds: number;
  drained: string;
  /** Sockets that were on the drained origin. */
  outcomes: SocketOutcome[];
  /** Closes per batch (closes within 250 ms of each other form one batch), in order. */
  batches: { at: number; closes: number }[];
  /** The most reconnections completed in any 1 s window. */
  peakReconnectsPerSecond: number;
  reconnectMs: { p50: number; p99: number; max: number };
  closedBeforeDeadline: number;
  movedWithSession: number;
  /** What the operator API reported once the drain had run. */
  reported: { drainClosed: number; openOnDrained: number; openElsewhere: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sidOf(token: string): string {
  const payload = token.split(".")[1] ?? "";
  return String((JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { sid?: string }).sid ?? "");
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

interface Open {
  ws: WebSocketType;
  origin: string;
  token: string;
}

/** Opens a socket (a new session when `token` is "new") and learns its origin from the echo. */
function openSocket(url: string, token: string): Promise<Open> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/ws`, { headers: { "x-edge-session-token": token } });
    let issued = token;
    ws.once("upgrade", (res) => {
      const t = res.headers["x-edge-session-token"];
      if (typeof t === "string" && t) issued = t;
    });
    ws.once("open", () => {
      ws.once("message", (data) => resolve({ ws, origin: String(data).split(":")[0] ?? "", token: issued }));
      ws.send("hello");
    });
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
}

export async function runDrainExperiment(o: DrainExperimentOptions): Promise<DrainExperimentResult> {
  const log = o.log ?? (() => {});
  const origins: RunningOrigin[] = await Promise.all(["ws-a", "ws-b", "ws-c"].map((id) => startOrigin(id)));
  const adminToken = randomBytes(24).toString("base64url");
  let layer: WranglerDev | undefined;
  const sockets: WebSocketType[] = [];
  try {
    layer = await startWranglerDev({
      vars: {
        ENVIRONMENT: "development",
        ADMIN_TOKEN: adminToken,
        POOL_CACHE_SECONDS: "1",
        // Nearly every new session on ws-a, so one drain holds all the sockets; ws-b and ws-c take the moves.
        ORIGINS: JSON.stringify(origins.map((s, i) => ({ id: s.id, url: s.url, weight: i === 0 ? 1000 : 1 }))),
        BOUNDED_LOAD_FACTOR: "100",
      },
    });
    const url = layer.url;
    const admin = async (path: string, body?: unknown) => {
      const res = await fetch(`${url}/__edge/${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<Record<string, unknown>>;
    };

    log(`opening ${o.sockets} WebSockets through ${url}`);
    const opened: Open[] = [];
    for (let i = 0; i < o.sockets; i += 20) {
      const chunk = await Promise.all(
        Array.from({ length: Math.min(20, o.sockets - i) }, () => openSocket(url, "new")),
      );
      opened.push(...chunk);
    }
    for (const s of opened) sockets.push(s.ws);
    const drained = origins[0]?.id ?? "";
    const mine = opened.filter((s) => s.origin === drained);
    log(`${mine.length} of ${opened.length} sockets on ${drained}; waiting for the pool to count them`);
    await sleep(2500);

    const t0 = Date.now();
    const drain = (await admin(`origins/${drained}/drain`, { in: o.drainSeconds })) as { deadline: string };
    const deadline = Date.parse(drain.deadline) - t0;
    log(`drain started; deadline in ${deadline} ms`);
    const outcomes: SocketOutcome[] = mine.map((s) => ({ sid: sidOf(s.token), firstOrigin: s.origin }));
    const done = mine.map(
      (s, i) =>
        new Promise<void>((resolve) => {
          const out = outcomes[i] as SocketOutcome;
          s.ws.once("close", (code) => {
            out.closeCode = code;
            out.closedAt = Date.now() - t0;
            if (code !== 1012) return resolve();
            // A well-behaved client reconnects at once with its token; the layer's batches are the pacing.
            openSocket(url, s.token)
              .then((again) => {
                sockets.push(again.ws);
                out.reconnectedAt = Date.now() - t0;
                out.secondOrigin = again.origin;
                out.secondSid = sidOf(again.token);
              })
              .catch((e: unknown) => log(`reconnect failed: ${String(e)}`))
              .finally(resolve);
          });
        }),
    );
    await Promise.race([Promise.all(done), sleep(deadline + 10_000)]);
    await sleep(2500); // one more report interval, so the operator API has every close

    const closes = outcomes.flatMap((x) => (x.closedAt === undefined ? [] : [x.closedAt])).sort((a, b) => a - b);
    const batches: { at: number; closes: number }[] = [];
    for (const at of closes) {
      const last = batches.at(-1);
      if (last && at - last.at <= 250) last.closes += 1;
      else batches.push({ at, closes: 1 });
    }
    const reconnects = outcomes.flatMap((x) => (x.reconnectedAt === undefined ? [] : [x.reconnectedAt]));
    let peak = 0;
    for (const at of reconnects) peak = Math.max(peak, reconnects.filter((r) => r >= at && r < at + 1000).length);
    const latencies = outcomes
      .flatMap((x) => (x.reconnectedAt !== undefined && x.closedAt !== undefined ? [x.reconnectedAt - x.closedAt] : []))
      .sort((a, b) => a - b);
    const pool = (await admin("origins")) as {
      origins: { id: string; connections: { open: number; drainClosed: number } }[];
    };
    const onDrained = pool.origins.find((x) => x.id === drained)?.connections;
    return {
      sockets: o.sockets,
      drainSeconds: o.drainSeconds,
      drained,
      outcomes,
      batches,
      peakReconnectsPerSecond: peak,
      reconnectMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1) ?? 0 },
      closedBeforeDeadline: outcomes.filter((x) => x.closeCode === 1012 && (x.closedAt ?? Infinity) < deadline).length,
      movedWithSession: outcomes.filter((x) => x.secondOrigin && x.secondOrigin !== drained && x.secondSid === x.sid)
        .length,
      reported: {
        drainClosed: onDrained?.drainClosed ?? 0,
        openOnDrained: onDrained?.open ?? 0,
        openElsewhere: pool.origins.filter((x) => x.id !== drained).reduce((n, x) => n + x.connections.open, 0),
      },
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await layer?.stop();
    await Promise.all(origins.map((s) => s.close()));
  }
}
