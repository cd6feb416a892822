/**
 * A WebSocket proxied through a WebSocketPair instead of handed through, so
 * the layer sees it close and can close it itself: with 1012 ("service
 * restart", RFC 6455 §7.4.1 as registered by IANA) toward the client, which
 * tells it to reconnect, and 1001 ("going away") toward the origin.
 */

export const DRAIN_CLOSE_CODE = 1012;

/** Codes that may be sent in a close frame (1005, 1006 and 1015 only ever describe one). */
function sendable(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 || code < 1000 || code > 4999 ? 1000 : code;
}

export function relayWebSocket(
  upstream: WebSocket,
  onClosed: () => void,
): { client: WebSocket; closeForDrain: () => void } {
  const pair = new WebSocketPair();
  const client = pair[0];
  const server = pair[1];
  server.accept();
  upstream.accept();
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    onClosed();
  };
  const closeQuietly = (ws: WebSocket, code: number, reason: string) => {
    try {
      ws.close(sendable(code), reason);
    } catch {
      // already closing or closed
    }
  };
  server.addEventListener("message", (e) => {
    try {
      upstream.send(e.data);
    } catch {
      closeQuietly(server, 1011, "origin connection lost");
    }
  });
  upstream.addEventListener("message", (e) => {
    try {
      server.send(e.data);
    } catch {
      closeQuietly(upstream, 1001, "client gone");
    }
  });
  server.addEventListener("close", (e) => {
    closeQuietly(upstream, e.code, e.reason);
    finish();
  });
  upstream.addEventListener("close", (e) => {
    closeQuietly(server, e.code, e.reason);
    finish();
  });
  server.addEventListener("error", () => {
    closeQuietly(upstream, 1001, "client error");
    finish();
  });
  upstream.addEventListener("error", () => {
    closeQuietly(server, 1011, "origin error");
    finish();
  });
  return {
    client,
    closeForDrain: () => {
      closeQuietly(server, DRAIN_CLOSE_CODE, "service restart: reconnect");
      closeQuietly(upstream, 1001, "going away");
      finish();
    },
  };
}
