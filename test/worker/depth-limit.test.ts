/** MAX_SESSION_DEPTH: whatever the layer accepts, it can store, migrate, snapshot and restore. */
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { parseDirectives } from "../../src/proxy/directives.ts";
import { type Json, jsonDepth } from "../../src/session/merge-patch.ts";
import { applyChange, newRecord } from "../../src/session/record.ts";
import { admin } from "./pool-harness.ts";
import { migrate, sessionOf, snapshotAtLeast, strictLoggedInSession } from "./session-admin.ts";

/** A document `{"d": [[…]]}` that nests exactly `depth` levels (the outer object is the first). */
const documentOfDepth = (depth: number) => `{"d":${"[".repeat(depth - 1)}${"]".repeat(depth - 1)}}`;
const set = (raw: string) => ({ respond: { headers: { "x-edge-session-set": raw } } });

const setup = (overrides: Record<string, string> = {}) => strictLoggedInSession(1, overrides);

describe("nesting depth (MAX_SESSION_DEPTH)", () => {
  it("refuses a 3.9 KB document of 1,950 nested arrays; the session keeps its data and can still move", async () => {
    const { e, client, sid } = await setup();
    const deep = documentOfDepth(1951);
    expect(deep.length).toBeGreaterThan(3800);
    const logged = vi.spyOn(console, "warn");
    const res = await client.send("/", set(deep));
    // The origin's answer is passed on; the directive is refused and logged (it is the origin's bug).
    expect(res.status).toBe(200);
    expect(logged.mock.calls.some((c) => String(c[0]).includes('"code":"ERR_SET_TOO_DEEP"'))).toBe(true);
    logged.mockRestore();
    expect(await sessionOf(client)).toMatchObject({ sid, sub: "ada", data: { cart: ["tea"] }, ver: 1 });
    expect((await migrate(e, sid, { region: "weur" })).status).toBe(200);
    expect(await sessionOf(client)).toMatchObject({ sid, reg: "weur", data: { cart: ["tea"] } });
  });

  it("refuses login claims nested past the limit instead of crashing on them", async () => {
    const { client } = await setup();
    const claims = `${"[".repeat(4000)}${"]".repeat(4000)}`;
    const res = await client.send("/", {
      respond: { headers: { "x-edge-session-login": `{"sub":"eve","claims":{"x":${claims}}}` } },
    });
    expect(res.status).toBe(200);
    expect(await sessionOf(client)).toMatchObject({ sub: "ada" });
  });

  for (const limit of [64, 256]) {
    it(`a document exactly at the limit (${limit}) is accepted, migrated, snapshotted and restored`, async () => {
      const { e, client, sid } = await setup(limit === 64 ? {} : { MAX_SESSION_DEPTH: String(limit) });
      const doc = JSON.parse(documentOfDepth(limit)) as Json;
      expect(jsonDepth(doc)).toBe(limit);
      await client.send("/", set(documentOfDepth(limit)));
      expect(await sessionOf(client)).toMatchObject({ ver: 2, data: { cart: ["tea"], ...(doc as object) } });
      // One level more is refused.
      await client.send("/", set(documentOfDepth(limit + 1)));
      expect((await sessionOf(client)).ver).toBe(2);

      const moved = await migrate(e, sid, { region: "apac" });
      expect(moved.status, await moved.clone().text()).toBe(200);
      expect(await sessionOf(client)).toMatchObject({ ep: 2, reg: "apac", ver: 2 });
      const { metadata } = await snapshotAtLeast(sid, 2);
      expect(metadata).toMatchObject({ ep: 2, reg: "apac" });

      // Its region goes down: the session comes back from the snapshot, deep document included.
      expect((await admin(e, "POST", "/faults", { target: "region:apac", mode: "down" })).status).toBe(200);
      const restored = await sessionOf(client);
      expect(restored).toMatchObject({ sid, ep: 3, sub: "ada", ver: 2 });
      expect(restored.reg).not.toBe("apac");
      expect(restored.data).toEqual({ cart: ["tea"], ...(doc as object) });
    });
  }

  it("the store refuses a change whose result nests past the limit (ERR_SESSION_TOO_DEEP)", () => {
    const meta = {
      sid: "s",
      epoch: 1,
      origin: "o",
      region: "enam",
      createdAt: 0,
      idleMs: 60_000,
      absoluteMs: 600_000,
      maxDataBytes: 1 << 20,
      pool: "p",
    };
    const r = { ...newRecord(meta, 0), data: { a: { b: { c: 1 } } }, version: 3 };
    expect(applyChange(r, { patch: { x: 1 } }, 1 << 20, 1, 1000, 3)).toMatchObject({ ok: true });
    expect(applyChange(r, { patch: { a: { b: { c: { d: 1 } } } } }, 1 << 20, 1, 1000, 3)).toMatchObject({
      ok: false,
      result: { kind: "rejected", code: "ERR_SESSION_TOO_DEEP" },
    });
  });

  it("parseDirectives names the problem", () => {
    const limits = {
      forwardedBytes: 6144,
      forwardedDataBytes: 4096,
      loginClaimsBytes: 2048,
      patchBytes: 8192,
      sessionBytes: 262144,
      sessionKeys: 1000,
      sessionDepth: 4,
    };
    const deep = (n: number) => `{"a":${"[".repeat(n - 1)}${"]".repeat(n - 1)}}`;
    expect(parseDirectives(new Headers({ "x-edge-session-set": deep(4) }), limits).problems).toEqual([]);
    expect(parseDirectives(new Headers({ "x-edge-session-set": deep(5) }), limits).problems[0]?.code).toBe(
      "ERR_SET_TOO_DEEP",
    );
    const login = (n: number) => `{"sub":"a","claims":${deep(n)}}`;
    expect(parseDirectives(new Headers({ "x-edge-session-login": login(4) }), limits).change?.login?.sub).toBe("a");
    expect(parseDirectives(new Headers({ "x-edge-session-login": login(5) }), limits).problems[0]?.code).toBe(
      "ERR_LOGIN_TOO_DEEP",
    );
  });
});

/** The reference: the textbook recursive definition (only ever given shallow values). */
function referenceDepth(v: Json): number {
  if (typeof v !== "object" || v === null) return 0;
  const children: Json[] = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(referenceDepth));
}

describe("jsonDepth (fast-check, against the recursive reference)", () => {
  it("equals the reference on any JSON value, and stops at limit + 1 past a limit", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }) as fc.Arbitrary<Json>, fc.nat(14), (v, limit) => {
        const depth = referenceDepth(v);
        expect(jsonDepth(v)).toBe(depth);
        expect(jsonDepth(v, limit)).toBe(depth > limit ? limit + 1 : depth);
        // Round-trips through the codecs' own serializer keep the depth.
        expect(jsonDepth(JSON.parse(JSON.stringify(v)) as Json)).toBe(depth);
      }),
      { numRuns: 5000 },
    );
  });

  it("takes arbitrarily deep input without a stack overflow, returning early", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.boolean(), (n, objects) => {
        let v: Json = 1;
        for (let i = 0; i < n; i++) v = objects ? { k: v } : [v];
        expect(jsonDepth(v, 64)).toBe(Math.min(n, 65));
        expect(jsonDepth(v)).toBe(n);
      }),
      { numRuns: 50 },
    );
  });
});
