import { base64url } from "jose";
import type { EdgeConfig } from "../config/index.ts";
import { EdgeError } from "../errors.ts";

/**
 * New sessions (requests with no valid token) per client address, through the
 * Workers rate-limiting binding NEW_SESSIONS. Requests with a valid token are
 * never counted, so a client that keeps its cookie is never limited. Without
 * the binding, or without a client address (local tests), nothing is limited.
 */
export async function limitNewSessions(env: Env, request: Request): Promise<void> {
  const ip = request.headers.get("cf-connecting-ip");
  const limiter = (env as { NEW_SESSIONS?: RateLimit }).NEW_SESSIONS;
  if (!ip || !limiter) return;
  const { success } = await limiter.limit({ key: `new-session:${ip}` });
  if (!success)
    throw new EdgeError(
      "ERR_SESSION_RATE_LIMITED",
      "too many new sessions from this address: keep the session cookie, or retry in a minute",
      {
        status: 429,
        report: false,
        headers: { "retry-after": "60" },
      },
    );
}

function ipPrefix(ip: string | null): string {
  if (!ip) return "";
  if (ip.includes(":")) return ip.split(":").slice(0, 3).join(":");
  return ip.split(".").slice(0, 2).join(".");
}

/** The browser family without version numbers, so an update does not end the session. */
function userAgentFamily(ua: string | null): string {
  return (ua ?? "")
    .replace(/\d+(\.\d+)*/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * Optional binding of a token to a coarse client fingerprint (CLIENT_BINDING).
 * Returns undefined when binding is off. A stolen token then works only from a
 * similar client; the price is that a legitimate change (a new network, another
 * TLS stack) ends the session. See docs/security.md.
 */
export async function clientFingerprint(request: Request, cfg: EdgeConfig): Promise<string | undefined> {
  if (cfg.clientBinding === "off") return undefined;
  const cf = request.cf as { botManagement?: { ja4?: string } } | undefined;
  const parts: string[] = [];
  if (cfg.clientBinding.includes("ua")) parts.push(userAgentFamily(request.headers.get("user-agent")));
  if (cfg.clientBinding.includes("ip")) parts.push(ipPrefix(request.headers.get("cf-connecting-ip")));
  if (cfg.clientBinding === "ja4") parts.push(cf?.botManagement?.ja4 ?? "");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\u0000"))));
  return base64url.encode(digest.slice(0, 12));
}
