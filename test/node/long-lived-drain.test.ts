/**
 * A bounded run of the drain experiment (npm run bench:drain runs 200): real
 * `ws` clients through the layer under `wrangler dev`; draining their origin
 * closes them with 1012 in batches before the deadline, and each reconnects
 * onto another origin with its session. Timings are measured by the bench,
 * not asserted here.
 */
import { describe, expect, it } from "vitest";
import { runDrainExperiment } from "./support/drain-experiment.ts";

describe("draining an origin with open WebSockets", () => {
  it("closes every socket with 1012 before the deadline, in more than one batch; each reconnects elsewhere, same session", async () => {
    const r = await runDrainExperiment({ sockets: 24, drainSeconds: 6 });
    const n = r.outcomes.length;
    expect(n).toBeGreaterThanOrEqual(20);
    expect(r.closedBeforeDeadline).toBe(n);
    expect(r.movedWithSession).toBe(n);
    expect(r.batches.length).toBeGreaterThan(1);
    expect(r.reported.drainClosed).toBe(n);
    expect(r.reported.openOnDrained).toBe(0);
  });
});
