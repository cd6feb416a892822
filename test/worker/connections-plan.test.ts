/** The drain schedule for long-lived connections, as pure functions: batches, before the deadline, no stampede. */
import { describe, expect, it } from "vitest";
import {
  atEventBoundary,
  batchCount,
  drainCloseAt,
  isEventStream,
  longLivedRequest,
  MAX_BATCHES,
} from "../../src/connections/index.ts";

const since = 1_000_000;

function schedule(windowMs: number, n: number, now = since) {
  const drain = { since, deadline: since + windowMs };
  return Array.from({ length: n }, (_, i) => drainCloseAt(drain, (i + 0.5) / n, now, 1000) ?? Number.NaN);
}

describe("drain schedule", () => {
  it("200 connections over a 30 s drain close in 20 batches, the last 6 s before the deadline", () => {
    const at = schedule(30_000, 200);
    const batches = new Map<number, number>();
    for (const t of at) batches.set(t, (batches.get(t) ?? 0) + 1);
    expect(batches.size).toBe(20);
    expect(Math.max(...batches.values())).toBe(10);
    expect(Math.min(...at)).toBeGreaterThan(since);
    expect(Math.max(...at)).toBe(since + 24_000);
  });

  it("short drains get fewer batches at least a second apart; long ones at most MAX_BATCHES", () => {
    expect(batchCount(4000)).toBe(3);
    expect(batchCount(500)).toBe(1);
    expect(batchCount(3_600_000)).toBe(MAX_BATCHES);
    const times = [...new Set(schedule(10_000, 50))].sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(1000);
  });

  it("an isolate that learns late spreads its overdue connections over the next interval instead of closing them at once", () => {
    const now = since + 20_000;
    const at = schedule(30_000, 200, now);
    const overdue = at.filter((t) => t < since + 20_000 + 1000);
    expect(overdue.every((t) => t >= now)).toBe(true);
    expect(new Set(overdue.map((t) => Math.floor((t - now) / 100))).size).toBeGreaterThan(5);
  });

  it("a drain without a deadline closes nothing (connections stay until they end, like sessions)", () => {
    expect(drainCloseAt({ since, deadline: null }, 0.3, since, 1000)).toBeUndefined();
  });
});

describe("what counts as long-lived", () => {
  it("a WebSocket upgrade, or a GET asking for (and answered with) an event stream; never a POST's event stream", () => {
    expect(longLivedRequest("GET", new Headers({ upgrade: "WebSocket" }))).toBe("websocket");
    expect(longLivedRequest("GET", new Headers({ accept: "text/event-stream" }))).toBe("sse");
    expect(longLivedRequest("POST", new Headers({ accept: "application/json, text/event-stream" }))).toBeUndefined();
    const sse = new Response("", { headers: { "content-type": "text/event-stream; charset=utf-8" } });
    expect(isEventStream("GET", sse)).toBe(true);
    expect(isEventStream("POST", sse)).toBe(false);
  });

  it("an event boundary is a blank line, in any of the three line endings", () => {
    const bytes = (s: string) => new TextEncoder().encode(s);
    for (const tail of ["a\n\n", "a\r\r", "\r\n\r\n", ""]) expect(atEventBoundary(bytes(tail))).toBe(true);
    for (const tail of ["data: x\n", "data: x", "\r\n"]) expect(atEventBoundary(bytes(tail))).toBe(false);
  });
});
