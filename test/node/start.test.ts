/**
 * `npm start` as a newcomer runs it: the banner points at the dashboard, the
 * admin token reaches the Worker as a secret (never on a command line, where
 * `ps` shows it to every user), and each run starts with empty state.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, PROJECT_ROOT, spawnManaged } from "./support/wrangler-dev.ts";

/** Every process command line on this machine that contains `needle`. */
function commandLinesWith(needle: string): string[] {
  const hits: string[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (args.includes(needle)) hits.push(`${pid}: ${args.slice(0, 200)}`);
    } catch {
      // gone meanwhile
    }
  }
  return hits;
}

describe("npm start", () => {
  const started: { stop(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
  });

  async function start(): Promise<{ base: string; token: string; banner: () => string; stop(): Promise<void> }> {
    const port = await freePort();
    const proc = spawnManaged("npm start", process.execPath, [join(PROJECT_ROOT, "scripts", "start.ts")], {
      env: { ...process.env, PORT: String(port), WRANGLER_SEND_METRICS: "false" },
    });
    started.push(proc);
    const [, token] = await proc.waitForLine(/^ ADMIN_TOKEN:\s+(\S+)/, 90_000);
    return { base: `http://127.0.0.1:${port}`, token: token ?? "", banner: proc.output, stop: () => proc.stop() };
  }

  it("prints the dashboard URL, passes the admin token as a secret, and starts each run empty", async () => {
    const first = await start();
    expect(first.banner()).toContain(`Operator dashboard: ${first.base}/__edge/`);
    expect(first.banner()).toMatch(/every run starts empty/);
    expect(first.banner()).not.toMatch(/Missing required secrets/);
    const auth = { authorization: `Bearer ${first.token}` };
    expect((await fetch(`${first.base}/__edge/status`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${first.base}/__edge/`)).status).toBe(200);
    expect(commandLinesWith(first.token)).toEqual([]);

    // A session with stored state, then a restart: the new run's pool has never seen it.
    const res = await fetch(`${first.base}/cart`, {
      method: "POST",
      headers: { "x-edge-session-token": "new", "content-type": "application/x-www-form-urlencoded" },
      body: "item=apple",
    });
    expect(res.status).toBeLessThan(400);
    const counted = async (base: string, token: string) => {
      const stats = (await (
        await fetch(`${base}/__edge/stats`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as {
        totals: { sessions: number };
      };
      return stats.totals.sessions;
    };
    await expect.poll(() => counted(first.base, first.token), { timeout: 10_000 }).toBe(1);
    await first.stop();

    const second = await start();
    expect(await counted(second.base, second.token)).toBe(0);
    await second.stop();
  }, 180_000);
});
