/**
 * The chaos test, bounded: ~24 concurrent clients (API tokens and cookies)
 * writing unique keys through real origins into the real Worker (workerd via
 * the Miniflare API, real Durable Objects and KV, the default 3 s pool cache),
 * while sessions are migrated (single, concurrent, evacuation, automatic), a
 * region goes down and comes back, origins are killed mid-request, and logins
 * race the client's own requests. Then everything is read back.
 *
 * What a user would notice, asserted: an acknowledged write that is gone, a
 * change applied twice, two tokens of one session reading different things, a
 * login or logout that did not hold, a 5xx outside the contract. The long form
 * is `npm run chaos`; docs/reliability.md has the method and the figures.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Counter, ProblemKind } from "../chaos/ledger.ts";
import { problemLines } from "../chaos/report.ts";
import { type ChaosResult, runChaos } from "../chaos/run.ts";

let result: ChaosResult;

beforeAll(async () => {
  result = await runChaos({ durationMs: 7_000, clients: 24, seed: 1 });
}, 90_000);

/** The count, with the first problems of those kinds as the failure message (which scenario, session, write). */
function check(counters: Counter[], kinds: ProblemKind[]): { n: number; why: string } {
  const totals = result.ledger.totals();
  const n = counters.reduce((sum, c) => sum + totals[c], 0);
  const problems = result.ledger.problems.filter((p) => kinds.includes(p.kind));
  return { n, why: `\n${problemLines(problems, 5).join("\n")}\n` };
}

describe("chaos (bounded): migrations, a region outage, origin kills and login races at once", () => {
  it("ran: every scenario's clients had writes acknowledged, and the outage hit sessions", () => {
    for (const s of result.scenarios)
      expect(result.ledger.scenarios.get(s.name)?.writesAcked ?? 0, s.name).toBeGreaterThan(0);
    expect(result.ledger.outages.length).toBeGreaterThan(0);
  });

  it("loses no acknowledged write", () => {
    const { n, why } = check(["lost"], ["lost"]);
    expect(n, why).toBe(0);
  });

  it("applies no write twice (versions match the keys; no POST reaches origins twice)", () => {
    const { n, why } = check(["appliedTwice", "originDuplicates"], ["applied-twice", "origin-duplicate"]);
    expect(n, why).toBe(0);
  });

  it("shows one truth per session: old tokens, the latest token and the operator API agree", () => {
    const { n, why } = check(["twoTruths"], ["two-truths"]);
    expect(n, why).toBe(0);
  });

  it("keeps every acknowledged login and logout", () => {
    const { n, why } = check(["loginsLost", "logoutsLost"], ["login-lost", "logout-lost"]);
    expect(n, why).toBe(0);
  });

  it("answers no 5xx but documented 503s with Retry-After (and 502/504 for a POST whose origin died)", () => {
    const { n, why } = check(["bad5xx"], ["bad-5xx"]);
    expect(n, why).toBe(0);
  });
});
