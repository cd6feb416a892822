/**
 * Learned affinity (LEARNED_AFFINITY): ids that origins issue for their own
 * sessions (MCP's Mcp-Session-Id, an application's JSESSIONID) are handed to
 * the client sealed, naming the origin that holds them; on the way back they
 * are unsealed, routed by, and restored to the origin's own value. No lookup:
 * any isolate anywhere routes a sealed id by itself.
 */

import { type LearnedRoute, needsReseal, type PresentedLearnedId } from "./policy.ts";
import {
  cookieValues,
  deletesCookie,
  isMcpSessionHeader,
  type LearnedRule,
  parseSetCookie,
  reissueAttrs,
  replaceCookie,
} from "./rules.ts";
import { type LearnedBinding, type SealKey, sealLearnedId, unsealLearnedId } from "./seal.ts";

export { bindingSid, type LearnedRoute, needsReseal, type PresentedLearnedId, routeLearned } from "./policy.ts";
export {
  cookieValues,
  isMcpSessionHeader,
  type LearnedRule,
  learnedRule,
  reissueAttrs,
  replaceCookie,
} from "./rules.ts";
export {
  type LearnedBinding,
  MAX_SEALED_LENGTH,
  type SealKey,
  sealKeyFrom,
  sealLearnedId,
  unsealLearnedId,
} from "./seal.ts";

export interface LearnedAffinity {
  rules: LearnedRule[];
  key: SealKey;
}

/** The learned ids a request carries, unsealed. Only the first readable value of a cookie counts. */
export async function readLearnedIds(la: LearnedAffinity, headers: Headers): Promise<PresentedLearnedId[]> {
  const out: PresentedLearnedId[] = [];
  for (const rule of la.rules) {
    const values =
      rule.kind === "header"
        ? [headers.get(rule.name) ?? ""].filter(Boolean)
        : cookieValues(headers.get("cookie"), rule.name);
    if (!values.length) continue;
    let binding: LearnedBinding | undefined;
    for (const v of values) {
      binding = await unsealLearnedId(la.key, v, rule.key);
      if (binding) break;
    }
    out.push({ rule, binding });
  }
  return out;
}

/**
 * The request headers the origin gets: each learned id replaced by the origin's
 * own value. One that did not unseal (or belongs to another edge session) is
 * removed: the origin never sees the layer's form, nor a value it never issued.
 */
export function restoreOriginIds(headers: Headers, ids: PresentedLearnedId[]): Headers {
  if (!ids.length) return headers;
  const out = new Headers(headers);
  for (const { rule, binding } of ids) {
    if (rule.kind === "header") {
      if (binding) out.set(rule.name, binding.i);
      else out.delete(rule.name);
      continue;
    }
    const cookie = replaceCookie(out.get("cookie"), rule.name, binding?.i);
    if (cookie) out.set("cookie", cookie);
    else out.delete("cookie");
  }
  return out;
}

export interface SealContext {
  /** The origin that answered. */
  servedBy: string;
  /** The edge session each rule's id is bound to (see bindingSid). */
  sidFor: (rule: LearnedRule) => string | undefined;
}

/**
 * The origin's response with every learned id it issued sealed, and ids the
 * client holds re-sealed when their origin or edge session changed (failover,
 * login, a new edge session) though the origin did not issue them again.
 */
export async function sealOriginIds(
  la: LearnedAffinity,
  upstream: Response,
  ids: PresentedLearnedId[],
  ctx: SealContext,
): Promise<Response> {
  if (!la.rules.length) return upstream;
  const headers = new Headers(upstream.headers);
  let changed = false;
  for (const rule of la.rules) {
    const s = ctx.sidFor(rule);
    const held = ids.find((p) => p.rule === rule)?.binding;
    const binding = (i: string, a?: string): LearnedBinding => ({
      n: rule.key,
      o: ctx.servedBy,
      i,
      ...(s !== undefined ? { s } : {}),
      ...(a ? { a } : {}),
    });
    if (rule.kind === "header") {
      const issued = headers.get(rule.name);
      if (issued) headers.set(rule.name, await sealLearnedId(la.key, binding(issued)));
      else if (held && needsReseal(held, ctx.servedBy, s))
        headers.set(rule.name, await sealLearnedId(la.key, binding(held.i)));
      else continue;
      changed = true;
      continue;
    }
    const lines = headers.getSetCookie();
    let issued = false;
    const rewritten: string[] = [];
    for (const line of lines) {
      const c = parseSetCookie(line);
      if (!c || c.name !== rule.name || deletesCookie(c)) {
        rewritten.push(line);
        continue;
      }
      issued = true;
      rewritten.push(`${c.name}=${await sealLearnedId(la.key, binding(c.value, reissueAttrs(c.attrs)))}${c.attrs}`);
    }
    if (issued) {
      headers.delete("set-cookie");
      for (const line of rewritten) headers.append("set-cookie", line);
      changed = true;
    } else if (held && needsReseal(held, ctx.servedBy, s)) {
      headers.append(
        "set-cookie",
        `${rule.name}=${await sealLearnedId(la.key, binding(held.i, held.a))}${held.a ?? "; Path=/"}`,
      );
      changed = true;
    }
  }
  if (!changed) return upstream;
  return new Response(upstream.status === 101 ? null : upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers,
    ...(upstream.webSocket ? { webSocket: upstream.webSocket } : {}),
  });
}

/**
 * The protocol's own "session gone" for a strict id: MCP's is HTTP 404 with a
 * JSON-RPC error (what the MCP SDK's own servers answer for an unknown
 * session), after which the client initializes a new session; other protocols
 * get 404 with the layer's error body. A gone cookie is cleared.
 */
export function learnedSessionGone(route: Extract<LearnedRoute, { kind: "gone" }>): Response {
  const message = `the session named by ${route.rule.kind} ${route.rule.name} is gone (${route.why}); start a new one`;
  const code = "ERR_LEARNED_SESSION_GONE";
  const headers = new Headers({ "content-type": "application/json; charset=utf-8" });
  if (route.rule.kind === "cookie") {
    const held = route.ids.find((p) => p.rule === route.rule)?.binding;
    headers.append("set-cookie", `${route.rule.name}=${held?.a ?? "; Path=/"}; Max-Age=0`);
  }
  const body = isMcpSessionHeader(route.rule)
    ? { jsonrpc: "2.0", error: { code: -32001, message: "Session not found", data: { code, message } }, id: null }
    : { error: { code, message } };
  return new Response(JSON.stringify(body), { status: 404, headers });
}
