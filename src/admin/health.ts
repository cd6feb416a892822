/**
 * One health state per origin, with the reason, derived from everything the
 * control plane knows: active checks, passive ejection, drains and injected
 * faults. A pure function over the pool view, so the dashboard and the API
 * can never disagree, and no origin is shown healthy while any of those says
 * otherwise.
 */
import type { OriginConfig } from "../config/index.ts";
import type { Fault, OriginRuntime } from "../origins/index.ts";

/** Worst first: an origin is in the first state that applies. */
export const ORIGIN_STATES = ["down", "ejected", "drained", "draining", "idle", "healthy"] as const;
export type OriginState = (typeof ORIGIN_STATES)[number];

export interface OriginHealthView {
  state: OriginState;
  /** Why, in words an operator reads on the card. */
  reason: string;
  /** Every state that applies, worst first (the first is `state`): an ejected origin that is also draining lists both. */
  conditions: OriginState[];
}

export function originHealth(
  o: OriginConfig,
  rt: OriginRuntime | undefined,
  faults: readonly Fault[],
  now: number,
): OriginHealthView {
  const reasons = new Map<OriginState, string>();
  const fault = faults.find((f) => f.target === `origin:${o.id}`);
  if (fault?.mode === "down") reasons.set("down", "marked down by fault injection");
  else if (rt?.health.state === "unhealthy")
    reasons.set("down", `failing active health checks${rt.health.lastError ? ` (${rt.health.lastError})` : ""}`);
  if ((rt?.ejectedUntil ?? 0) > now)
    reasons.set("ejected", "ejected by outlier detection: consecutive failures on live traffic");
  if (rt?.drain?.completedAt) reasons.set("drained", "drained: no sessions left, takes no new ones");
  else if (rt?.drain)
    reasons.set(
      "draining",
      rt.drain.deadline === null
        ? "draining: no new sessions; its sessions stay until they end"
        : rt.drain.deadline > now
          ? "draining: no new sessions; its sessions move at the deadline"
          : "draining: deadline passed; its sessions move on their next request",
    );
  if (o.weight <= 0) reasons.set("idle", "weight 0: takes no new sessions");
  const conditions = ORIGIN_STATES.filter((s) => reasons.has(s));
  const state = conditions[0] ?? "healthy";
  if (state === "healthy") {
    const slow = fault?.mode === "slow" ? `; slowed by fault injection (${fault.ms ?? 1000} ms)` : "";
    const checks = o.health ? "active health checks pass" : "no active checks: passive health only";
    return { state, reason: checks + slow, conditions: ["healthy"] };
  }
  return { state, reason: reasons.get(state) ?? state, conditions };
}
