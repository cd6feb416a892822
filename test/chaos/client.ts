/**
 * A chaos client: one user, as a browser (cookie jar) or an API client (token
 * header), writing unique keys through a real origin and reading them back.
 *
 * Every change the harness makes is a unique key (`w<n>` for writes, `l<n>`
 * set together with each login, `x<n>` for probe writes), and the layer bumps a
 * session's version once per applied change. So in any state a client reads,
 * the version must equal the number of keys: a version ahead of the keys means
 * a change was applied twice.
 *
 * A client's sessions are kept as lineages: one lineage runs from a first
 * request to a logout (or until the client abandons it, as a visitor who does
 * not come back would); a login continues the lineage (the data moves to the
 * new session id). Every key acknowledged in a lineage that was not logged out
 * must be readable at the end through the lineage's latest token.
 */
import type { Ledger } from "./ledger.ts";
import { type Random, sleep } from "./random.ts";
import { type Exchange, judge5xx, type SendOptions, send, type TokenMode, tokenClaims } from "./wire.ts";

export interface Ack {
  key: string;
  at: number;
  /** The session the origin saw when it answered (the write landed there, or where it forwarded). */
  sid: string;
  ep: number;
  reg: string;
}

export interface Lineage {
  n: number;
  token: string | undefined;
  /** Cookie mode: the successor cookie the jar holds (set by a login, for a few seconds). */
  successor?: string;
  /**
   * API mode: sessions a login of this lineage replaced. As the README asks of API clients, a token
   * for one of them arriving after the login's answer (from a request sent before it) is not kept.
   */
  retired?: Set<string>;
  sids: Set<string>;
  /** Tokens naming an older epoch or region of this lineage's session, as a client idle since then would still hold. */
  oldTokens: Map<string, string>;
  acked: Map<string, Ack>;
  /** Sent, not acknowledged (refused, or no answer): may or may not be there at the end. */
  unacked: Set<string>;
  /** Acknowledged keys a read-back has already missed, and when (the loss became visible then). */
  missed: Map<string, number>;
  /** The login the lineage is in, once acknowledged. */
  sub?: string;
  /** A login acknowledged and not yet checked on the next request. */
  loginToCheck?: { sub: string; at: number };
  /** Set once this lineage's login was counted lost (it is counted once). */
  loginLost?: boolean;
  ended?: "logout" | "abandoned";
  /** Where the session was seen living, as it changed (for diagnoses). */
  history: string[];
  lastWhere?: string;
}

export interface LoggedOut {
  scenario: string;
  client: string;
  token: string;
  sid: string;
  sub: string | undefined;
  at: number;
}

export interface ClientContext {
  url: string;
  ledger: Ledger;
  /** Sessions seen with a version ahead of their keys: the largest excess per session. */
  excess: Map<string, { excess: number; scenario: string; client: string; at: number; detail: string }>;
  loggedOut: LoggedOut[];
  onExchange?: (client: ChaosClient, lineage: Lineage, ex: Exchange) => void;
}

const MAX_OLD_TOKENS = 3;
const MAX_LINEAGES = 8;

export class ChaosClient {
  readonly lineages: Lineage[] = [];
  current: Lineage;
  /** Scratch numbers a scenario's behaviour keeps per client (its step, when to travel next). */
  readonly memo: Record<string, number> = {};
  #seq = 0;

  readonly id: string;
  readonly scenario: string;
  readonly mode: TokenMode;
  /** Where the client says it is (X-Edge-Dev-Region). */
  region: string;
  readonly rng: Random;
  readonly ctx: ClientContext;

  constructor(id: string, scenario: string, mode: TokenMode, region: string, rng: Random, ctx: ClientContext) {
    this.id = id;
    this.scenario = scenario;
    this.mode = mode;
    this.region = region;
    this.rng = rng;
    this.ctx = ctx;
    this.current = this.#newLineage();
  }

  get sid(): string | undefined {
    return this.current.token ? tokenClaims(this.current.token)?.sid : undefined;
  }

  get home(): string | undefined {
    return this.current.token ? tokenClaims(this.current.token)?.reg : undefined;
  }

