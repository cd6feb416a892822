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
  edge: string;
  haproxy?: { url: string; firstServerCookie: string };
  origin: BenchOrigin;
  connections: number;
}

export interface Prepared {
  spec: Omit<LoadSpec, "connections" | "duration">;
  /** Problems seen in the origin's counters for the measured run (empty: as intended). */
  check(stats: OriginStats, responses: number): string[];
}

export interface Scenario {
  id: string;
  label: string;
  target: Target;
  /** One line for the report: what a request costs in this scenario. */
  what: string;
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
  await get(`${edge}/write`, { cookie });
  return cookie;
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

const baseline: Scenario = {
  id: "baseline",
  label: "baseline: bare pass-through Worker",
  target: "baseline",
  what: "workerd receives the request, fetches the origin with the same path, streams the answer back",
  async prepare(t) {
    return {
      spec: { url: `${t.baseline}/` },
      check: (s, n) => [
        ...(s.withSessionHeader ? ["the origin received X-Edge-Session from the baseline"] : []),
        ...(about(s.requests, n, t.connections) ? [] : [`origin saw ${s.requests} requests, ${n} answered`]),
      ],
    };
  },
};

const sessionRead: Scenario = {
  id: "session-read",
  label: "edge-session: sticky hit, session read",
  target: "edge-session",
  what: "verify token + one Durable Object read (stored state) + forwarded header (signature reused) + proxy",
  async prepare(t) {
    const cookie = await storedSession(t.edge);
    const { res, session } = await probe(t, `${t.edge}/`, { cookie });
    if (setCookieFor(res, COOKIE_NAME)) throw new Error("a sticky hit was answered with a new cookie");
    if (!session || Number(session.ver) < 1) throw new Error("the origin did not see the stored session state");
    const sid = session.sid;
    return {
      spec: { url: `${t.edge}/`, headers: { cookie } },
      check: (s, n) => {
        const problems: string[] = [];
        if (s.writes) problems.push(`${s.writes} writes in a read scenario`);
        if (!about(s.withSessionHeader, n, t.connections))
          problems.push(`${s.withSessionHeader} forwarded headers for ${n} answered requests`);
        if (s.lastSession?.sid !== sid) problems.push("the session changed during the run");
        return problems;
      },
    };
  },
};

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

export const SCENARIOS: Scenario[] = [
  baseline,
  sessionRead,
  writeScenario("session-write", "edge-session: a session write on every request", "per-connection"),
  writeScenario("session-write-hot", "edge-session: every request writes one hot session", "one"),
  newSession,
  haproxyScenario("haproxy-sticky", "HAProxy: sticky hit (cookie SERVERID)", true),
  haproxyScenario("haproxy-new", "HAProxy: new client (cookie inserted)", false),
  originDirect,
];
