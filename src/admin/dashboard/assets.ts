import { DASHBOARD_JS } from "./client.ts";
import { DASHBOARD_CSS } from "./styles.ts";

export interface DashboardAsset {
  /** Content-addressed, so it can be cached for good. */
  path: string;
  name: string;
  type: string;
  body: string;
}

/** FNV-1a: synchronous and enough to tell versions of our own file apart (not a security boundary). */
function fingerprint(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

function asset(ext: string, type: string, body: string): DashboardAsset {
  const name = `dashboard.${fingerprint(body)}.${ext}`;
  return { path: `/__edge/assets/${name}`, name, type, body };
}

export const ASSETS = {
  css: asset("css", "text/css; charset=utf-8", DASHBOARD_CSS),
  js: asset("js", "text/javascript; charset=utf-8", DASHBOARD_JS),
};

const byName = new Map(Object.values(ASSETS).map((a) => [a.name, a]));
export const assetNamed = (name: string): DashboardAsset | undefined => byName.get(name);
