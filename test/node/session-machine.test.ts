/**
 * The session object's state machine (src/session/machine.ts), walked as a
 * transition table in plain Node: every state against every event, then the
 * multi-step protocols (snapshot, migration, restore + fence + catch-up) as
 * sequences of steps, the way the Durable Object shell runs them.
 */
import { describe, expect, it } from "vitest";
import {
  type Book,
  type Effect,
  EMPTY_BOOK,
  HANDOVER_ATTEMPTS_BEFORE_ABORT,
  type LogEntry,
  MAX_SNAPSHOT_LAG_MS,
  type MachineState,
  nextAlarm,
  type SessionEvent,
  SNAPSHOT_INTERVAL_MS,
  type Step,
  snapshotOwed,
  step,
} from "../../src/session/machine.ts";
import { newRecord, type SessionMeta, type SessionRecord, type StoredSession } from "../../src/session/record.ts";

const T0 = 1_800_000_000_000;
const meta: SessionMeta = {
  sid: "s".repeat(24),
  epoch: 1,
  origin: "o1",
  region: "enam",
  createdAt: T0,
  idleMs: 1_800_000,
  absoluteMs: 28_800_000,
  maxDataBytes: 262_144,
  maxKeys: 1000,
  pool: "default",
};

function active(over: Partial<SessionRecord> = {}): SessionRecord {
  return { ...newRecord(meta, T0), version: 3, data: { a: 1 }, dataBytes: 7, ...over };
}

type Kind = "fresh" | "active" | "frozen" | "moved" | "destroyed";

function stateOf(kind: Kind): MachineState {
  const book: Book = { snapshottedVersion: 3, snapshotted: true, lastSnapshotAt: T0 };
  switch (kind) {
    case "fresh":
      return { stored: undefined, book: EMPTY_BOOK };
    case "active":
      return { stored: active(), book };
    case "frozen":
      return {
        stored: active({ migration: { to: { epoch: 2, region: "weur" }, startedAt: T0, trigger: "operator" } }),
        book,
      };
    case "moved":
      return {
        stored: {
          status: "moved",
          sid: meta.sid,
          epoch: 1,
          to: { epoch: 2, region: "weur" },
          reason: "migrated",
          movedAt: T0,
          purgeAt: T0 + 3_600_000,
        },
        book,
      };
    case "destroyed":
      return {
        stored: {
          status: "destroyed",
          sid: meta.sid,
          epoch: 1,
          reason: "logout",
          endedAt: T0,
          purgeAt: T0 + 3_600_000,
        },
        book: EMPTY_BOOK,
      };
  }
}

function kindOf(s: StoredSession | undefined): Kind {
  if (!s) return "fresh";
  if (s.status === "active") return s.migration ? "frozen" : "active";
  return s.status;
}

const now = T0 + 5000;
const types = (effects: Effect[]) => effects.map((e) => e.type);
const result = (st: Step) => ("result" in st.reply ? (st.reply.result as { kind?: string }) : undefined);

