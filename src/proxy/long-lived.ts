/**
 * The request path's step for long-lived connections: a new WebSocket or event
 * stream is a new binding, so it never opens to a draining origin; the
 * session moves with it (reason `drained`), and a connection the layer closed
 * for a drain reconnects onto a non-draining origin with its session intact.
 */
import type { LearnedRoute } from "../affinity/index.ts";
import type { LiveSession } from "../session/index.ts";
import { type Placement, repin } from "./route.ts";
import type { RequestScope } from "./steps.ts";

/** A long-lived connection that stays on a draining origin (a strict learned id's, or no other origin can take it). */
export function stuckOnDrain(x: RequestScope, learned: LearnedRoute, placement: Placement): boolean {
  if (placement.fallback || !x.longLived) return false;
  return Boolean(x.view?.origins[placement.origin.id]?.drain) || (learned.kind === "bound" && learned.strict);
}

export async function keepLongLivedOffDrains(
  x: RequestScope,
  learned: LearnedRoute,
  session: LiveSession,
  placement: Placement,
): Promise<{ session: LiveSession; placement: Placement }> {
  if (placement.fallback || !x.longLived) return { session, placement };
  // A strict learned id's state cannot move: it stays until the drain's deadline.
  if (learned.kind === "bound" && learned.strict) return { session, placement };
  if (!x.view?.origins[placement.origin.id]?.drain) return { session, placement };
  const to = x.rt.router.pick(x.view, x.region, new Set([placement.origin.id]));
  if (!to) return { session, placement };
  const moved = await repin(x, session, to, "drained");
  return { session: moved, placement: { origin: to, fallback: false } };
}
