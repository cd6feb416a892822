/**
 * The dashboard's per-user panel in headless Chromium: a user with two real
 * sessions (logged in through the real Worker under `wrangler dev`), looked up
 * by `sub`, and revoked with the panel's button after its confirmation.
 */
import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumMissing, launchChromium } from "./support/chromium.ts";
import { type EdgeFixture, type Stats, startEdgeFixture, until } from "./support/edge-fixture.ts";
import { PROJECT_ROOT } from "./support/wrangler-dev.ts";

const missing = chromiumMissing();
if (missing) console.warn(`dashboard user panel test skipped: ${missing}`);

/** An API client that logs in as `sub` on its first request; returns its token. */
async function loginAs(edge: EdgeFixture, sub: string): Promise<string> {
  const respond = { headers: { "x-edge-session-login": JSON.stringify({ sub }) } };
  const res = await fetch(`${edge.url}/login`, {
    headers: {
      "x-edge-session-token": "new",
      "x-test-respond": Buffer.from(JSON.stringify(respond)).toString("base64url"),
    },
  });
  await res.body?.cancel();
  expect(res.status).toBe(200);
  return res.headers.get("x-edge-session-token") ?? "";
}

describe.skipIf(missing !== undefined)("dashboard: a user's sessions", () => {
  let edge: EdgeFixture;
  let browser: Browser;
  let page: Page;
  const sub = `ada-${randomUUID().slice(0, 8)}`;
  const tokens: string[] = [];

  beforeAll(async () => {
    edge = await startEdgeFixture();
    for (let i = 0; i < 2; i++) tokens.push(await loginAs(edge, sub));
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${edge.url}/__edge/`);
    await page.getByLabel("Admin token").fill(edge.adminToken);
    await Promise.all([page.waitForURL(`${edge.url}/__edge/`), page.getByRole("button", { name: "Sign in" }).click()]);
    await page.locator("body[data-ready='1']").waitFor();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await edge?.stop();
  });

  it("lists the user's sessions as the API does", async () => {
    await page.getByLabel("user (sub)").fill(sub);
    await page.getByRole("button", { name: "Show sessions" }).click();
    await page.locator("[data-field=user-count]").waitFor();
    expect(await page.locator("[data-field=user-count]").textContent()).toBe(`2 live sessions of ${sub}`);
    const api = await edge.admin<{ sessions: { sid: string }[] }>(`users/${sub}/sessions`);
    const shown = await page
      .locator(".user-sessions li")
      .evaluateAll((els) => els.map((e) => e.getAttribute("data-sid")));
    expect(shown.sort()).toEqual(api.sessions.map((s) => s.sid).sort());
    expect(await page.locator('.user-sessions li[data-status="active"]').count()).toBe(2);
  });

  it("revokes them all after a confirmation; the clients are logged out and the timeline says so", async () => {
    const asked: string[] = [];
    page.once("dialog", (d) => {
      asked.push(d.message());
      void d.accept();
    });
    await page.getByRole("button", { name: "Revoke all" }).click();
    await expect.poll(() => page.locator("[data-field=user-count]").textContent()).toBe(`0 live sessions of ${sub}`);
    expect(asked).toEqual([`End all 2 sessions of ${sub}? They are logged out everywhere.`]);
    expect((await edge.admin<{ sessions: unknown[] }>(`users/${sub}/sessions`)).sessions).toEqual([]);
    for (const token of tokens) {
      const res = await fetch(`${edge.url}/`, { headers: { "x-edge-session-token": token } });
      const echo = (await res.json()) as { headers: Record<string, string> };
      const claims = JSON.parse(
        Buffer.from(String(echo.headers["x-edge-session"]).split(".")[1] ?? "", "base64url").toString(),
      );
      expect(claims.sub).toBeUndefined();
    }
    await until("the revocations on the timeline", async () => {
      const s = await edge.admin<Stats>("stats");
      return s.events.filter((e) => e.event === "user_sessions_revoked").length === 2 ? s : undefined;
    });
    await expect.poll(() => page.locator("#events [data-event=user_sessions_revoked]").count()).toBeGreaterThan(0);
    const results = join(PROJECT_ROOT, "test-results");
    await mkdir(results, { recursive: true });
    await page.screenshot({ path: join(results, "dashboard-users.png"), fullPage: true });
  });
});