describe("the transition table: every state, every request event", () => {
  const events: [string, SessionEvent][] = [
    ["read", { type: "read", meta }],
    ["write", { type: "write", meta, change: { patch: { b: 2 } } }],
    ["logout", { type: "write", meta, change: { logout: true } }],
    ["login", { type: "write", meta, change: { login: { sub: "ada" } } }],
    ["revoke", { type: "revoke", meta }],
    ["migrate", { type: "migrate", target: { region: "apac" }, trigger: "operator" }],
  ];
  // [state, event] → [state after, reply kind]
  const table: Record<Kind, Record<string, [Kind, string]>> = {
    fresh: {
      read: ["fresh", "fresh"],
      write: ["active", "ok"],
      logout: ["destroyed", "destroyed"],
      login: ["destroyed", "rotated"],
      revoke: ["destroyed", "destroyed"],
      migrate: ["fresh", "not_found"],
    },
    active: {
      read: ["active", "active"],
      write: ["active", "ok"],
      logout: ["destroyed", "destroyed"],
      login: ["destroyed", "rotated"],
      revoke: ["destroyed", "destroyed"],
      migrate: ["frozen", "pending"],
    },
    frozen: {
      read: ["frozen", "active"],
      write: ["frozen", "migrating"],
      logout: ["frozen", "migrating"],
      login: ["frozen", "migrating"],
      revoke: ["destroyed", "destroyed"],
      migrate: ["frozen", "pending"],
    },
    moved: {
      read: ["moved", "moved"],
      write: ["moved", "moved"],
      logout: ["moved", "moved"],
      login: ["moved", "moved"],
      revoke: ["moved", "moved"],
      migrate: ["moved", "moved"],
    },
    destroyed: {
      read: ["destroyed", "ended"],
      write: ["destroyed", "ended"],
      logout: ["destroyed", "ended"],
      login: ["destroyed", "ended"],
      revoke: ["destroyed", "ended"],
      migrate: ["destroyed", "ended"],
    },
  };
  for (const [kind, row] of Object.entries(table) as [Kind, Record<string, [Kind, string]>][])
    for (const [name, event] of events) {
      const [after, reply] = row[name] ?? ["fresh", "?"];
      it(`${kind} + ${name} → ${after} (${reply})`, () => {
        const out = step(stateOf(kind), event, now);
        expect(kindOf(out.state.stored)).toBe(after);
        expect(result(out)?.kind ?? result(out)).toBe(reply);
      });
    }
});

describe("snapshots are owed exactly when the version is ahead of the newest snapshot", () => {
  it("a write makes one owed; it is due one interval after the last one, not before", () => {
    const out = step(stateOf("active"), { type: "write", meta, change: { patch: { b: 2 } } }, T0 + 100);
    expect(snapshotOwed(out.state)).toBe(true);
    expect(nextAlarm(out.state)).toBe(T0 + SNAPSHOT_INTERVAL_MS);
    expect(types(out.effects)).toContain("appendLog");
  });

  it("a write that lands while the snapshot is in flight stays owed (the alarm never erases it)", () => {
    let s = step(stateOf("active"), { type: "write", meta, change: { patch: { b: 2 } } }, now).state; // v4
    const alarm = step(s, { type: "alarm" }, now + SNAPSHOT_INTERVAL_MS);
    expect(types(alarm.effects)).toContain("putSnapshot");
    s = alarm.state;
    // The shell awaits KV; meanwhile a write commits v5.
    s = step(s, { type: "write", meta, change: { patch: { c: 3 } } }, now + 1100).state;
    // The upload (of v4, read before the await) completes.
    s = step(s, { type: "snapshotWritten", version: 4 }, now + 1200).state;
    expect(s.book.snapshottedVersion).toBe(4);
    expect(snapshotOwed(s)).toBe(true);
    expect(nextAlarm(s)).toBe(now + 1200 + SNAPSHOT_INTERVAL_MS);
  });

  it("a snapshot that covers every write leaves nothing owed and trims the catch-up log", () => {
    const s = step(stateOf("active"), { type: "write", meta, change: { patch: { b: 2 } } }, now).state;
    const done = step(s, { type: "snapshotWritten", version: 4 }, now + 10);
    expect(snapshotOwed(done.state)).toBe(false);
    expect(done.effects).toContainEqual({ type: "trimLog", through: 4 });
  });

  it("refuses writes (not acknowledges them) once snapshots are behind for too long", () => {
    const s: MachineState = { ...stateOf("active"), book: { snapshottedVersion: 2, owedSince: now } };
    const late = step(s, { type: "write", meta, change: { patch: { b: 2 } } }, now + MAX_SNAPSHOT_LAG_MS + 1);
    expect(result(late)).toMatchObject({ kind: "unavailable" });
    expect(late.state.stored).toBe(s.stored);
  });
});

