/** Pure policy and codec functions: RFC vectors, properties (fast-check), tables. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { locationHintFor, WeightedRoundRobin } from "../../src/origins/index.ts";
import { parseDirectives } from "../../src/proxy/directives.ts";
import { withoutCookies } from "../../src/proxy/headers.ts";
import { upstreamUrl } from "../../src/proxy/upstream.ts";
import { applyMergePatch, type Json } from "../../src/session/index.ts";

const LIMITS = {
  forwardedBytes: 6144,
  forwardedDataBytes: 4096,
  loginClaimsBytes: 2048,
  patchBytes: 8192,
  sessionBytes: 262144,
  sessionKeys: 1000,
  sessionDepth: 64,
};

describe("applyMergePatch", () => {
  // RFC 7396 Appendix A, all test cases.
  const vectors: [Json, Json, Json][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(vectors)("RFC 7396 vector %j + %j", (target, patch, expected) => {
    expect(applyMergePatch(target, patch)).toEqual(expected);
  });

  const json = fc.jsonValue() as fc.Arbitrary<Json>;
  const object = fc.dictionary(fc.string(), json) as fc.Arbitrary<Json>;

  it("is idempotent and never modifies its inputs (2,000 cases)", () => {
    fc.assert(
      fc.property(object, object, (target, patch) => {
        const t = JSON.stringify(target);
        const p = JSON.stringify(patch);
        const once = applyMergePatch(target, patch);
        expect(applyMergePatch(once, patch)).toEqual(once);
        expect(JSON.stringify(target)).toBe(t);
        expect(JSON.stringify(patch)).toBe(p);
      }),
      { numRuns: 2000 },
    );
  });

  it("removes every key the patch sets to null, and keeps every other patched key", () => {
    fc.assert(
      fc.property(object, fc.dictionary(fc.string(), fc.option(fc.integer(), { nil: null })), (target, patch) => {
        const result = applyMergePatch(target, patch) as Record<string, unknown>;
        for (const [k, v] of Object.entries(patch)) {
          if (v === null) expect(Object.hasOwn(result, k)).toBe(false);
          else expect(result[k]).toBe(v);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("treats __proto__ as a plain key, never as a prototype change", () => {
    const result = applyMergePatch(
      {},
      JSON.parse('{"__proto__":{"polluted":true},"a":{"__proto__":{"x":1}}}'),
    ) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.hasOwn(result, "__proto__")).toBe(true);
    expect(JSON.stringify(result)).toBe('{"__proto__":{"polluted":true},"a":{"__proto__":{"x":1}}}');
  });
});

describe("parseDirectives", () => {
  it("never throws on arbitrary header values (2,000 cases)", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (set, login, ifv) => {
        const h = new Headers();
        const safe = (s: string) => s.replace(/[\r\n\0]/g, "");
        h.set("x-edge-session-set", safe(set));
        h.set("x-edge-session-login", safe(login));
        h.set("x-edge-session-set-if-version", safe(ifv));
        const { change, problems } = parseDirectives(h, LIMITS);
        expect(change === undefined || problems.length === 0).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("accepts any JSON object as a patch", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (patch) => {
        const body = JSON.stringify(patch);
        fc.pre(new TextEncoder().encode(body).byteLength <= LIMITS.patchBytes);
        const { change, problems } = parseDirectives(new Headers({ "x-edge-session-set": body }), LIMITS);
        expect(problems).toEqual([]);
        expect(change?.patch).toEqual(JSON.parse(body));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("upstreamUrl", () => {
  it("keeps the configured scheme, host and port whatever path the client sends (2,000 cases)", () => {
    fc.assert(
      fc.property(fc.webPath(), fc.webQueryParameters(), (path, query) => {
        // Request.url as the runtime hands it over: serialized.
        const requestUrl = new URL(`https://edge.test${path.startsWith("/") ? path : `/${path}`}?${query}`).href;
        const url = new URL(upstreamUrl("http://127.0.0.1:8080/base", requestUrl));
        expect(url.origin).toBe("http://127.0.0.1:8080");
        expect(url.pathname.startsWith("/base/")).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("sends a path that looks like an authority to the configured origin, with the query and without a fragment", () => {
    expect(upstreamUrl("http://127.0.0.1:8080/", "https://edge.test//evil.example/x?a=1#frag")).toBe(
      "http://127.0.0.1:8080//evil.example/x?a=1",
    );
    expect(upstreamUrl("http://127.0.0.1:8080/base/?ignored=1", "https://edge.test/")).toBe(
      "http://127.0.0.1:8080/base/",
    );
  });
});

describe("withoutCookies", () => {
  it("removes every copy of the named cookie and nothing else", () => {
    const ours = new Set(["__Host-edge-session"]);
    expect(withoutCookies("a=1; __Host-edge-session=x; b=2; __Host-edge-session=y", ours)).toBe("a=1; b=2");
    expect(withoutCookies("__Host-edge-session=x", ours)).toBeUndefined();
    expect(withoutCookies("__Host-edge-session-other=1", ours)).toBe("__Host-edge-session-other=1");
  });
});

describe("WeightedRoundRobin", () => {
  it("hands out new sessions in exact proportion to weights, interleaved", () => {
    const rr = new WeightedRoundRobin();
    const pool = [
      { id: "a", url: "http://a", weight: 1 },
      { id: "b", url: "http://b", weight: 2 },
      { id: "c", url: "http://c", weight: 3 },
      { id: "off", url: "http://off", weight: 0 },
    ];
    const picks = Array.from({ length: 60 }, () => rr.next(pool)?.id);
    const count = (id: string) => picks.filter((p) => p === id).length;
    expect([count("a"), count("b"), count("c"), count("off")]).toEqual([10, 20, 30, 0]);
    expect(new Set(picks.slice(0, 6))).toEqual(new Set(["a", "b", "c"]));
  });
});

describe("locationHintFor", () => {
  const table: [Record<string, string | number> | undefined, string][] = [
    [undefined, "enam"],
    [{ continent: "NA", country: "US", longitude: "-122.4" }, "wnam"],
    [{ continent: "NA", country: "US", longitude: "-74.0" }, "enam"],
    [{ continent: "SA", country: "BR" }, "sam"],
    [{ continent: "EU", country: "DE" }, "weur"],
    [{ continent: "EU", country: "PL" }, "eeur"],
    [{ continent: "AS", country: "JP" }, "apac"],
    [{ continent: "AS", country: "AE" }, "me"],
    [{ continent: "AF", country: "ZA" }, "afr"],
    [{ continent: "OC", country: "AU" }, "oc"],
    [{ continent: "AN" }, "enam"],
  ];
  it.each(table)("%j → %s", (loc, hint) => {
    expect(locationHintFor(loc, "enam")).toBe(hint);
  });
});
