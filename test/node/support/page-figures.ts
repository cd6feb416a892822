/**
 * Page weight and time to first render, as a cold browser sees them: the
 * Chrome DevTools Protocol counts the bytes that crossed the wire for each
 * response (headers included), with the cache disabled; the page's own
 * Performance API gives first contentful paint and the dashboard's mark for
 * its first render with data.
 */
import { gzipSync } from "node:zlib";
import type { BrowserContext } from "playwright-core";

export interface LoadedResource {
  url: string;
  type: string;
  /** Bytes on the wire: status line, headers and body. */
  transferred: number;
  /** Body bytes as served, and gzipped (what a compressing edge would send). */
  body: number;
  gzip: number;
}

export interface PageFigures {
  /** The page and its assets (document, stylesheet, script). */
  assets: LoadedResource[];
  /** Its API calls during the first render (JSON from /__edge/). */
  api: LoadedResource[];
  pageWeight: { transferred: number; body: number; gzip: number };
  firstContentfulPaintMs: number | null;
  firstDataRenderMs: number | null;
  domContentLoadedMs: number | null;
}

interface Seen {
  url: string;
  type: string;
  transferred?: number;
}

export async function measurePageLoad(context: BrowserContext, url: string): Promise<PageFigures> {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  const seen = new Map<string, Seen>();
  cdp.on("Network.responseReceived", (e) => seen.set(e.requestId, { url: e.response.url, type: e.type }));
  cdp.on("Network.loadingFinished", (e) => {
    const s = seen.get(e.requestId);
    if (s) s.transferred = e.encodedDataLength;
  });

  await page.goto(url);
  await page.locator("body[data-ready='1']").waitFor();
  await page.waitForLoadState("networkidle");
  // A string, not a function: it runs in the page, whose DOM types this Node project does not load.
  const timing = (await page.evaluate(`(() => {
    const first = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null;
    const nav = performance.getEntriesByType("navigation")[0];
    return { fcp: first("first-contentful-paint"), mark: first("edge-dashboard:first-render"), dcl: nav ? nav.domContentLoadedEventEnd : null };
  })()`)) as { fcp: number | null; mark: number | null; dcl: number | null };

  const resources: LoadedResource[] = [];
  for (const [requestId, s] of seen) {
    if (s.transferred === undefined) continue;
    const { body, base64Encoded } = await cdp.send("Network.getResponseBody", { requestId });
    const bytes = Buffer.from(body, base64Encoded ? "base64" : "utf8");
    resources.push({
      url: new URL(s.url).pathname,
      type: s.type,
      transferred: s.transferred,
      body: bytes.length,
      gzip: gzipSync(bytes).length,
    });
  }
  await page.close();
  const assets = resources.filter((r) => ["Document", "Stylesheet", "Script"].includes(r.type));
  const sum = (k: "transferred" | "body" | "gzip") => assets.reduce((n, r) => n + r[k], 0);
  const round = (ms: number | null) => (ms === null ? null : Math.round(ms));
  return {
    assets,
    api: resources.filter((r) => !assets.includes(r)),
    pageWeight: { transferred: sum("transferred"), body: sum("body"), gzip: sum("gzip") },
    firstContentfulPaintMs: round(timing.fcp),
    firstDataRenderMs: round(timing.mark),
    domContentLoadedMs: round(timing.dcl),
  };
}