describe("migration", () => {
  const migrate: SessionEvent = { type: "migrate", target: { region: "apac" }, trigger: "operator" };

  it("freezes, hands over, then forwards; the new epoch snapshots at once", () => {
    const frozen = step(stateOf("active"), migrate, now);
    expect(frozen.effects).toContainEqual(
      expect.objectContaining({ type: "handOver", to: { epoch: 2, region: "apac" } }),
    );
    const record = (frozen.state.stored as SessionRecord) ?? active();
    const target = step(
      { stored: undefined, book: EMPTY_BOOK },
      { type: "adopt", meta: { ...meta, epoch: 2, region: "apac" }, from: record, via: "migration" },
      now,
    );
    expect(types(target.effects)[0]).toBe("putSnapshot");
    expect(result(target)).toMatchObject({ kind: "ok" });
    const done = step(frozen.state, { type: "handOverDone", to: { epoch: 2, region: "apac" } }, now + 20);
    expect(done.state.stored).toMatchObject({ status: "moved", to: { epoch: 2, region: "apac" }, reason: "migrated" });
    expect(result(done)).toMatchObject({ kind: "migrated", durationMs: 20 });
  });

  it("an adopt is idempotent for its own sender and refused for any other: a live copy is never overwritten", () => {
    const record = active({ sid: meta.sid, epoch: 1 });
    const first = step(
      { stored: undefined, book: EMPTY_BOOK },
      { type: "adopt", meta: { ...meta, epoch: 2 }, from: record, via: "migration" },
      now,
    );
    const again = step(
      first.state,
      { type: "adopt", meta: { ...meta, epoch: 2 }, from: record, via: "migration" },
      now + 1,
    );
    expect(result(again)).toMatchObject({ kind: "ok" });
    const other = step(
      first.state,
      { type: "adopt", meta: { ...meta, epoch: 2 }, from: { ...record, epoch: 7, version: 99 }, via: "migration" },
      now + 2,
    );
    expect(result(other)).toMatchObject({ kind: "conflict" });
    expect(other.state).toBe(first.state);
  });

  it("a hand-over that keeps failing asks the target to abandon, then aborts back to active", () => {
    let s = step(stateOf("active"), migrate, now).state;
    for (let i = 1; i < HANDOVER_ATTEMPTS_BEFORE_ABORT; i++) {
      s = step(
        s,
        { type: "handOverFailed", to: { epoch: 2, region: "apac" }, abandoned: false, error: "boom" },
        now + i,
      ).state;
      const retry = step(s, { type: "alarm" }, (s.book.handOverRetry?.at ?? 0) + 1);
      const fx = retry.effects.find((e) => e.type === "handOver");
      expect(fx).toMatchObject({ abandonOnFailure: i + 1 >= HANDOVER_ATTEMPTS_BEFORE_ABORT });
      s = retry.state;
    }
    const aborted = step(
      s,
      { type: "handOverFailed", to: { epoch: 2, region: "apac" }, abandoned: true, error: "boom" },
      now + 10,
    );
    expect(kindOf(aborted.state.stored)).toBe("active");
    expect(result(aborted)).toMatchObject({ kind: "refused", code: "ERR_MIGRATION_ABORTED" });
    // Writes are taken again, and the next migration skips the abandoned epoch.
    const w = step(aborted.state, { type: "write", meta, change: { patch: { z: 1 } } }, now + 11);
    expect(result(w)).toMatchObject({ kind: "ok" });
    const next = step(w.state, migrate, now + 12);
    expect(next.effects).toContainEqual(
      expect.objectContaining({ type: "handOver", to: { epoch: 3, region: "apac" } }),
    );
  });

  it("an abandoned target refuses the hand-over for good; one that already adopted says so", () => {
    const gone = step(
      { stored: undefined, book: EMPTY_BOOK },
      { type: "abandon", sid: meta.sid, epoch: 2, fromEpoch: 1 },
      now,
    );
    expect(result(gone)).toBe("abandoned");
    const late = step(
      gone.state,
      { type: "adopt", meta: { ...meta, epoch: 2 }, from: active(), via: "migration" },
      now + 1,
    );
    expect(result(late)).toMatchObject({ kind: "ended", reason: "aborted" });
    expect(result(step(stateOf("active"), { type: "abandon", sid: meta.sid, epoch: 2, fromEpoch: 1 }, now))).toBe(
      "adopted",
    );
  });
});

