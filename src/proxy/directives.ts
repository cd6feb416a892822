import { z } from "zod";
import type { EdgeLimits } from "../config/index.ts";
import { isJsonObject, type JsonObject, jsonDepth, type SessionChange } from "../session/index.ts";

export const SET_HEADER = "x-edge-session-set";
export const SET_IF_VERSION_HEADER = "x-edge-session-set-if-version";
export const LOGIN_HEADER = "x-edge-session-login";
export const LOGOUT_HEADER = "x-edge-session-logout";

export type DirectiveProblemCode =
  | "ERR_SET_TOO_LARGE"
  | "ERR_SET_INVALID_JSON"
  | "ERR_SET_NOT_OBJECT"
  | "ERR_SET_TOO_DEEP"
  | "ERR_SET_IF_VERSION_INVALID"
  | "ERR_LOGIN_TOO_LARGE"
  | "ERR_LOGIN_INVALID"
  | "ERR_LOGIN_CLAIMS_TOO_LARGE"
  | "ERR_LOGIN_TOO_DEEP";

export interface DirectiveProblem {
  code: DirectiveProblemCode;
  message: string;
}

/** What an origin asked of the session in one response. */
export interface OriginDirectives {
  /** Undefined when the origin asked for nothing, or when a problem voids its request. */
  change: SessionChange | undefined;
  problems: DirectiveProblem[];
}

/** `X-Edge-Session-Logout: all` ends every session of the user, not only this one (e.g. after a password change). */
export function isLogoutAll(headers: Headers): boolean {
  return headers.get(LOGOUT_HEADER)?.trim().toLowerCase() === "all";
}

const LoginSchema = z.strictObject({
  sub: z.string().min(1).max(256),
  claims: z.record(z.string(), z.json()).optional(),
});

function parseJsonHeader(raw: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
}

const encoder = new TextEncoder();

/**
 * Reads X-Edge-Session-Set / -Set-If-Version / -Login / -Logout. Logout is always
 * honoured (an origin that means to log a user out must never be ignored);
 * otherwise one bad directive voids them all, so a response changes the session
 * entirely or not at all.
 */
export function parseDirectives(headers: Headers, limits: EdgeLimits): OriginDirectives {
  if (headers.has(LOGOUT_HEADER)) return { change: { logout: true }, problems: [] };
  const problems: DirectiveProblem[] = [];
  const change: SessionChange = {};

  const set = headers.get(SET_HEADER);
  if (set !== null) {
    if (encoder.encode(set).byteLength > limits.patchBytes) {
      problems.push({ code: "ERR_SET_TOO_LARGE", message: `X-Edge-Session-Set is over ${limits.patchBytes} bytes` });
    } else {
      const parsed = parseJsonHeader(set);
      if (!parsed.ok) problems.push({ code: "ERR_SET_INVALID_JSON", message: `X-Edge-Session-Set: ${parsed.message}` });
      else if (!isJsonObject(parsed.value))
        problems.push({
          code: "ERR_SET_NOT_OBJECT",
          message: "X-Edge-Session-Set must be a JSON object (RFC 7396 merge patch)",
        });
      else if (jsonDepth(parsed.value, limits.sessionDepth) > limits.sessionDepth)
        problems.push({
          code: "ERR_SET_TOO_DEEP",
          message: `X-Edge-Session-Set nests deeper than ${limits.sessionDepth} (MAX_SESSION_DEPTH)`,
        });
      else change.patch = parsed.value as JsonObject;
    }
  }

  const ifVersion = headers.get(SET_IF_VERSION_HEADER);
  if (ifVersion !== null) {
    if (/^\d{1,15}$/.test(ifVersion.trim())) change.ifVersion = Number(ifVersion.trim());
    else
      problems.push({
        code: "ERR_SET_IF_VERSION_INVALID",
        message: "X-Edge-Session-Set-If-Version must be a non-negative integer",
      });
  }

  const login = headers.get(LOGIN_HEADER);
  if (login !== null) {
    if (encoder.encode(login).byteLength > limits.patchBytes) {
      problems.push({
        code: "ERR_LOGIN_TOO_LARGE",
        message: `X-Edge-Session-Login is over ${limits.patchBytes} bytes`,
      });
    } else {
      const parsed = parseJsonHeader(login);
      // Before the schema, whose JSON check recurses: claims nested thousands deep would exhaust the stack.
      const claims = parsed.ok && isJsonObject(parsed.value) ? parsed.value.claims : undefined;
      const checked =
        parsed.ok && jsonDepth(claims, limits.sessionDepth) <= limits.sessionDepth
          ? LoginSchema.safeParse(parsed.value)
          : undefined;
      if (parsed.ok && !checked)
        problems.push({
          code: "ERR_LOGIN_TOO_DEEP",
          message: `X-Edge-Session-Login claims nest deeper than ${limits.sessionDepth} (MAX_SESSION_DEPTH)`,
        });
      else if (!checked?.success)
        problems.push({
          code: "ERR_LOGIN_INVALID",
          message: 'X-Edge-Session-Login must be JSON {"sub": "<1-256 chars>", "claims"?: {...}}',
        });
      else if (
        checked.data.claims &&
        encoder.encode(JSON.stringify(checked.data.claims)).byteLength > limits.loginClaimsBytes
      )
        // Claims travel in every forwarded header from now on: a login that would make every later
        // request's header too large for the origin is refused here, once, instead.
        problems.push({
          code: "ERR_LOGIN_CLAIMS_TOO_LARGE",
          message: `X-Edge-Session-Login claims are over LOGIN_CLAIMS_MAX_BYTES (${limits.loginClaimsBytes} bytes as JSON)`,
        });
      else
        change.login = checked.data.claims
          ? { sub: checked.data.sub, claims: checked.data.claims as JsonObject }
          : { sub: checked.data.sub };
    }
  }

  if (problems.length) return { change: undefined, problems };
  if (!change.patch && !change.login) return { change: undefined, problems };
  return { change, problems };
}
