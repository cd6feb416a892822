import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeSnapshot,
  encodeSnapshot,
  importSnapshotKey,
  type SessionSnapshot,
} from "../../src/replication/codec.ts";

const KEY_A = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
const KEY_B = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
const SID = "S".repeat(24);

function snapshot(over: Partial<SessionSnapshot> = {}): SessionSnapshot {
  return {
    sid: SID,
    epoch: 3,
    version: 42,
    region: "weur",
    origin: "o-1",
    data: { cart: ["tea"], n: 1 },
    auth: { sub: "ada", claims: { role: "admin" } },
    createdAt: 1,
    updatedAt: 2,
    lastSeen: 3,
    takenAt: 4,
    ...over,
  };
}

describe("snapshot codec", () => {
  it("round-trips any session document (500 cases)", async () => {
    const key = await importSnapshotKey(KEY_A);
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), fc.nat(), fc.nat(), async (data, epoch, version) => {
        const s = snapshot({ data: data as SessionSnapshot["data"], epoch, version });
        const decoded = await decodeSnapshot(key, SID, await encodeSnapshot(key, s));
        expect(decoded).toEqual({ ok: true, snapshot: JSON.parse(JSON.stringify(s)) });
      }),
      { numRuns: 500 },
    );
  });

  it("refuses, never throws, for any damage to the stored bytes (500 cases)", async () => {
    const key = await importSnapshotKey(KEY_A);
    const good = await encodeSnapshot(key, snapshot());
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
        const damaged = good.slice(0, at) + String.fromCharCode(good.charCodeAt(at) ^ xor) + good.slice(at + 1);
        const decoded = await decodeSnapshot(key, SID, damaged);
        if (decoded.ok) expect(decoded.snapshot).toEqual(snapshot());
        else expect(decoded.code).toMatch(/^ERR_SNAPSHOT_/);
      }),
      { numRuns: 500 },
    );
  });

  it("names each kind of bad snapshot", async () => {
    const key = await importSnapshotKey(KEY_A);
    const good = await encodeSnapshot(key, snapshot());
    const env = JSON.parse(good) as Record<string, unknown>;
    const cases: [string, string, string][] = [
      ["truncated", good.slice(0, good.length / 2), "ERR_SNAPSHOT_MALFORMED"],
      ["future format", JSON.stringify({ ...env, f: 2 }), "ERR_SNAPSHOT_FORMAT"],
      ["relabelled as a newer version", JSON.stringify({ ...env, ver: 43 }), "ERR_SNAPSHOT_MISMATCH"],
      ["relabelled as another epoch", JSON.stringify({ ...env, ep: 9 }), "ERR_SNAPSHOT_MISMATCH"],
      ["moved to another session", JSON.stringify({ ...env, sid: "T".repeat(24) }), "ERR_SNAPSHOT_MISMATCH"],
      ["checksum does not match", JSON.stringify({ ...env, sum: "AAAA" }), "ERR_SNAPSHOT_CORRUPT"],
    ];
    for (const [name, raw, code] of cases)
      expect((await decodeSnapshot(key, SID, raw)) as unknown, name).toMatchObject({ ok: false, code });
    expect(await decodeSnapshot(await importSnapshotKey(KEY_B), SID, good)).toMatchObject({
      ok: false,
      code: "ERR_SNAPSHOT_WRONG_KEY",
    });
  });

  it("refuses a key that is not 32 bytes of base64", async () => {
    await expect(importSnapshotKey("c2hvcnQ")).rejects.toThrow(/32 bytes/);
    await expect(importSnapshotKey("not base64 !!")).rejects.toThrow(/base64/);
  });
});
