/** The header every active health probe of the layer carries. */
export const PROBE_HEADER = "x-edge-session-probe";
/** The probes' User-Agent is `edge-session-health/<layer version>`. */
export const PROBE_USER_AGENT_PREFIX = "edge-session-health/";

type HeaderBag = Headers | Record<string, string | string[] | undefined> | { headers: unknown };

function get(headers: HeaderBag, name: string): string | undefined {
  const bag = "headers" in headers && !(headers instanceof Headers) ? headers.headers : headers;
  if (bag instanceof Headers) return bag.get(name) ?? undefined;
  if (typeof bag === "object" && bag !== null) {
    const v = (bag as Record<string, unknown>)[name];
    return typeof v === "string" ? v : undefined;
  }
  return undefined;
}

/**
 * True for the layer's health probes (a node:http or Express request, a Fetch
 * Request, or its headers). For routing only, never for authorization: anyone
 * who can reach the origin directly can send these headers. Exempt the health
 * path by its path, and answer it with nothing session-specific.
 */
export function isHealthProbe(request: HeaderBag): boolean {
  return get(request, PROBE_HEADER) === "1" || (get(request, "user-agent") ?? "").startsWith(PROBE_USER_AGENT_PREFIX);
}
