/**
 * The dashboard's truth, as pure functions over the pool view: one state per
 * origin with its reason, lanes for configured origins only, and totals that
 * agree.
 */
import { describe, expect, it } from "vitest";
import { originHealth } from "../../src/admin/health.ts";
import { statsView } from "../../src/admin/origins.ts";
import { parseConfig } from "../../src/config/index.ts";
import type { OriginRuntime, PoolView } from "../../src/origins/index.ts";
import { edgeEnv } from "./harness.ts";

const NOW = Date.parse("2026-11-30T12:00:00Z");
const origin = (over: Partial<{ weight: number; health: unknown }> = {}) =>
  ({ id: "a", url: "http://a", weight: 1, ...over }) as Parameters<typeof originHealth>[0];
const rt = (over: Partial<OriginRuntime> = {}): OriginRuntime => ({
  health: { state: "healthy", since: 0, successes: 0, failures: 0 },
  ejections: 0,
  sessions: 0,
  ...over,
});
const unhealthy = { state: "unhealthy" as const, since: 0, successes: 0, failures: 3, lastError: "status 503" };

describe("originHealth: one state per origin, the worst that applies, with the reason", () => {
  const cases: [string, OriginRuntime | undefined, { target: string; mode: "down" | "slow" }[], string, RegExp][] = [
    ["nothing known yet", undefined, [], "healthy", /passive health only/],
    ["failing active checks", rt({ health: unhealthy }), [], "down", /failing active health checks \(status 503\)/],
    ["ejected", rt({ ejectedUntil: NOW + 1000 }), [], "ejected", /outlier detection/],
    ["an ejection that has run out", rt({ ejectedUntil: NOW - 1 }), [], "healthy", /passive/],
    ["draining", rt({ drain: { since: NOW, deadline: NOW + 60_000 } }), [], "draining", /move at the deadline/],
    ["drained", rt({ drain: { since: NOW, deadline: null, completedAt: NOW } }), [], "drained", /no sessions left/],
    ["a fault marks it down", rt(), [{ target: "origin:a", mode: "down" }], "down", /fault injection/],
    ["a fault on another origin", rt(), [{ target: "origin:b", mode: "down" }], "healthy", /passive/],
    ["a slow fault", rt(), [{ target: "origin:a", mode: "slow" }], "healthy", /slowed by fault injection/],
    [
      "ejected and draining: ejected wins, both listed",
      rt({ ejectedUntil: NOW + 1000, drain: { since: NOW, deadline: null } }),
      [],
      "ejected",
      /outlier/,
    ],
    [
      "down, ejected and drained: down wins",
      rt({ health: unhealthy, ejectedUntil: NOW + 1, drain: { since: 0, deadline: null, completedAt: 1 } }),
      [],
      "down",
      /health checks/,
    ],
  ];
  it.each(cases)("%s", (_name, runtime, faults, state, reason) => {
    const view = originHealth(origin(), runtime, faults, NOW);
    expect(view.state).toBe(state);
    expect(view.reason).toMatch(reason);
    expect(view.conditions[0]).toBe(state);
  });

  it("never says healthy while any condition holds", () => {
    const got = originHealth(
      origin({ weight: 0 }),
      rt({ ejectedUntil: NOW + 1, drain: { since: 0, deadline: 0 } }),
      [],
      NOW,
    );
    expect(got.conditions).toEqual(["ejected", "draining", "idle"]);
    expect(got.conditions).not.toContain("healthy");
  });
});

describe("statsView", () => {
  const view = (over: Partial<PoolView>): PoolView => ({
    fetchedAt: NOW,
    origins: {},
    regions: {},
    faults: [],
    events: [],
    ...over,
  });

  it("totals agree after a restart with another pool: sessions on removed origins are counted apart", async () => {
    const cfg = await parseConfig({ ...edgeEnv() });
    const stats = statsView(
      cfg,
      view({
        // Six sessions still pinned to origin-x, which a restart removed from ORIGINS.
        origins: { alpha: rt({ sessions: 7 }), bravo: rt({ sessions: 5 }), "origin-x": rt({ sessions: 6 }) },
        regions: { enam: 10, weur: 8 },
      }),
      NOW,
    );
    expect(stats.origins.map((o) => o.id)).toEqual(["alpha", "bravo", "charlie"]);
    expect(stats.totals).toEqual({
      sessions: 18,
      onListedOrigins: 12,
      byRegion: 18,
      unlisted: [{ id: "origin-x", sessions: 6 }],
    });
  });

  it("puts events on lanes of configured origins only: fault targets map to their origin, the rest to none", async () => {
    const cfg = await parseConfig({ ...edgeEnv() });
    const at = NOW - 1000;
    const stats = statsView(
      cfg,
      view({
        events: [
          { at, event: "fault_injected", oid: "origin:bravo", detail: "down" },
          { at, event: "fault_injected", oid: "region:weur", detail: "down" },
          { at, event: "faults_cleared", oid: "*" },
          { at, event: "origin_ejected", oid: "origin-x" },
          { at, event: "drain_started", oid: "alpha" },
        ],
      }),
      NOW,
    );
    expect(stats.events.map((e) => e.lane)).toEqual(["bravo", null, null, null, "alpha"]);
  });
});
