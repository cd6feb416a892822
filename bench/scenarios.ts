/**
 * What each scenario sends, how its sessions are made before the clock starts,
 * and how the runner checks afterwards (from the origin's counters) that the
 * requests really took the path the scenario is named after.
 */
import type { LoadSpec } from "./load.ts";
import type { BenchOrigin, OriginStats } from "./origin.ts";

export const COOKIE_NAME = "__Host-edge-session";

export type Target = "baseline" | "edge-session" | "haproxy" | "origin";

export interface Targets {
  baseline: string;
  /** edge-session with the read cache on (READ_CACHE_SECONDS at its default). */
  edge: string;
  /** edge-session in strict mode (READ_CACHE_SECONDS=0): the session's object on every request. */
  edgeStrict: string;
  haproxy?: { url: string; firstServerCookie: string };
  origin: BenchOrigin;
  connections: number;
}

export interface Prepared {
  spec: Omit<LoadSpec, "connections" | "duration">;
  /** Brings the scenario to its steady state just before it is measured (e.g. one request per session). */
  warm?: () => Promise<void>;
  /** Problems seen in the origin's counters for the measured run (empty: as intended). */
  check(stats: OriginStats, responses: number): string[];
}

export interface Scenario {
  id: string;
  label: string;
  target: Target;
  /** One line for the report: what a request costs in this scenario. */
  what: string;
  /** Connections for this scenario, when not the run's (the latency rows at 1 connection). */
  connections?: number;
  prepare(t: Targets): Promise<Prepared>;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  const res = await fetch(url, { headers, redirect: "manual" });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
  return res;
}

function setCookieFor(res: Response, name: string): string | undefined {
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  return cookie?.split(";", 1)[0];
}

/** A new edge session (its cookie), given stored state by one origin write so that reads find a record. */
async function storedSession(edge: string): Promise<string> {
  const cookie = setCookieFor(await get(`${edge}/`), COOKIE_NAME);
  if (!cookie) throw new Error("edge-session did not set its cookie on a new session");
  return keep(await get(`${edge}/write`, { cookie }), cookie);
}

/** One request with the given headers; returns the session claims the origin received. */
async function probe(t: Targets, url: string, headers: Record<string, string>) {
  // Forget the previous scenario's requests first: a straggler must not pass for this probe's session.
  await t.origin.reset();
  const res = await get(url, headers);
  return { res, session: (await t.origin.stats()).lastSession };
}

/** The origin may count up to one request per connection more than the load generator saw answered. */
function about(actual: number, expected: number, slack: number): boolean {
  return actual >= expected && actual <= expected + slack;
}

function baselineScenario(id: string, label: string, connections?: number): Scenario {
  return {
    id,
    label,
    target: "baseline",
    ...(connections ? { connections } : {}),
    what: "workerd receives the request, fetches the origin with the same path, streams the answer back",
    async prepare(t) {
      const c = connections ?? t.connections;
      return {
        spec: { url: `${t.baseline}/` },
        check: (s, n) => [
          ...(s.withSessionHeader ? ["the origin received X-Edge-Session from the baseline"] : []),
          ...(about(s.requests, n, c) ? [] : [`origin saw ${s.requests} requests, ${n} answered`]),
        ],
      };
    },
  };
}

/** How a client keeps its cookie: the layer may re-issue it on any response (after a write, with the read cache on). */
function keep(res: Response, cookie: string): string {
  return setCookieFor(res, COOKIE_NAME) ?? cookie;
}

/** Largest fill per write, under MAX_PATCH_BYTES (8 KiB) with the JSON around it. */
const FILL_CHUNK = 7000;
const made = new Map<string, Promise<string[]>>();

/**
 * `n` edge sessions whose stored documents are about `bytes` long (built in patches of
 * at most FILL_CHUNK), 16 at a time; the cookies as each client holds them after its
 * writes. Made once per run and kept for later rounds.
 */
function storedSessions(edge: string, n: number, bytes: number): Promise<string[]> {
  const key = `${edge} ${n} ${bytes}`;
  let pending = made.get(key);
  if (!pending) {
    pending = (async () => {
      const cookies: string[] = [];
      const one = async () => {
        let cookie = setCookieFor(await get(`${edge}/`), COOKIE_NAME);
        if (!cookie) throw new Error("edge-session did not set its cookie on a new session");
        // {"d0":"xx…"} is 10 bytes more than its fill.
        for (let i = 0, left = bytes - 10; left > 0; i++, left -= FILL_CHUNK)
          cookie = keep(await get(`${edge}/?fill=${Math.min(left, FILL_CHUNK)}&key=d${i}`, { cookie }), cookie);
        cookies.push(cookie);
      };
      for (let i = 0; i < n; i += 16) await Promise.all(Array.from({ length: Math.min(16, n - i) }, one));
      return cookies;
    })();
    made.set(key, pending);
  }
  return pending;
}

interface ReadShape {
  mode: "cached" | "strict";
  sessions: number;
  bytes: number;
  connections?: number;
}