  /** Room for another lineage (logouts and abandons stop once a client has had enough, to bound the final checks). */
  get canStartOver(): boolean {
    return this.lineages.length < MAX_LINEAGES;
  }

  #newLineage(): Lineage {
    const lineage: Lineage = {
      n: this.lineages.length + 1,
      token: undefined,
      sids: new Set(),
      oldTokens: new Map(),
      acked: new Map(),
      unacked: new Set(),
      missed: new Map(),
      history: [],
    };
    this.lineages.push(lineage);
    this.current = lineage;
    return lineage;
  }

  /** One request with the given token (default: the current lineage's); 5xx answers judged and counted. */
  async request(o: SendOptions, token: string | undefined = this.current.token): Promise<Exchange> {
    const { ledger } = this.ctx;
    // The jar sends every cookie it holds; a request made with another (older) token carries only that one.
    const successor = token === this.current.token ? this.current.successor : undefined;
    const ex = await send(
      this.ctx.url,
      this.mode,
      token,
      { region: this.region, ...(successor ? { successor } : {}), ...o },
      () => ledger.now(),
    );
    ledger.count(this.scenario, "requests");
    ledger.latency(this.scenario, ex.at - ex.sentAt);
    if (ex.error && ex.status >= 500) {
      const verdict = judge5xx(ex.status, ex.error.code, ex.error.retryAfter, ex.method);
      ledger.count(this.scenario, verdict.kind);
      const key = `${ex.status} ${ex.error.code}${ex.error.retryAfter ? "" : " (no Retry-After)"}${verdict.kind === "originFailed" ? ` ${ex.method}` : ""}`;
      ledger.answer5xx(key, verdict.allowed);
      if (!verdict.allowed)
        ledger.problem({
          kind: "bad-5xx",
          scenario: this.scenario,
          client: this.id,
          ...(token ? { sid: tokenClaims(token)?.sid ?? "?" } : {}),
          at: ex.at,
          detail: `${ex.method} ${o.path ?? "/"} → ${key}: ${ex.error.message.slice(0, 160)}`,
        });
    }
    return ex;
  }

  /** The jar: the token in a response replaces the one kept (whichever response arrives last wins, as in a browser). */
  adopt(lineage: Lineage, ex: Exchange): void {
    if (ex.seen) {
      const where = `${ex.seen.sid.slice(0, 8)} ep${ex.seen.ep}@${ex.seen.reg}`;
      if (where !== lineage.lastWhere) {
        lineage.history.push(`+${(ex.at / 1000).toFixed(2)}s ${where}`);
        if (lineage.history.length > 12) lineage.history.splice(1, 1);
        lineage.lastWhere = where;
      }
    }
    this.ctx.onExchange?.(this, lineage, ex);
    if (ex.successor === null) delete lineage.successor;
    else if (ex.successor !== undefined) lineage.successor = ex.successor;
    if (ex.token === undefined) return;
    if (ex.token === null) {
      lineage.token = undefined;
      return;
    }
    const before = lineage.token ? tokenClaims(lineage.token) : undefined;
    const after = tokenClaims(ex.token);
    if (after && lineage.retired?.has(after.sid)) return;
    if (
      lineage.token &&
      before &&
      after &&
      before.sid === after.sid &&
      (before.ep !== after.ep || before.reg !== after.reg) &&
      lineage.oldTokens.size < MAX_OLD_TOKENS
    ) {
      const key = `${before.sid}:${before.ep}@${before.reg}`;
      if (!lineage.oldTokens.has(key)) lineage.oldTokens.set(key, lineage.token);
    }
    if (after) lineage.sids.add(after.sid);
    lineage.token = ex.token;
  }

  /** Checks what a read saw against what this lineage was told: versions, acknowledged keys, the login. */
  check(lineage: Lineage, ex: Exchange): void {
    const seen = ex.seen;
    if (!seen) return;
    const { ledger } = this.ctx;
    this.checkVersion(seen.sid, seen.ver, seen.data, seen.dataOmitted, ex.at, "read");
    if (lineage.loginToCheck) {
      const { sub, at } = lineage.loginToCheck;
      delete lineage.loginToCheck;
      if (seen.sub !== sub) {
        lineage.loginLost = true;
        ledger.count(this.scenario, "loginsLost");
        ledger.problem({
          kind: "login-lost",
          scenario: this.scenario,
          client: this.id,
          sid: seen.sid,
          at: ex.at,
          detail: `login as ${sub} acknowledged at +${(at / 1000).toFixed(2)}s; the next request is ${seen.sub ? `logged in as ${seen.sub}` : "anonymous"} (${seen.sid.slice(0, 8)} ep${seen.ep}@${seen.reg})`,
        });
      }
    }
    if (seen.dataOmitted) return;
    // Each acknowledged key counts once as missed (whether it comes back later or is lost for good).
    const missing = [...lineage.acked.values()].filter(
      (a) => a.at <= ex.sentAt && !(a.key in seen.data) && !lineage.missed.has(a.key),
    );
    for (const a of missing) lineage.missed.set(a.key, ex.at);
    if (missing.length) {
      ledger.count(this.scenario, "staleReads", missing.length);
      ledger.problem({
        kind: "stale-read",
        scenario: this.scenario,
        client: this.id,
        sid: seen.sid,
        at: ex.at,
        detail: `read ${seen.sid.slice(0, 8)} ep${seen.ep}@${seen.reg} v${seen.ver} misses ${missing.length} acknowledged key(s): ${missing
          .slice(0, 4)
          .map((a) => a.key)
          .join(", ")}`,
      });
    }
  }

  /** A version ahead of the number of keys: some change was applied more than once. */
  checkVersion(
    sid: string,
    ver: number,
    data: Record<string, unknown>,
    omitted: boolean,
    at: number,
    how: string,
  ): void {
    if (omitted) return;
    const excess = ver - Object.keys(data).length;
    const known = this.ctx.excess.get(sid);
    if (excess > 0 && (!known || excess > known.excess))
      this.ctx.excess.set(sid, {
        excess,
        scenario: this.scenario,
        client: this.id,
        at,
        detail: `${how} of ${sid.slice(0, 8)} shows v${ver} with ${Object.keys(data).length} keys`,
      });
  }

  nextKey(prefix: "w" | "l" | "x"): string {
    this.#seq += 1;
    return `${prefix}${this.#seq}`;
  }

  #setKey(key: string, token: string | undefined, delayMs: number, path: string): Promise<Exchange> {
    return this.request(
      {
        method: "POST",
        path,
        respond: { headers: { "x-edge-session-set": JSON.stringify({ [key]: 1 }) } },
        delayMs,
        requestId: `${this.id}/${key}`,
      },
      token,
    );
  }

  /** A unique key written through the origin (POST, the way applications write). */
  async write(token: string | undefined = this.current.token, delayMs = 0): Promise<Exchange> {
    const lineage = this.current;
    const key = this.nextKey("w");
    this.ctx.ledger.count(this.scenario, "writesSent");
    const ex = await this.#setKey(key, token, delayMs, "/chaos/write");
    this.adopt(lineage, ex);
    this.#settle(lineage, key, ex);
    return ex;
  }

  /** A write through some other token (an old epoch's), outside the counts: the caller judges it. */
  async probeWrite(token: string): Promise<{ key: string; ex: Exchange }> {
    const key = this.nextKey("x");
    return { key, ex: await this.#setKey(key, token, 0, "/chaos/probe-write") };
  }

  #settle(lineage: Lineage, key: string, ex: Exchange): void {
    const { ledger } = this.ctx;
    if (ex.ok && ex.seen) {
      ledger.count(this.scenario, "writesAcked");
      lineage.acked.set(key, { key, at: ex.at, sid: ex.seen.sid, ep: ex.seen.ep, reg: ex.seen.reg });
    } else {
      ledger.count(this.scenario, ex.network ? "writesUnknown" : "writesRefused");
      lineage.unacked.add(key);
    }
  }

  async read(): Promise<Exchange> {
    const lineage = this.current;
    const ex = await this.request({ method: "GET", path: "/chaos/read" });
    this.adopt(lineage, ex);
    this.check(lineage, ex);
    return ex;
  }

  /**
   * Login (the origin answers X-Edge-Session-Login with a Set of one more key).
   * With `race`, the client also fires requests with its pre-login token while
   * the login is in flight, as a page loading several resources does; the
   * tokens in the answers are kept in the order they arrive.
   */
  async login(race: boolean): Promise<void> {
    const lineage = this.current;
    const { ledger } = this.ctx;
    const key = this.nextKey("l");
    const sub = `${this.id}#${key}`;
    const pre = lineage.token;
    // A login carries a Set of one key: it is a write too, and counted as one.
    ledger.count(this.scenario, "writesSent");
    const login = this.request({
      method: "POST",
      path: "/chaos/login",
      respond: {
        headers: {
          "x-edge-session-login": JSON.stringify({ sub }),
          "x-edge-session-set": JSON.stringify({ [key]: 1 }),
        },
      },
      delayMs: race ? 25 : 0,
      requestId: `${this.id}/${key}`,
    }).then((ex) => {
      this.adopt(lineage, ex);
      const before = pre ? tokenClaims(pre)?.sid : undefined;
      const after = ex.token ? tokenClaims(ex.token)?.sid : undefined;
      if (this.mode === "api" && before && after && before !== after) {
        lineage.retired ??= new Set();
        lineage.retired.add(before);
      }
      return ex;
    });
    const racers = race
      ? [0, 1].map(async (i) => {
          await sleep(this.rng.between(0, 60));
          if (i === 0) return void (await this.write(pre, this.rng.between(0, 20)));
          const ex = await this.request({ method: "GET", path: "/chaos/read" }, pre);
          this.adopt(lineage, ex);
        })
      : [];
    const [ex] = await Promise.all([login, ...racers]);
    if (ex.ok && ex.seen) {
      ledger.count(this.scenario, "loginsAcked");
      ledger.count(this.scenario, "writesAcked");
      lineage.acked.set(key, { key, at: ex.at, sid: ex.seen.sid, ep: ex.seen.ep, reg: ex.seen.reg });
      lineage.sub = sub;
      lineage.loginToCheck = { sub, at: ex.at };
    } else {
      ledger.count(this.scenario, ex.network ? "writesUnknown" : "writesRefused");
      lineage.unacked.add(key);
    }
  }

  /** Logout; acknowledged when a 2xx clears the token. The pre-logout token is kept, to check the session is gone. */
  async logout(): Promise<void> {
    const lineage = this.current;
    const { ledger } = this.ctx;
    const pre = lineage.token;
    const sid = this.sid;
    const ex = await this.request({
      method: "POST",
      path: "/chaos/logout",
      respond: { headers: { "x-edge-session-logout": "1" } },
      requestId: `${this.id}/${this.nextKey("x")}-logout`,
    });
    this.adopt(lineage, ex);
    if (ex.ok && lineage.token === undefined) {
      ledger.count(this.scenario, "logoutsAcked");
      if (pre && sid)
        this.ctx.loggedOut.push({
          scenario: this.scenario,
          client: this.id,
          token: pre,
          sid,
          sub: lineage.sub,
          at: ex.at,
        });
      lineage.ended = "logout";
      this.#newLineage();
      return;
    }
    if (ex.ok) {
      ledger.count(this.scenario, "logoutsLost");
      ledger.problem({
        kind: "logout-lost",
        scenario: this.scenario,
        client: this.id,
        ...(sid ? { sid } : {}),
        at: ex.at,
        detail: "logout answered 2xx without clearing the token",
      });
      return;
    }
    // Not acknowledged: the session may or may not have ended. Look, and go on from what is there.
    const after = await this.read();
    if (after.seen && sid && after.seen.sid !== sid) {
      lineage.ended = "logout";
      this.#newLineage();
    }
  }

  /** Walk away from the session (its keys must still be there at the end, through its last token). */
  abandon(): void {
    this.current.ended = "abandoned";
    this.#newLineage();
  }
}