describe("restore, fence and catch-up: recovery moves forward only", () => {
  const restoreMeta = { ...meta, epoch: 2, region: "weur" };
  const snapshot = { version: 3, epoch: 1, data: { a: 1 }, origin: "o1", createdAt: T0, updatedAt: T0, takenAt: T0 };

  it("a restore never overwrites a live copy of its epoch", () => {
    const live: MachineState = { stored: active({ epoch: 2, version: 9 }), book: { snapshottedVersion: 9 } };
    const out = step(
      live,
      { type: "restore", meta: restoreMeta, from: snapshot, predecessors: [{ epoch: 1, region: "enam" }] },
      now,
    );
    expect(out.state).toBe(live);
    expect(result(out)).toMatchObject({ kind: "ok", record: { version: 9 } });
  });

  it("a restore owes nothing to KV for what it read from KV, and fences every predecessor (with or without a snapshot)", () => {
    const out = step(
      { stored: undefined, book: EMPTY_BOOK },
      { type: "restore", meta: restoreMeta, from: snapshot, predecessors: [{ epoch: 1, region: "enam" }] },
      now,
    );
    expect(snapshotOwed(out.state)).toBe(false);
    expect(out.state.book.fencePush).toMatchObject({ targets: [{ epoch: 1, region: "enam" }], base: 3 });
    const empty = { version: 0, epoch: 1, data: {}, origin: "o1", createdAt: T0, updatedAt: T0 };
    const bare = step(
      { stored: undefined, book: EMPTY_BOOK },
      { type: "restore", meta: restoreMeta, from: empty, predecessors: [{ epoch: 1, region: "enam" }] },
      now,
    );
    expect(bare.state.book.fencePush?.targets).toEqual([{ epoch: 1, region: "enam" }]);
    const alarm = step(bare.state, { type: "alarm" }, now);
    expect(types(alarm.effects)).toContain("pushFence");
  });

  it("a fence from an older epoch is ignored; from a newer one the object forwards and owes a catch-up of its later writes", () => {
    const s = stateOf("active"); // v3, snapshotted at v3
    expect(step(s, { type: "fence", to: { epoch: 1, region: "x" }, base: 0 }, now).state).toBe(s);
    const written = step(s, { type: "write", meta, change: { patch: { late: true } } }, now).state; // v4, not in any snapshot
    const fenced = step(written, { type: "fence", to: { epoch: 2, region: "weur" }, base: 3 }, now + 1);
    expect(fenced.state.stored).toMatchObject({ status: "moved", reason: "fenced", version: 4 });
    expect(fenced.state.book.catchUp).toMatchObject({
      to: { epoch: 2, region: "weur" },
      base: 3,
      state: { data: { a: 1, late: true } },
    });
    expect(types(step(fenced.state, { type: "alarm" }, now + 1).effects)).toContain("pushCatchUp");
    // A fenced object takes no more writes: they are forwarded.
    expect(result(step(fenced.state, { type: "write", meta, change: { patch: { x: 1 } } }, now + 2))).toMatchObject({
      kind: "moved",
    });
  });

  it("a catch-up applies the missing writes once, however often it is delivered", () => {
    const restored = step(
      { stored: undefined, book: EMPTY_BOOK },
      { type: "restore", meta: restoreMeta, from: snapshot, predecessors: [] },
      now,
    ).state;
    const entries: LogEntry[] = [{ version: 4, at: now, patch: { late: true } }];
    const once = step(restored, { type: "catchUp", from: { epoch: 1, region: "enam" }, entries }, now + 5);
    expect(once.state.stored).toMatchObject({ status: "active", data: { a: 1, late: true }, version: 4 });
    const twice = step(once.state, { type: "catchUp", from: { epoch: 1, region: "enam" }, entries }, now + 6);
    expect(twice.state).toBe(once.state);
  });
});

describe("timeouts", () => {
  it("an idle session ends in its alarm, leaving nothing, and tells the pool", () => {
    const s = stateOf("active");
    const late = (s.stored as SessionRecord).lastSeen + 1_800_000 + 120_000;
    const out = step(s, { type: "alarm" }, late);
    expect(out.state.stored).toBeUndefined();
    expect(types(out.effects)).toEqual(expect.arrayContaining(["purge", "report", "deleteSnapshot"]));
  });
});
