/**
 * The request path's steps for learned ids (LEARNED_AFFINITY), called from
 * src/app.ts around the cookie-session steps: read the ids, route by them,
 * give the origin its own ids back, seal what it issues.
 */
import {
  bindingSid,
  type LearnedRoute,
  learnedSessionGone,
  type PresentedLearnedId,
  readLearnedIds,
  restoreOriginIds,
  routeLearned,
  sealOriginIds,
} from "../affinity/index.ts";
import type { OriginConfig } from "../config/index.ts";
import type { EdgeError } from "../errors.ts";
import { log } from "../log.ts";
import { leaveReason } from "../origins/index.ts";
import type { LiveSession } from "../session/index.ts";
import { type Placement, repin } from "./route.ts";
import type { RequestScope } from "./steps.ts";

/** The learned ids the request carries, unsealed (none when LEARNED_AFFINITY is empty). */
export function learnedIdsOf(x: RequestScope): Promise<PresentedLearnedId[]> {
  if (!x.cfg.learned.rules.length) return Promise.resolve([]);
  return readLearnedIds(x.cfg.learned, x.request.headers);
}

/** Where the learned ids send this request; `resumedSid` is the edge session the client presented, if any. */
export function routeByLearnedIds(
  x: RequestScope,
  ids: PresentedLearnedId[],
  resumedSid: string | undefined,
): LearnedRoute {
  if (!ids.length) return { kind: "none", ids };
  const now = Date.now();
  return routeLearned(ids, resumedSid, (oid) =>
    leaveReason(x.cfg.origins, x.view, oid, now, x.rt.router.outliers.ejectedUntil(oid)),
  );
}

/** A strict id whose origin is gone: the protocol's "session gone", so the client starts afresh elsewhere. */
export function learnedGone(route: Extract<LearnedRoute, { kind: "gone" }>): Response {
  log("info", "learned_session_gone", { rule: route.rule.key, oid: route.oid ?? null, why: route.why });
  return learnedSessionGone(route);
}

/** The origin a learned id names, for a request that starts a new edge session (MCP clients keep no cookie). */
export function learnedOrigin(x: RequestScope, route: LearnedRoute): OriginConfig | undefined {
  return route.kind === "bound" ? x.cfg.origins.find((o) => o.id === route.oid) : undefined;
}

/**
 * An edge session on another origin than its learned id follows the id: the
 * id's state lives in that origin's process, the edge session's in its object.
 */
export async function followLearnedId(
  x: RequestScope,
  route: LearnedRoute,
  session: LiveSession,
  placement: Placement,
): Promise<{ session: LiveSession; placement: Placement }> {
  const to = learnedOrigin(x, route);
  if (!to || placement.origin.id === to.id) return { session, placement };
  const moved = await repin(x, session, to, "learned");
  return { session: moved, placement: { origin: to, fallback: false } };
}

/**
 * The scope the origin is called with: the origin's own ids in place of the
 * sealed ones, and, for a strict id, no second origin: a failure to reach its
 * origin is the protocol's "session gone", never a retry elsewhere.
 */
export function withOriginIds(x: RequestScope, route: LearnedRoute): RequestScope {
  if (!route.ids.length) return x;
  const request = new Request(x.request, { headers: restoreOriginIds(x.request.headers, route.ids) });
  if (route.kind !== "bound" || !route.strict) return { ...x, request };
  const strictRule = route.ids.find((p) => p.rule.whenGone === "strict" && p.binding)?.rule;
  const pinned = (e: EdgeError): Response =>
    e.code === "ERR_ORIGIN_UNREACHABLE" && strictRule
      ? learnedGone({ kind: "gone", rule: strictRule, oid: route.oid, why: "connect_failed", ids: route.ids })
      : e.toResponse();
  return { ...x, request, pinned };
}

/** The origin's response with the ids it issued sealed for the client (and held ones re-sealed when re-bound). */
export function sealLearnedIds(
  x: RequestScope,
  route: LearnedRoute,
  upstream: Response,
  servedBy: string,
  kept: LiveSession | undefined,
  tokenPresented: boolean,
): Promise<Response> {
  if (!x.cfg.learned.rules.length) return Promise.resolve(upstream);
  return sealOriginIds(x.cfg.learned, upstream, route.ids, {
    servedBy,
    sidFor: (rule) => bindingSid(rule, kept?.sid, tokenPresented),
  });
}
