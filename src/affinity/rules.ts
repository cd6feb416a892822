/**
 * Where learned ids travel: a header (both ways) or a cookie (Cookie in,
 * Set-Cookie out). Plain string handling, no I/O.
 */

export interface LearnedRule {
  /** `header:<lower-case name>` or `cookie:<name>`: what a sealed id is bound to. */
  key: string;
  kind: "header" | "cookie";
  /** Lower-case for headers (HTTP field names are case-insensitive); exact for cookies. */
  name: string;
  whenGone: "strict" | "failover";
}

export function learnedRule(r: { header?: string; cookie?: string; whenGone: "strict" | "failover" }): LearnedRule {
  if (r.header !== undefined) {
    const name = r.header.toLowerCase();
    return { key: `header:${name}`, kind: "header", name, whenGone: r.whenGone };
  }
  const name = r.cookie ?? "";
  return { key: `cookie:${name}`, kind: "cookie", name, whenGone: r.whenGone };
}

/** MCP's Streamable HTTP session header: its "session gone" is a JSON-RPC error with HTTP 404. */
export function isMcpSessionHeader(rule: LearnedRule): boolean {
  return rule.kind === "header" && rule.name === "mcp-session-id";
}

/** Every value of cookie `name` in a Cookie header, in order. */
export function cookieValues(cookieHeader: string | null, name: string): string[] {
  if (!cookieHeader) return [];
  const out: string[] = [];
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    out.push(part.slice(eq + 1).trim());
  }
  return out;
}

/** The Cookie header with cookie `name` set to `value` (first occurrence kept), or removed when `value` is undefined. */
export function replaceCookie(
  cookieHeader: string | null,
  name: string,
  value: string | undefined,
): string | undefined {
  if (!cookieHeader) return value === undefined ? undefined : `${name}=${value}`;
  const kept: string[] = [];
  let placed = false;
  for (const raw of cookieHeader.split(";")) {
    const part = raw.trim();
    if (!part) continue;
    const eq = part.indexOf("=");
    const isIt = eq >= 0 && part.slice(0, eq).trim() === name;
    if (!isIt) kept.push(part);
    else if (value !== undefined && !placed) {
      kept.push(`${name}=${value}`);
      placed = true;
    }
  }
  return kept.length ? kept.join("; ") : undefined;
}

export interface SetCookieParts {
  name: string;
  value: string;
  /** Everything after the value, including the leading `;` (may be empty). */
  attrs: string;
}

export function parseSetCookie(line: string): SetCookieParts | undefined {
  const semi = line.indexOf(";");
  const pair = semi < 0 ? line : line.slice(0, semi);
  const eq = pair.indexOf("=");
  if (eq < 0) return undefined;
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs: semi < 0 ? "" : line.slice(semi) };
}

/** A cookie that the origin deletes (empty, or already expired) is passed on as it is, never sealed. */
export function deletesCookie(c: SetCookieParts): boolean {
  return (
    c.value === "" || /;\s*max-age\s*=\s*(0|-)/i.test(c.attrs) || /;\s*expires\s*=\s*thu, 01 jan 1970/i.test(c.attrs)
  );
}

/**
 * The attributes to re-issue a re-bound cookie with: the origin's own, less its
 * lifetime (Max-Age / Expires are relative to when the origin set it), so a
 * re-issued cookie lives for the browser session.
 */
export function reissueAttrs(attrs: string): string {
  return attrs
    .split(";")
    .map((a) => a.trim())
    .filter((a) => a && !/^(max-age|expires)\s*=/i.test(a))
    .map((a) => `; ${a}`)
    .join("");
}
