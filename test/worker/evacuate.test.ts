import { describe, expect, it } from "vitest";
import { BrowserClient } from "./harness.ts";
import { admin, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { loginWith, sessionOf, snapshotAtLeast, storedAt } from "./session-admin.ts";

describe("evacuating a region", () => {
  it("migrates every session homed there, streaming progress, and leaves others alone", async () => {
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins, { AUTO_MIGRATE: "false" });
    const homed: { client: BrowserClient; sid: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const client = new BrowserClient(e);
      await client.send("/", loginWith({ i }));
      homed.push({ client, sid: String((await sessionOf(client)).sid) });
    }
    const elsewhere = new BrowserClient(e);
    await elsewhere.send("/", { ...loginWith({ far: true }), cf: { continent: "OC", country: "AU" } });
    const farSid = String((await sessionOf(elsewhere, "/echo", { continent: "OC", country: "AU" })).sid);
    for (const h of homed) await snapshotAtLeast(h.sid, 1);
    await snapshotAtLeast(farSid, 1);

    const res = await admin(e, "POST", "/regions/enam/evacuate", { to: "wnam" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/ndjson/);
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = lines.at(-1);
    expect(done).toMatchObject({ done: true, region: "enam", migrated: 5, failed: 0 });
    expect(
      lines
        .filter((l) => l.status === "migrated")
        .map((l) => l.sid)
        .sort(),
    ).toEqual(homed.map((h) => h.sid).sort());

    for (const h of homed)
      expect(await sessionOf(h.client)).toMatchObject({ sid: h.sid, reg: "wnam", ep: 2, sub: "ada" });
    expect(await storedAt(farSid, 1)).toMatchObject({ status: "active", region: "oc" });
  }, 30_000);
});
