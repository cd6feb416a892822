/**
 * Learned-affinity policy: pure functions over plain data. Which origin a
 * request's learned ids pin it to, whether a strict id's origin is gone, and
 * when a response must carry a re-sealed id.
 */
import type { LearnedRule } from "./rules.ts";
import type { LearnedBinding } from "./seal.ts";

/** One learned id a request carried: `binding` undefined when it did not unseal (forged, altered, old key). */
export interface PresentedLearnedId {
  rule: LearnedRule;
  binding: LearnedBinding | undefined;
}

export type LearnedRoute =
  /** No learned id this request can use. */
  | { kind: "none"; ids: PresentedLearnedId[] }
  /** The request goes to `oid`, where its learned id lives; `strict`: it must never land anywhere else. */
  | { kind: "bound"; oid: string; strict: boolean; ids: PresentedLearnedId[] }
  /** A strict id whose origin is gone: answer the protocol's own "session gone". */
  | { kind: "gone"; rule: LearnedRule; oid: string | undefined; why: string; ids: PresentedLearnedId[] };

/**
 * Why an id bound under edge session `s` is not usable with this request's
 * edge session: another live session presenting it means it was carried over
 * from someone else's (a browser keeps both cookies together, and the layer
 * re-seals an id whenever the session it names is replaced).
 */
function foreign(b: LearnedBinding, resumedSid: string | undefined): boolean {
  return b.s !== undefined && resumedSid !== undefined && b.s !== resumedSid;
}

/**
 * Where a request's learned ids send it. `leaving(oid)` says why an origin can
 * no longer serve its sessions (the drain deadline passed, unhealthy, ejected,
 * removed), or undefined while it can: a draining origin keeps serving what is
 * bound to it until its deadline, like cookie sessions.
 */
export function routeLearned(
  presented: PresentedLearnedId[],
  resumedSid: string | undefined,
  leaving: (oid: string) => string | undefined,
): LearnedRoute {
  const ids = presented.map((p) =>
    p.binding && foreign(p.binding, resumedSid) ? { rule: p.rule, binding: undefined } : p,
  );
  for (const p of ids) {
    if (p.rule.whenGone !== "strict") continue;
    if (!p.binding) return { kind: "gone", rule: p.rule, oid: undefined, why: "unknown id", ids };
    const why = leaving(p.binding.o);
    if (why) return { kind: "gone", rule: p.rule, oid: p.binding.o, why, ids };
    return { kind: "bound", oid: p.binding.o, strict: true, ids };
  }
  for (const p of ids)
    if (p.binding && !leaving(p.binding.o)) return { kind: "bound", oid: p.binding.o, strict: false, ids };
  return { kind: "none", ids };
}

/**
 * The edge session an id is bound to when (re-)sealed: the one the client keeps,
 * if it demonstrably keeps one. A cookie rule's client keeps cookies; a header
 * rule's client (an MCP client) keeps the layer's token only if it sent one.
 */
export function bindingSid(
  rule: LearnedRule,
  keptSid: string | undefined,
  tokenPresented: boolean,
): string | undefined {
  if (keptSid === undefined) return undefined;
  return rule.kind === "cookie" || tokenPresented ? keptSid : undefined;
}

/** Whether the client must be handed a re-sealed id it did not get from the origin this time. */
export function needsReseal(b: LearnedBinding, servedBy: string, sid: string | undefined): boolean {
  return b.o !== servedBy || (b.s !== undefined && sid !== undefined && b.s !== sid);
}
