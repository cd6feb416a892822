/**
 * The operator dashboard in a browser: three real origins, the real Worker
 * under `wrangler dev`, real sessions with stored state, and headless Chromium
 * (Debian's package, driven by playwright-core) signing in with the admin
 * token, reading the charts, and draining an origin from its card. The sign-in
 * and CSRF rules over plain HTTP are in dashboard-auth.test.ts.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumMissing, launchChromium } from "./support/chromium.ts";
import { type EdgeFixture, type Stats, startEdgeFixture, totalSessions, until } from "./support/edge-fixture.ts";
import { measurePageLoad } from "./support/page-figures.ts";
import { PROJECT_ROOT } from "./support/wrangler-dev.ts";

const COOKIE = "__Secure-edge-admin";
const RESULTS = join(PROJECT_ROOT, "test-results");
const SESSIONS = 9;

// ---------------------------------------------------------------- the page in Chromium

const missing = chromiumMissing();
if (missing) console.warn(`dashboard browser test skipped: ${missing}`);

describe.skipIf(missing !== undefined)("dashboard in headless Chromium", () => {
  let edge: EdgeFixture;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    edge = await startEdgeFixture();
    // Real sessions with stored state, spread over the three origins.
    const sessions: { token: string; origin: string }[] = [];
    for (let i = 0; i < SESSIONS; i++) sessions.push(await edge.store("new", { cart: [`item-${i}`] }));
    await until("the pool to count every session", async () => {
      const s = await edge.admin<Stats>("stats");
      return totalSessions(s) === SESSIONS ? s : undefined;
    });
    // Something on the timeline: origin-c drains now, and its sessions are re-pinned on their next request.
    await edge.admin("origins/origin-c/drain", { method: "POST", body: { in: 0 } });
    for (const s of sessions.filter((x) => x.origin === "origin-c"))
      await until("a re-pin away from origin-c", async () => {
        const next = await edge.store(s.token, { seen: true });
        s.token = next.token || s.token;
        return next.origin !== "origin-c" ? next : undefined;
      });
    await until("origin-c to finish draining", async () => {
      const s = await edge.admin<Stats>("stats");
      const c = s.origins.find((o) => o.id === "origin-c");
      return c?.drain?.status === "complete" && totalSessions(s) === SESSIONS ? s : undefined;
    });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await edge?.stop();
  });

  it("signs in with the admin token and gets an HttpOnly cookie", async () => {
    await page.goto(`${edge.url}/__edge/`);
    await page.getByLabel("Admin token").fill(edge.adminToken);
    await Promise.all([page.waitForURL(`${edge.url}/__edge/`), page.getByRole("button", { name: "Sign in" }).click()]);
    await page.locator("body[data-ready='1']").waitFor();
    const [cookie, ...others] = await context.cookies();
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({ name: COOKIE, path: "/__edge/", httpOnly: true, secure: true, sameSite: "Strict" });
    expect(cookie?.value).not.toContain(edge.adminToken);
    expect(await page.evaluate("document.cookie")).toBe("");
  });

  it("shows the sessions that exist, per origin and per region, as the API counts them", async () => {
    const api = await edge.admin<Stats>("stats");
    expect(totalSessions(api)).toBe(SESSIONS);
    for (const o of api.origins) {
      const card = page.locator(`[data-origin="${o.id}"]`);
      await expect.poll(() => card.locator("[data-field=sessions]").textContent()).toBe(String(o.sessions));
      const bar = page.locator(`svg[data-chart=origins] [data-bar="${o.id}"] .value`);
      expect(await bar.textContent()).toBe(String(o.sessions));
    }
    expect(await page.locator("[data-kpi=sessions] b").textContent()).toBe(String(SESSIONS));
    expect(api.regions.reduce((n, r) => n + r.sessions, 0)).toBe(SESSIONS);
    for (const r of api.regions)
      expect(await page.locator(`[data-region="${r.region}"] b`).getAttribute("data-value")).toBe(String(r.sessions));
    expect(await page.locator("svg[data-chart=regions] .big").textContent()).toBe(String(SESSIONS));
    // The re-pins and the drain are on the timeline and in the list.
    expect(await page.locator("svg[data-chart=timeline] [data-event=session_repinned]").count()).toBeGreaterThan(0);
    expect(await page.locator("#events [data-event=drain_complete]").count()).toBe(1);
    expect(await page.locator('[data-origin="origin-c"] [data-pill=drained]').textContent()).toBe("Drained");
  });

  it("drains an origin from its card, and the API agrees", async () => {
    const card = page.locator('[data-origin="origin-a"]');
    await card.getByLabel("drain deadline in seconds").fill("60");
    await card.getByRole("button", { name: "Drain", exact: true }).click();
    await card.getByRole("button", { name: "Confirm drain" }).click();
    await card.locator("[data-pill=draining]").waitFor();
    expect(await card.getAttribute("data-state")).toBe("draining");
    await card.getByRole("button", { name: "Undrain" }).waitFor();
    const a = (await edge.admin<Stats>("stats")).origins.find((o) => o.id === "origin-a");
    expect(a?.drain?.status).toBe("draining");
    const left = Date.parse(a?.drain?.deadline ?? "") - Date.now();
    expect(left).toBeGreaterThan(30_000);
    expect(left).toBeLessThanOrEqual(60_000);
    await expect.poll(() => page.locator("[data-kpi=drained] b").textContent()).toBe("2");

    await mkdir(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, "dashboard.png"), fullPage: true });
  });

  it("opens from a link on another site, whose navigation carries no SameSite=Strict cookie", async () => {
    // localhost and 127.0.0.1 are different sites: the page arrives as the sign-in form, checks once, and reloads.
    const other = await context.newPage();
    await other.goto(`${edge.url.replace("127.0.0.1", "localhost")}/elsewhere`);
    // The sign-in form's script replaces the page only when the first load was not the dashboard.
    const loads: string[] = [];
    other.on("request", (r) => {
      if (r.isNavigationRequest()) loads.push(new URL(r.url()).pathname);
    });
    await other.evaluate(`location.href = ${JSON.stringify(`${edge.url}/__edge/`)}`);
    await other.locator("body[data-ready='1']").waitFor();
    expect(loads).toEqual(["/__edge/", "/__edge/"]);
    expect(await other.locator("[data-kpi=sessions] b").textContent()).toBe(String(SESSIONS));
    await other.close();
  });

  it("reports its page weight and time to first render (printed, not asserted)", async () => {
    const figures = await measurePageLoad(context, `${edge.url}/__edge/`);
    await mkdir(RESULTS, { recursive: true });
    await writeFile(join(RESULTS, "dashboard-figures.json"), `${JSON.stringify(figures, null, 2)}\n`);
    const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    const w = figures.pageWeight;
    console.log(
      `dashboard page weight: ${kib(w.transferred)} transferred in ${figures.assets.length} requests ` +
        `(${kib(w.body)} uncompressed, ${kib(w.gzip)} gzipped); first contentful paint ${figures.firstContentfulPaintMs} ms, ` +
        `first render with data ${figures.firstDataRenderMs} ms; each refresh: /__edge/stats ` +
        `${kib(figures.api.find((r) => r.url.endsWith("/stats"))?.transferred ?? 0)}`,
    );
    expect(figures.assets.map((a) => a.type).sort()).toEqual(["Document", "Script", "Stylesheet"]);
  });

  it("signs out", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("body[data-view=signin]").waitFor();
    expect((await context.cookies()).filter((c) => c.name === COOKIE)).toEqual([]);
  });
});
