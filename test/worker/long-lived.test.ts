/**
 * WebSockets and event streams through the layer: relayed on the session's
 * origin, counted per origin, and, when that origin drains, closed in batches
 * before the deadline with a reconnect hint; the reconnection lands on a
 * non-draining origin with the session intact. Real origins, real sockets.
 */
import { describe, expect, it } from "vitest";
import { openHere } from "../../src/connections/index.ts";
import { BASE, BrowserClient, callWorker, respondWith } from "./harness.ts";
import { admin, originsStatus, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { forwardedOf } from "./tokens.ts";

interface Socket {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string; at: number }>;
  say(text: string): Promise<string>;
}

async function openSocket(client: BrowserClient): Promise<Socket> {
  const res = await client.send("/ws", { headers: { upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket;
  if (!ws) throw new Error("no webSocket on the 101 response");
  ws.accept();
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason, at: Date.now() })),
  );
  const say = (text: string) =>
    new Promise<string>((resolve) => {
      ws.addEventListener("message", (e) => resolve(String(e.data)), { once: true });
      ws.send(text);
    });
  return { ws, closed, say };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A drain runs for seconds of real time: the closes are timed against its deadline.
const DRAIN_TEST_MS = 20_000;

describe("WebSockets as part of the session", () => {
  it("are relayed to the session's origin and counted per origin while open", async () => {
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins);
    const client = new BrowserClient(e);
    const home = (await client.echo()).echo.origin;
    const before = openHere()[home] ?? 0;
    const socket = await openSocket(client);
    expect(await socket.say("hello")).toBe(`${home}:hello`);
    expect(openHere()[home]).toBe(before + 1);
    const status = await until("the pool to count it", async () => {
      const o = (await originsStatus(e)).find((s) => s.id === home) as { connections?: { open: number } } | undefined;
      return o?.connections?.open === 1 ? o : undefined;
    });
    expect(status.connections?.open).toBe(1);
    socket.ws.close(1000, "bye");
    await socket.closed;
    await until("the close to be counted", async () => ((openHere()[home] ?? 0) === before ? true : undefined));
  });

  it(
    "a drain closes its origin's sockets with 1012 in batches before the deadline; they reconnect elsewhere, same session",
    async () => {
      const origins = await spawnOrigins(3);
      const e = poolEnv(origins);
      const clients = Array.from({ length: 9 }, () => new BrowserClient(e));
      const homes = await Promise.all(clients.map(async (c) => (await c.echo()).echo));
      const drained = homes[0]?.origin ?? "";
      const sockets = await Promise.all(clients.map(openSocket));
      const mine = clients.flatMap((c, i) => (homes[i]?.origin === drained ? [{ c, i, s: sockets[i] as Socket }] : []));
      const others = sockets.filter((_, i) => homes[i]?.origin !== drained);
      expect(mine.length).toBeGreaterThanOrEqual(2);

      const res = await admin(e, "POST", `/origins/${drained}/drain`, { in: 6 });
      const { deadline } = (await res.json()) as { deadline: string };
      const closes = await Promise.all(mine.map((m) => m.s.closed));
      for (const close of closes) {
        expect(close.code).toBe(1012);
        expect(close.at).toBeLessThan(Date.parse(deadline));
      }
      for (const s of others) expect(s.ws.readyState).toBe(WebSocket.READY_STATE_OPEN);

      for (const { c, i } of mine) {
        const again = await openSocket(c);
        const reply = await again.say("back");
        expect(reply.startsWith(`${drained}:`)).toBe(false);
        const { echo } = await c.echo();
        expect(echo.origin).not.toBe(drained);
        expect(forwardedOf(echo).sid).toBe(forwardedOf(homes[i] as never).sid);
        again.ws.close(1000);
      }
      const status = await until("the drain closes to be reported", async () => {
        const o = (await originsStatus(e)).find((s) => s.id === drained) as
          | { connections?: { drainClosed: number } }
          | undefined;
        return o?.connections?.drainClosed === mine.length ? o : undefined;
      });
      expect(status.connections?.drainClosed).toBe(mine.length);
      for (const s of others) s.ws.close(1000);
    },
    DRAIN_TEST_MS,
  );
});

describe("event streams as part of the session", () => {
  async function readEvents(res: Response, stopAfter: (text: string) => boolean): Promise<string> {
    const reader = res.body?.getReader();
    if (!reader) throw new Error("no body");
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return text;
      text += decoder.decode(value, { stream: true });
      if (stopAfter(text)) {
        await reader.cancel();
        return text;
      }
    }
  }

  it(
    "a drain ends the stream at an event boundary with a retry hint; the reconnection resumes on another origin",
    async () => {
      const origins = await spawnOrigins(2);
      const e = poolEnv(origins);
      const client = new BrowserClient(e);
      const first = (await client.echo()).echo;
      const home = first.origin;
      const res = await client.send("/events", { headers: { accept: "text/event-stream" } });
      expect(res.headers.get("content-type")).toBe("text/event-stream");
      await admin(e, "POST", `/origins/${home}/drain`, { in: 2 });
      const text = await readEvents(res, () => false);
      // Whole events, then the hint: nothing cut in the middle.
      expect(text).toMatch(/^(id: \d+\ndata: [\w-]+:\d+\n\n)+retry: \d+\n\n$/);
      const lastId = [...text.matchAll(/id: (\d+)/g)].at(-1)?.[1] ?? "0";
      expect(text).toContain(`data: ${home}:`);

      const again = await client.send("/events", { headers: { accept: "text/event-stream", "last-event-id": lastId } });
      const more = await readEvents(again, (t) => t.includes("\n\n"));
      expect(more).toMatch(
        new RegExp(`^id: ${Number(lastId) + 1}\\ndata: (?!${home})[\\w-]+:${Number(lastId) + 1}\\n`),
      );
      const { echo } = await client.echo();
      expect(echo.origin).not.toBe(home);
      expect(forwardedOf(echo).sid).toBe(forwardedOf(first).sid);
    },
    DRAIN_TEST_MS,
  );
});

describe("a long-lived connection that cannot move", () => {
  it(
    "a strict learned id's event stream stays until the drain deadline (it would only come back), then is gone",
    async () => {
      const origins = await spawnOrigins(2);
      const e = poolEnv(origins, { LEARNED_AFFINITY: '[{"header":"Mcp-Session-Id","whenGone":"strict"}]' });
      const issue = await callWorker(
        new Request(`${BASE}/mcp`, {
          method: "POST",
          headers: { "x-test-respond": respondWith({ headers: { "mcp-session-id": "held-1" } }) },
        }),
        e,
      );
      const home = ((await issue.json()) as { origin: string }).origin;
      const sealed = issue.headers.get("mcp-session-id") ?? "";
      const stream = await callWorker(
        new Request(`${BASE}/events`, { headers: { accept: "text/event-stream", "mcp-session-id": sealed } }),
        e,
      );
      expect(stream.headers.get("x-origin")).toBe(home);
      const res = await admin(e, "POST", `/origins/${home}/drain`, { in: 2 });
      const deadline = Date.parse(((await res.json()) as { deadline: string }).deadline);
      const reader = stream.body?.getReader();
      for (;;) {
        const { done } = (await reader?.read()) ?? { done: true };
        if (done) break;
      }
      expect(Date.now()).toBeGreaterThanOrEqual(deadline);
      const again = await callWorker(
        new Request(`${BASE}/events`, { headers: { accept: "text/event-stream", "mcp-session-id": sealed } }),
        e,
      );
      expect(again.status).toBe(404);
    },
    DRAIN_TEST_MS,
  );
});
