/**
 * What the chaos run counts, per scenario, and the problems it saw, each with
 * enough context (scenario, client, session, write, time) to start a diagnosis.
 */

export const COUNTERS = [
  "writesSent",
  "writesAcked",
  "writesRefused",
  "writesUnknown",
  "presentAtEnd",
  "loggedOut",
  "lost",
  "appliedTwice",
  "originDuplicates",
  "twoTruths",
  "staleReads",
  "loginsAcked",
  "loginsLost",
  "logoutsAcked",
  "logoutsLost",
  "requests",
  "typed503",
  "originFailed",
  "bad5xx",
] as const;
export type Counter = (typeof COUNTERS)[number];
export type Counters = Record<Counter, number>;

export type ProblemKind =
  | "lost"
  | "applied-twice"
  | "origin-duplicate"
  | "two-truths"
  | "stale-read"
  | "login-lost"
  | "logout-lost"
  | "bad-5xx";

/** The kinds that a correct layer never shows; `npm test` asserts none of them. */
export const FAILURE_KINDS: readonly ProblemKind[] = [
  "lost",
  "applied-twice",
  "origin-duplicate",
  "two-truths",
  "login-lost",
  "logout-lost",
  "bad-5xx",
];

export interface Problem {
  kind: ProblemKind;
  scenario: string;
  client: string;
  sid?: string;
  /** ms since the start of the run. */
  at: number;
  detail: string;
}

/** A region outage, as one exposed session lived it. */
export interface OutageSession {
  scenario: string;
  sid: string;
  /** Seen living in the downed region while it was down. */
  homed: boolean;
  /** Acknowledged writes lost in the outage, and how old the oldest was when the loss became visible. */
  lostWrites: number;
  lostSpanMs: number;
  /** Writes answered with a typed 503 instead (the honest alternative to an acknowledgement). */
  typed503: number;
  /** For a homed session: from the fault (or its arrival) to the first 2xx served from elsewhere (or once back). */
  recoveryMs: number | undefined;
  /** Requests the session's client sent meanwhile (0: it had walked away, so no recovery to time). */
  requests: number;
}

export const emptyCounters = (): Counters => Object.fromEntries(COUNTERS.map((c) => [c, 0])) as unknown as Counters;

export class Ledger {
  readonly started = performance.now();
  readonly scenarios = new Map<string, Counters>();
  readonly problems: Problem[] = [];
  /** Layer answers ≥ 500, by "status code (Retry-After)" and whether they are allowed. */
  readonly answers5xx = new Map<string, { n: number; allowed: boolean }>();
  /** Operator calls by route and status, e.g. "migrate 200". */
  readonly operator = new Map<string, number>();
  readonly outages: OutageSession[] = [];
  /** Request latencies (ms), by scenario. */
  readonly latencies = new Map<string, number[]>();
  /** Chaos actions taken, with their time: the timeline diagnoses are read against. */
  readonly timeline: { at: number; what: string }[] = [];

  now(): number {
    return Math.round(performance.now() - this.started);
  }

  count(scenario: string, counter: Counter, n = 1): void {
    let c = this.scenarios.get(scenario);
    if (!c) {
      c = emptyCounters();
      this.scenarios.set(scenario, c);
    }
    c[counter] += n;
  }

  problem(p: Omit<Problem, "at"> & { at?: number }): void {
    this.problems.push({ ...p, at: p.at ?? this.now() });
  }

  latency(scenario: string, ms: number): void {
    let list = this.latencies.get(scenario);
    if (!list) {
      list = [];
      this.latencies.set(scenario, list);
    }
    list.push(ms);
  }

  answer5xx(key: string, allowed: boolean): void {
    const entry = this.answers5xx.get(key) ?? { n: 0, allowed };
    entry.n += 1;
    this.answers5xx.set(key, entry);
  }

  operatorCall(what: string): void {
    this.operator.set(what, (this.operator.get(what) ?? 0) + 1);
  }

  event(what: string): void {
    this.timeline.push({ at: this.now(), what });
  }

  totals(): Counters {
    const t = emptyCounters();
    for (const c of this.scenarios.values()) for (const k of COUNTERS) t[k] += c[k];
    return t;
  }

  failures(): Problem[] {
    return this.problems.filter((p) => FAILURE_KINDS.includes(p.kind));
  }
}