function readScenario(id: string, label: string, shape: ReadShape): Scenario {
  const strict = shape.mode === "strict";
  return {
    id,
    label,
    target: "edge-session",
    ...(shape.connections ? { connections: shape.connections } : {}),
    what: `${shape.sessions.toLocaleString("en-US")} sessions of ${shape.bytes.toLocaleString("en-US")} B, taken in turn; verify token + ${
      strict
        ? "one Durable Object read (strict: READ_CACHE_SECONDS=0)"
        : "the session from the isolate's memory (READ_CACHE_SECONDS=5; a background read per session every 4 s)"
    } + forwarded header + proxy`,
    async prepare(t) {
      const edge = strict ? t.edgeStrict : t.edge;
      const cookies = await storedSessions(edge, shape.sessions, shape.bytes);
      const [first] = cookies;
      if (!first) throw new Error("no session");
      const { res, session } = await probe(t, `${edge}/`, { cookie: first });
      if (setCookieFor(res, COOKIE_NAME)) throw new Error("a sticky hit was answered with a new cookie");
      if (!session || Number(session.ver) < 1) throw new Error("the origin did not see the stored session state");
      return {
        spec: { url: `${edge}/`, perRequestHeaders: cookies.map((cookie) => ({ cookie })) },
        // One request per session, 20 at a time: every session's copy is fresh when the clock starts,
        // as in a steady state where each session is visited within the cache period.
        warm: async () => {
          for (let i = 0; i < cookies.length; i += 20)
            await Promise.all(cookies.slice(i, i + 20).map((cookie) => get(`${edge}/`, { cookie })));
        },
        check: (s, n) => {
          const problems: string[] = [];
          const c = shape.connections ?? t.connections;
          if (s.writes) problems.push(`${s.writes} writes in a read scenario`);
          if (!about(s.withSessionHeader, n, c))
            problems.push(`${s.withSessionHeader} forwarded headers for ${n} answered requests`);
          return problems;
        },
      };
    },
  };
}

function writeScenario(id: string, label: string, sessions: "per-connection" | "one"): Scenario {
  return {
    id,
    label,
    target: "edge-session",
    what:
      "verify token + Durable Object read + new forwarded signature + proxy + Durable Object write (merge patch, SQLite, alarm)" +
      (sessions === "one" ? "; all connections write the same session, so its object serializes them" : ""),
    async prepare(t) {
      const count = sessions === "one" ? 1 : t.connections;
      const cookies = await Promise.all(Array.from({ length: count }, () => storedSession(t.edge)));
      const [first] = cookies;
      if (!first) throw new Error("no session");
      const before = await probe(t, `${t.edge}/write`, { cookie: first });
      const after = await probe(t, `${t.edge}/write`, { cookie: first });
      if (Number(after.session?.ver) !== Number(before.session?.ver) + 1)
        throw new Error("a write did not raise the session version by one");
      return {
        spec: { url: `${t.edge}/write`, perConnectionHeaders: cookies.map((cookie) => ({ cookie })) },
        check: (s, n) => {
          const problems: string[] = [];
          if (!about(s.writes, n, t.connections))
            problems.push(`the origin asked for ${s.writes} writes, ${n} answered`);
          if (Number(s.lastSession?.ver) < 2) problems.push("session versions did not advance");
          return problems;
        },
      };
    },
  };
}

const newSession: Scenario = {
  id: "new-session",
  label: "edge-session: new session on every request",
  target: "edge-session",
  what: "no token: new session id + forwarded header signed + proxy + affinity token signed into Set-Cookie (no Durable Object)",
  async prepare(t) {
    const { res, session } = await probe(t, `${t.edge}/`, {});
    if (!setCookieFor(res, COOKIE_NAME)) throw new Error("a new session got no cookie");
    if (Number(session?.ver) !== 0) throw new Error("a new session arrived with stored state");
    return {
      spec: { url: `${t.edge}/` },
      check: (s, n) =>
        about(s.withSessionHeader, n, t.connections)
          ? []
          : [`${s.withSessionHeader} forwarded headers for ${n} answered requests`],
    };
  },
};

function haproxyScenario(id: string, label: string, sticky: boolean): Scenario {
  return {
    id,
    label,
    target: "haproxy",
    what: sticky
      ? "native code without session state: route by the SERVERID cookie, proxy"
      : "native code without session state: pick a server (round robin), proxy, insert the SERVERID cookie",
    async prepare(t) {
      const h = t.haproxy;
      if (!h) throw new Error("haproxy is not running");
      const headers: Record<string, string> = sticky ? { cookie: h.firstServerCookie } : {};
      const { res } = await probe(t, `${h.url}/`, headers);
      const inserted = setCookieFor(res, "SERVERID");
      if (sticky && inserted) throw new Error("HAProxy re-inserted SERVERID on a sticky request");
      if (!sticky && !inserted) throw new Error("HAProxy did not insert SERVERID for a new client");
      return {
        spec: { url: `${h.url}/`, headers },
        check: (s, n) => (about(s.requests, n, t.connections) ? [] : [`origin saw ${s.requests}, ${n} answered`]),
      };
    },
  };
}

