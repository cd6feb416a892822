/**
 * An event stream passed through chunk by chunk, which the layer can end
 * itself: at an event boundary, with a `retry` field (the reconnection delay
 * EventSource honours, HTML Living Standard §9.2), and the origin's side
 * cancelled.
 */
import { atEventBoundary } from "./plan.ts";

/** If the stream is mid-event when asked to end, it waits this long for the event to finish. */
const BOUNDARY_WAIT_MS = 2000;
const encoder = new TextEncoder();

export function relayEventStream(
  body: ReadableStream<Uint8Array>,
  retryMs: number,
  onClosed: () => void,
): { stream: ReadableStream<Uint8Array>; closeForDrain: () => void } {
  const reader = body.getReader();
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  let tail = new Uint8Array(0);
  let ended = false;
  let ending = false;

  const finish = () => {
    if (ended) return;
    ended = true;
    onClosed();
  };
  const endWithRetry = () => {
    if (ended || !controller) return;
    controller.enqueue(encoder.encode(`retry: ${retryMs}\n\n`));
    controller.close();
    reader.cancel("draining").catch(() => {});
    finish();
  };

  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    async pull(c) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (!ended) c.error(e);
        finish();
        return;
      }
      if (ended) return;
      if (chunk.done) {
        c.close();
        finish();
        return;
      }
      c.enqueue(chunk.value);
      const merged = new Uint8Array(tail.length + Math.min(4, chunk.value.length));
      merged.set(tail);
      merged.set(chunk.value.slice(-4), tail.length);
      tail = merged.slice(-4);
      if (ending && atEventBoundary(tail)) endWithRetry();
    },
    cancel(reason) {
      reader.cancel(reason).catch(() => {});
      finish();
    },
  });

  return {
    stream,
    closeForDrain: () => {
      if (ended) return;
      ending = true;
      if (atEventBoundary(tail)) return endWithRetry();
      setTimeout(endWithRetry, BOUNDARY_WAIT_MS);
    },
  };
}
