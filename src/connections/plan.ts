/**
 * Long-lived connections (WebSocket, SSE) and drains, as pure functions: which
 * requests open one, and when each is closed so that a drained origin's
 * connections leave in staggered batches before the deadline instead of all
 * at once.
 */

export type LongLivedKind = "websocket" | "sse";

/** A WebSocket upgrade, or a GET that asks for an event stream (EventSource always sends this Accept). */
export function longLivedRequest(method: string, headers: Headers): LongLivedKind | undefined {
  if ((headers.get("upgrade") ?? "").toLowerCase() === "websocket") return "websocket";
  if (method === "GET" && (headers.get("accept") ?? "").toLowerCase().includes("text/event-stream")) return "sse";
  return undefined;
}

/** Only a GET answered with an event stream is held open: a POST's event stream (MCP) is one answer, not a channel. */
export function isEventStream(method: string, response: Response): boolean {
  return method === "GET" && (response.headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream");
}

export interface DrainWindow {
  since: number;
  deadline: number | null;
}

/** Share of the drain window used for closing; the rest leaves room for the last batch to reconnect before the deadline. */
export const CLOSE_SHARE = 0.8;
/** Batches are at least this far apart, and at most MAX_BATCHES per drain. */
export const MIN_BATCH_GAP_MS = 1000;
export const MAX_BATCHES = 20;

export function batchCount(windowMs: number): number {
  return Math.max(1, Math.min(MAX_BATCHES, Math.floor((windowMs * CLOSE_SHARE) / MIN_BATCH_GAP_MS)));
}

/**
 * When this connection is closed, given the drain and the connection's own
 * uniform random `u` in [0, 1). Every isolate computes the same schedule from
 * the pool's drain start and deadline, so batches line up across the whole
 * deployment without coordination: batch k of n closes at
 * since + (k + 1) / n × 80 % of the window. A connection whose slot has
 * already passed (its isolate learned of the drain late) closes within
 * `lateSpreadMs`, spread again by `u`. No deadline: never (sessions stay until
 * they end, as with cookie sessions).
 */
export function drainCloseAt(drain: DrainWindow, u: number, now: number, lateSpreadMs: number): number | undefined {
  if (drain.deadline === null) return undefined;
  const windowMs = drain.deadline - drain.since;
  const n = batchCount(windowMs);
  const slot = Math.min(n - 1, Math.floor(u * n));
  const at = drain.since + (Math.max(0, windowMs) * CLOSE_SHARE * (slot + 1)) / n;
  return at > now ? at : now + u * lateSpreadMs;
}

/**
 * A connection that cannot move (a strict learned id's, or one with no other
 * origin to go to) is not closed early, which would only bring it back to the
 * same draining origin: it closes just after the deadline, spread over
 * `lateSpreadMs`, when its reconnection is refused or moved by the layer.
 */
export function closeAtDeadline(drain: DrainWindow, u: number, lateSpreadMs: number): number | undefined {
  return drain.deadline === null ? undefined : drain.deadline + u * lateSpreadMs;
}

/** The SSE reconnection hint (the `retry` field, ms): a little jitter on top of the batch, so a batch does not return as one. */
export function sseRetryMs(u: number): number {
  return 1000 + Math.floor(u * 2000);
}

/** Whether a byte stream's tail ends an SSE event (a blank line), so a field can be added without cutting one. */
export function atEventBoundary(tail: Uint8Array): boolean {
  const n = tail.length;
  const lf = 10;
  const cr = 13;
  if (n === 0) return true;
  if (n >= 2 && tail[n - 1] === lf && tail[n - 2] === lf) return true;
  if (n >= 2 && tail[n - 1] === cr && tail[n - 2] === cr) return true;
  return n >= 4 && tail[n - 1] === lf && tail[n - 2] === cr && tail[n - 3] === lf && tail[n - 4] === cr;
}
