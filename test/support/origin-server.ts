/**
 * A real origin for tests: a Node HTTP server on 127.0.0.1:0 that answers with
 * a JSON echo of what it received, records every request (so tests can count
 * receipts and read forwarded headers), and sends whatever response headers a
 * test asks for through `X-Test-Respond` (base64url JSON {status, headers, body}),
 * which is how tests make an origin emit X-Edge-Session-Set/-Login/-Logout.
 * `X-Test-Delay-Ms` (at most 5,000) holds the answer back, so that a request can
 * still be in flight when a test kills the origin.
 *
 * Control endpoints live under /__origin/ and are only reachable directly.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import type { WebSocketServer as WebSocketServerType } from "ws";

// Loaded through require: under vitest's module runner the ESM entry of `ws` resolves to its browser stub.
const { WebSocketServer } = createRequire(import.meta.url)("ws") as { WebSocketServer: typeof WebSocketServerType };

export interface RecordedRequest {
  origin: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface TestRespond {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer only after this long: a slow origin, for requests that race each other. */
  delayMs?: number;
}

export interface RunningOrigin {
  id: string;
  url: string;
  server: Server;
  /** Answer every request (not the control endpoints) with this status; undefined restores normal answers. */
  setFailStatus(status: number | undefined): void;
  /** Stop listening and drop every connection: the port refuses connections until start(). */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const RESPOND_HEADER = "x-test-respond";
const TAG_HEADER = "x-test-tag";
const DELAY_HEADER = "x-test-delay-ms";

export interface OriginOptions {
  /** Called with every request (not the control endpoints) as it is recorded, e.g. to count deliveries. */
  onRequest?: (entry: RecordedRequest) => void;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function decodeRespond(value: string | string[] | undefined): TestRespond | undefined {
  if (typeof value !== "string") return undefined;
  return JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as TestRespond;
}

function control(req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest[]): void {
  const url = new URL(req.url ?? "/", "http://origin");
  if (url.pathname === "/__origin/requests") {
    const tag = url.searchParams.get("tag");
    const list = tag ? recorded.filter((r) => r.headers[TAG_HEADER] === tag) : recorded;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(list));
    return;
  }
  res.writeHead(404).end();
}

export async function startOrigin(id: string, port = 0, options: OriginOptions = {}): Promise<RunningOrigin> {
  const recorded: RecordedRequest[] = [];
  let failStatus: number | undefined;
  const server = createServer(async (req, res) => {
    if (req.url?.startsWith("/__origin/")) return control(req, res, recorded);
    const body = await readBody(req);
    const entry: RecordedRequest = {
      origin: id,
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body,
    };
    recorded.push(entry);
    options.onRequest?.(entry);
    if (recorded.length > 5000) recorded.splice(0, recorded.length - 5000);
    if (failStatus !== undefined) {
      res
        .writeHead(failStatus, { "content-type": "text/plain", "x-origin": id })
        .end(`${id} failing with ${failStatus}`);
      return;
    }
    const respond = decodeRespond(req.headers[RESPOND_HEADER]);
    const delay = Math.min(Number(req.headers[DELAY_HEADER]) || 0, 5000);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (res.destroyed) return; // the origin was stopped meanwhile: the connection is gone
    if (req.url?.startsWith("/hang")) return; // never answers: for origin timeouts
    if (req.url?.startsWith("/events")) {
      // An event stream that goes on until the client leaves: an event every 100 ms, resuming after Last-Event-ID.
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-origin": id });
      let n = Number(req.headers["last-event-id"] ?? 0) || 0;
      const timer = setInterval(() => res.write(`id: ${++n}\ndata: ${id}:${n}\n\n`), 100);
      res.on("close", () => clearInterval(timer));
      return;
    }
    if (req.url?.startsWith("/stream")) {
      // Sends its body in three chunks with pauses, to show the layer streams.
      res.writeHead(200, { "content-type": "text/plain", "x-origin": id });
      for (const part of ["one\n", "two\n", "three\n"]) {
        res.write(part);
        await new Promise((r) => setTimeout(r, 50));
      }
      res.end();
      return;
    }
    if (respond?.delayMs) await new Promise((r) => setTimeout(r, respond.delayMs));
    res.writeHead(respond?.status ?? 200, {
      "content-type": "application/json",
      "x-origin": id,
      ...(respond?.headers ?? {}),
    });
    res.end(respond?.body ?? JSON.stringify(entry));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    recorded.push({ origin: id, method: "UPGRADE", url: req.url ?? "", headers: req.headers, body: "" });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data) => ws.send(`${id}:${data.toString()}`));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const { port: bound } = server.address() as AddressInfo;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return {
    id,
    url: `http://127.0.0.1:${bound}`,
    server,
    setFailStatus: (status) => {
      failStatus = status;
    },
    stop,
    start: () =>
      new Promise<void>((resolve, reject) => {
        if (server.listening) return resolve();
        server.once("error", reject);
        server.listen(bound, "127.0.0.1", () => {
          server.off("error", reject);
          resolve();
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
