/** Migration policy as pure functions: when a session should follow its user, and where it may go. */
import { LOCATION_HINTS } from "../config/schema.ts";
import type { Forward, SessionRecord } from "./record.ts";

/** Location hints inside each jurisdiction a session can be pinned to. */
export const JURISDICTION_REGIONS: Record<string, readonly string[]> = { eu: ["weur", "eeur"] };

/** For each location hint, the others nearest first (rough network distance), for when it cannot take a session. */
export const NEAREST_REGIONS: Record<string, readonly string[]> = {
  wnam: ["enam", "sam", "apac", "oc", "weur", "eeur", "me", "afr"],
  enam: ["wnam", "weur", "sam", "eeur", "afr", "me", "apac", "oc"],
  sam: ["enam", "wnam", "afr", "weur", "eeur", "me", "oc", "apac"],
  weur: ["eeur", "enam", "afr", "me", "wnam", "sam", "apac", "oc"],
  eeur: ["weur", "me", "afr", "enam", "apac", "wnam", "sam", "oc"],
  apac: ["oc", "me", "wnam", "eeur", "weur", "afr", "enam", "sam"],
  oc: ["apac", "wnam", "me", "sam", "enam", "eeur", "weur", "afr"],
  afr: ["weur", "me", "eeur", "sam", "enam", "apac", "wnam", "oc"],
  me: ["eeur", "afr", "weur", "apac", "oc", "enam", "wnam", "sam"],
};

/**
 * Where a session can live (a new one, or one being restored), best first: the
 * preferred region if it may and is usable, then the nearest ones that are,
 * never outside the session's jurisdiction.
 */
export function healthyRegions(
  preferred: string,
  jur: string | undefined,
  unusable: (region: string) => boolean,
): string[] {
  const allowed: readonly string[] = jur ? (JURISDICTION_REGIONS[jur] ?? []) : LOCATION_HINTS;
  const ordered = [preferred, ...(NEAREST_REGIONS[preferred] ?? []), ...allowed];
  return ordered.filter((r, i) => ordered.indexOf(r) === i && allowed.includes(r) && !unusable(r));
}

/** The best of healthyRegions; undefined when no allowed region is usable. */
export function healthyRegion(
  preferred: string,
  jur: string | undefined,
  unusable: (region: string) => boolean,
): string | undefined {
  return healthyRegions(preferred, jur, unusable)[0];
}

/** The client was seen from `seenFrom`: the updated "away from home" count, or undefined when it is home. */
export function awayAfter(r: SessionRecord, seenFrom: string, now: number): SessionRecord["away"] {
  if (seenFrom === r.region) return undefined;
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
export function jurisdictionAllows(pinned: string | undefined, target: Omit<Forward, "epoch">): boolean {
  if (!pinned) return true;
  if (target.jurisdiction !== undefined && target.jurisdiction !== pinned) return false;
  return (JURISDICTION_REGIONS[pinned] ?? []).includes(target.region);
}
