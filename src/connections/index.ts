/**
 * Long-lived connections as part of the session: WebSockets and event streams
 * are relayed by the layer (not handed through), counted per origin, and
 * closed in staggered batches with a reconnect hint when their origin drains.
 */
import type { EdgeConfig } from "../config/index.ts";
import { isEventStream, sseRetryMs } from "./plan.ts";
import { watchConnection } from "./registry.ts";
import { relayEventStream } from "./sse.ts";
import { relayWebSocket } from "./websocket.ts";

export {
  atEventBoundary,
  batchCount,
  CLOSE_SHARE,
  closeAtDeadline,
  drainCloseAt,
  isEventStream,
  type LongLivedKind,
  longLivedRequest,
  MAX_BATCHES,
  sseRetryMs,
} from "./plan.ts";
export { openHere } from "./registry.ts";
export { DRAIN_CLOSE_CODE } from "./websocket.ts";

/**
 * The client's response, with a WebSocket or a GET's event stream relayed and
 * watched for `oid`'s drain; anything else unchanged. `untilDeadline`: the
 * connection cannot move elsewhere, so a drain closes it at its deadline.
 */
export function holdLongLived(
  env: Env,
  cfg: EdgeConfig,
  method: string,
  oid: string,
  response: Response,
  untilDeadline = false,
): Response {
  const u = Math.random();
  if (response.status === 101 && response.webSocket) {
    let closed: (() => void) | undefined;
    const relay = relayWebSocket(response.webSocket, () => closed?.());
    closed = watchConnection(env, cfg, {
      oid,
      kind: "websocket",
      u,
      untilDeadline,
      closeForDrain: relay.closeForDrain,
    });
    return new Response(null, { status: 101, webSocket: relay.client, headers: response.headers });
  }
  if (response.body && isEventStream(method, response)) {
    let closed: (() => void) | undefined;
    const relay = relayEventStream(response.body, sseRetryMs(u), () => closed?.());
    closed = watchConnection(env, cfg, { oid, kind: "sse", u, untilDeadline, closeForDrain: relay.closeForDrain });
    return new Response(relay.stream, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }
  return response;
}
