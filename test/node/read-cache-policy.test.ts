/** The read cache's rules (src/cache/policy.ts), as pure functions: what may be answered from memory, and when. */
import { describe, expect, it } from "vitest";
import { covers, readDecision, replaces, type StateRef } from "../../src/cache/policy.ts";

const at = (ep: number, ver: number, oid = "a"): StateRef => ({ ep, ver, oid });
const PERIOD = 5000;
const entry = (ref: StateRef, confirmedAt: number, confirmStartedAt?: number) => ({
  ref,
  confirmedAt,
  ...(confirmStartedAt !== undefined ? { confirmStartedAt } : {}),
});

describe("covers: a token is a lower bound", () => {
  it.each([
    ["the same version and origin", at(1, 3), at(1, 3), true],
    ["a newer version", at(1, 4), at(1, 3), true],
    ["a newer epoch, whatever its version", at(2, 0), at(1, 9), true],
    ["an older version (the client wrote elsewhere)", at(1, 3), at(1, 4), false],
    ["an older epoch (the client's session moved)", at(1, 9), at(2, 0), false],
    ["the same version on another origin (a re-pin the client already holds)", at(1, 3, "a"), at(1, 3, "b"), false],
    ["a newer version on another origin", at(1, 4, "a"), at(1, 3, "b"), true],
  ])("%s", (_what, held, named, expected) => {
    expect(covers(held, named)).toBe(expected);
  });
});

describe("readDecision", () => {
  it("strict mode never answers from memory", () => {
    expect(readDecision(entry(at(1, 1), 0), at(1, 1), 1, 0, false)).toEqual({ serve: false, why: "strict" });
  });

  it("a session the pool lists as ended is never answered from memory, however fresh its copy", () => {
    expect(readDecision(entry(at(1, 1), 1000), at(1, 1), 1001, PERIOD, true)).toEqual({ serve: false, why: "ended" });
  });

  it("a copy answers until the period since its confirmation has passed, and not from then on", () => {
    const e = entry(at(1, 1), 10_000);
    expect(readDecision(e, at(1, 1), 10_000 + PERIOD - 1, PERIOD, false).serve).toBe(true);
    expect(readDecision(e, at(1, 1), 10_000 + PERIOD, PERIOD, false)).toEqual({ serve: false, why: "expired" });
  });

  it("a copy confirmed in the future (a clock step back) is not trusted", () => {
    expect(readDecision(entry(at(1, 1), 10_000), at(1, 1), 9_000, PERIOD, false)).toEqual({
      serve: false,
      why: "expired",
    });
  });

  it("a copy behind the token asks the object", () => {
    expect(readDecision(entry(at(1, 1), 10_000), at(1, 2), 10_001, PERIOD, false)).toEqual({
      serve: false,
      why: "behind",
    });
  });

  it("past 80 % of the period, one request starts a background confirmation; the next ones do not", () => {
    const e = entry(at(1, 1), 10_000);
    expect(readDecision(e, at(1, 1), 13_999, PERIOD, false)).toEqual({ serve: true, confirm: false });
    expect(readDecision(e, at(1, 1), 14_000, PERIOD, false)).toEqual({ serve: true, confirm: true });
    const started = entry(at(1, 1), 10_000, 14_000);
    expect(readDecision(started, at(1, 1), 14_900, PERIOD, false)).toEqual({ serve: true, confirm: false });
  });
});

describe("replaces: an older answer never brings back an older state", () => {
  const held = entry(at(1, 5), 10_000);
  it("a newer state replaces, whenever it was asked", () => {
    expect(replaces(held, at(1, 6), 9_000)).toBe(true);
    expect(replaces(held, at(2, 0), 9_000)).toBe(true);
  });
  it("an older state never does (a background read that raced a write made here)", () => {
    expect(replaces(held, at(1, 4), 20_000)).toBe(false);
  });
  it("the same state replaces when asked no earlier (a confirmation, or a re-pin's new origin)", () => {
    expect(replaces(held, at(1, 5, "b"), 10_000)).toBe(true);
    expect(replaces(held, at(1, 5, "b"), 9_999)).toBe(false);
  });
  it("anything replaces nothing", () => {
    expect(replaces(undefined, at(1, 0), 0)).toBe(true);
  });
});
