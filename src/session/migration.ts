/** Migration policy as pure functions: when a session should follow its user, and where it may go. */
import type { Forward, SessionRecord } from "./record.ts";

/** Location hints inside each jurisdiction a session can be pinned to. */
export const JURISDICTION_REGIONS: Record<string, readonly string[]> = { eu: ["weur", "eeur"] };

/** The client was seen from `seenFrom`: the updated "away from home" count, or undefined when it is home. */
export function awayAfter(r: SessionRecord, seenFrom: string, now: number): SessionRecord["away"] {
  if (seenFrom === r.reg) return undefined;
  if (r.away?.reg === seenFrom) return { ...r.away, count: r.away.count + 1 };
  return { reg: seenFrom, since: now, count: 1 };
}

/**
 * Hysteresis: migrate only after the client has been seen from the same other
 * region on `requests` requests spanning at least `seconds`, so a roaming phone
 * or one odd request does not move a session back and forth.
 */
export function shouldFollow(
  away: SessionRecord["away"],
  rule: { requests: number; seconds: number },
  now: number,
): boolean {
  return away !== undefined && away.count >= rule.requests && now - away.since >= rule.seconds * 1000;
}

/** A session pinned to a jurisdiction may move only to a region inside it. */
export function jurisdictionAllows(pinned: string | undefined, target: Omit<Forward, "ep">): boolean {
  if (!pinned) return true;
  if (target.jur !== undefined && target.jur !== pinned) return false;
  return (JURISDICTION_REGIONS[pinned] ?? []).includes(target.reg);
}
