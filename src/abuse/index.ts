import { base64url } from "jose";
import type { EdgeConfig } from "../config/index.ts";
import { EdgeError } from "../errors.ts";

/**
 * Whose budget a new session comes out of: the IPv4 address, or the /64 of an
 * IPv6 one. A single host commonly holds a whole /64 (SLAAC, privacy
 * addresses) and can pick any address in it, so keying on the full address
 * would give it 2^64 budgets. IPv4-mapped IPv6 counts as the IPv4 address.
 */
export function rateLimitKey(ip: string): string {
  const address = ip.trim().toLowerCase().replace(/%.*$/, "");
  if (!address.includes(":")) return address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address);
  if (mapped?.[1]) return mapped[1];
  const [head = "", tail] = address.split("::");
  const groupsOf = (part: string) => (part ? part.split(":") : []);
  // A trailing dotted IPv4 part (::1.2.3.4) stands for two groups.
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const h = groupsOf(head);
  const t = tail === undefined ? [] : groupsOf(tail);
  const groups = tail === undefined ? h : [...h, ...Array(Math.max(0, 8 - width(h) - width(t))).fill("0"), ...t];
  const prefix = groups.slice(0, 4).map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? Number.parseInt(g, 16).toString(16) : g));
  while (prefix.length < 4) prefix.push("0");
  return `${prefix.join(":")}::/64`;
}

/**
 * New sessions (requests with no valid token) per client address (per /64 for IPv6), through the
 * Workers rate-limiting binding NEW_SESSIONS. Requests with a valid token are
 * never counted, so a client that keeps its cookie is never limited. Without
 * the binding, or without a client address (local tests), nothing is limited.
 */
export async function limitNewSessions(env: Env, request: Request): Promise<void> {
  const ip = request.headers.get("cf-connecting-ip");
  const limiter = (env as { NEW_SESSIONS?: RateLimit }).NEW_SESSIONS;
  if (!ip || !limiter) return;
  const { success } = await limiter.limit({ key: `new-session:${rateLimitKey(ip)}` });
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