const originDirect: Scenario = {
  id: "origin-direct",
  label: "no proxy: straight to the origin",
  target: "origin",
  what: "the load generator and the origin alone: the ceiling of this setup, not a proxy",
  async prepare(t) {
    const [url] = t.origin.urls;
    if (!url) throw new Error("no origin");
    return {
      spec: { url: `${url}/` },
      check: (s, n) => (about(s.requests, n, t.connections) ? [] : [`origin saw ${s.requests}, ${n} answered`]),
    };
  },
};

/** The bare Worker plus one trivial Durable Object RPC per request, over `objects` objects: strict mode's floor. */
function floorScenario(id: string, label: string, objects: number, connections?: number): Scenario {
  return {
    id,
    label,
    target: "baseline",
    ...(connections ? { connections } : {}),
    what: `the baseline plus one RPC to a Durable Object method that returns a number, ${objects} objects taken in turn: the floor of one object call per request`,
    async prepare(t) {
      const c = connections ?? t.connections;
      const keys = Array.from({ length: objects }, (_, i) => ({ "x-floor-key": `session-${i}` }));
      await get(`${t.baseline}/`, keys[0]);
      return {
        spec: { url: `${t.baseline}/`, perRequestHeaders: keys },
        check: (s, n) => (about(s.requests, n, c) ? [] : [`origin saw ${s.requests} requests, ${n} answered`]),
      };
    },
  };
}

/**
 * The bare Worker plus the work any proxy owning a trust boundary does per request (request headers
 * rewritten, origin timeout, response rebuilt and pruned, Server-Timing), with no session logic: the
 * floor of the read cache's path. Sent with the session cookies of the read scenario's size.
 */
function rewriteFloorScenario(id: string, label: string): Scenario {
  return {
    id,
    label,
    target: "baseline",
    what: "the baseline plus request headers rewritten (cookie and forwarding headers out, forwarding headers and a 700-byte session header in), a 10 s origin timer, the response rebuilt with its headers pruned and Server-Timing added: the floor of the read cache's path",
    async prepare(t) {
      const cookie = `__Host-edge-session=${"t".repeat(300)}`;
      await get(`${t.baseline}/`, { "x-floor-rewrite": "1", cookie });
      return {
        spec: { url: `${t.baseline}/`, headers: { "x-floor-rewrite": "1", cookie } },
        check: (s, n) => [
          ...(about(s.withSessionHeader, n, t.connections)
            ? []
            : [`${s.withSessionHeader} session headers, ${n} answered`]),
        ],
      };
    },
  };
}

/** The steady state the issue names: 200 live sessions of about 300 bytes, read on every request. */
const STEADY = { sessions: 200, bytes: 300 };

export const SCENARIOS: Scenario[] = [
  baselineScenario("baseline", "baseline: bare pass-through Worker"),
  readScenario("session-read", "edge-session: steady-state read, cache on", { mode: "cached", ...STEADY }),
  readScenario("session-read-strict", "edge-session: steady-state read, strict", { mode: "strict", ...STEADY }),
  rewriteFloorScenario("floor-rewrite", "floor: bare Worker + a proxy hop's header rewriting (no session)"),
  floorScenario("floor", "floor: bare Worker + one trivial Durable Object RPC", STEADY.sessions),
  readScenario("read-20-sessions", "read, cache on: 20 sessions", { mode: "cached", sessions: 20, bytes: 300 }),
  readScenario("read-2000-sessions", "read, cache on: 2,000 sessions", { mode: "cached", sessions: 2000, bytes: 300 }),
  readScenario("read-6kb", "read, cache on: 6 KB documents", { mode: "cached", sessions: 200, bytes: 6 * 1024 }),
  readScenario("read-60kb", "read, cache on: 60 KB documents", { mode: "cached", sessions: 200, bytes: 60 * 1024 }),
  readScenario("read-2000-strict", "read, strict: 2,000 sessions", { mode: "strict", sessions: 2000, bytes: 300 }),
  baselineScenario("baseline-1c", "baseline, 1 connection", 1),
  readScenario("session-read-1c", "steady-state read, cache on, 1 connection", {
    mode: "cached",
    ...STEADY,
    connections: 1,
  }),
  floorScenario("floor-1c", "floor, 1 connection", STEADY.sessions, 1),
  readScenario("session-read-strict-1c", "steady-state read, strict, 1 connection", {
    mode: "strict",
    ...STEADY,
    connections: 1,
  }),
  writeScenario("session-write", "edge-session: a session write on every request", "per-connection"),
  writeScenario("session-write-hot", "edge-session: every request writes one hot session", "one"),
  newSession,
  haproxyScenario("haproxy-sticky", "HAProxy: sticky hit (cookie SERVERID)", true),
  haproxyScenario("haproxy-new", "HAProxy: new client (cookie inserted)", false),
  originDirect,
];
