/**
 * After the storm, with every fault lifted and the pool cache expired: read
 * every session back through its latest token and through the operator API,
 * compare what older tokens of the same session read (and whether a write
 * through one is seen), and check that logged-out tokens open nothing.
 */
import type { Ack, ChaosClient, ClientContext, Lineage, LoggedOut } from "./client.ts";
import type { Ledger } from "./ledger.ts";
import { sleep } from "./random.ts";
import type { RunContext } from "./scenarios.ts";
import type { Exchange, Seen } from "./wire.ts";

interface Final {
  c: ChaosClient;
  lineage: Lineage;
  seen: Seen;
  lost: Ack[];
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const where = (s: Seen) => `${s.sid.slice(0, 8)} ep${s.ep}@${s.reg} v${s.ver}`;
const keysOf = (s: Seen) => Object.keys(s.data).sort().join(",");
const at = (ms: number) => `+${(ms / 1000).toFixed(2)}s`;

/** A read that a 503 (or a dropped connection) may delay: retried as Retry-After asks, a few times. */
async function settledRead(c: ChaosClient, token: string, path: string): Promise<Exchange> {
  let ex = await c.request({ method: "GET", path }, token);
  for (let i = 0; i < 3 && (ex.status === 503 || ex.network); i++) {
    await sleep(Math.min(Number(ex.error?.retryAfter ?? 1) || 1, 3) * 1000);
    ex = await c.request({ method: "GET", path }, token);
  }
  return ex;
}

function twoTruths(ledger: Ledger, c: ChaosClient, sid: string, detail: string): void {
  ledger.count(c.scenario, "twoTruths");
  ledger.problem({ kind: "two-truths", scenario: c.scenario, client: c.id, sid, detail });
}

async function finalRead(ledger: Ledger, c: ChaosClient, lineage: Lineage): Promise<Final | undefined> {
  const acked = [...lineage.acked.values()];
  const describe = () => `history: ${lineage.history.join(" → ")}`;
  /** Acknowledged writes missing at the end, each a problem of its own; `end`: what the end showed. */
  const lose = (lost: typeof acked, end: string) => {
    ledger.count(c.scenario, "lost", lost.length);
    for (const a of lost)
      ledger.problem({
        kind: "lost",
        scenario: c.scenario,
        client: c.id,
        sid: a.sid,
        at: a.at,
        detail: `${a.key} acked ${at(a.at)} (origin saw ${a.sid.slice(0, 8)} ep${a.ep}@${a.reg}); ${end}; ${describe()}`,
      });
  };
  const ex = lineage.token ? await settledRead(c, lineage.token, "/chaos/final-read") : undefined;
  const seen = ex?.ok ? ex.seen : undefined;
  if (!seen) {
    lose(
      acked,
      `the session cannot be read at the end (${ex ? `${ex.status} ${ex.error?.code ?? ""}` : "no token left"})`,
    );
    return undefined;
  }
  c.checkVersion(seen.sid, seen.ver, seen.data, seen.dataOmitted, ex?.at ?? ledger.now(), "final read");
  const lost = seen.dataOmitted ? [] : acked.filter((a) => !(a.key in seen.data));
  ledger.count(c.scenario, "presentAtEnd", acked.length - lost.length);
  lose(lost, `at the end ${where(seen)} without it`);
  if (lineage.sub !== undefined && seen.sub !== lineage.sub && !lineage.loginLost) {
    lineage.loginLost = true;
    ledger.count(c.scenario, "loginsLost");
    ledger.problem({
      kind: "login-lost",
      scenario: c.scenario,
      client: c.id,
      sid: seen.sid,
      detail: `logged in as ${lineage.sub}; at the end ${where(seen)} is ${seen.sub ? `logged in as ${seen.sub}` : "anonymous"}`,
    });
  }
  return { c, lineage, seen, lost };
}

/** The operator's view must be the client's view. */
async function inspect(x: RunContext, f: Final): Promise<void> {
  if (f.seen.ver === 0) return; // nothing stored yet: nothing for the operator to find
  const answer = await x.edge.admin(`sessions/${f.seen.sid}?data=true`).catch(() => undefined);
  x.ledger.operatorCall(`inspect ${answer?.status ?? "(no answer)"}`);
  const view = answer?.body as { version?: number; data?: Record<string, unknown>; status?: string } | undefined;
  if (answer?.status !== 200 || !view) {
    twoTruths(
      x.ledger,
      f.c,
      f.seen.sid,
      `the client reads ${where(f.seen)}; the operator API answers ${answer?.status}`,
    );
    return;
  }
  const keys = Object.keys(view.data ?? {})
    .sort()
    .join(",");
  if (view.version !== f.seen.ver || keys !== keysOf(f.seen))
    twoTruths(
      x.ledger,
      f.c,
      f.seen.sid,
      `the client reads ${where(f.seen)} (${Object.keys(f.seen.data).length} keys); the operator sees v${view.version} ${view.status} (${Object.keys(view.data ?? {}).length} keys)`,
    );
}

/** An older token of the same session reads the same thing as the latest one, and a write through it is seen. */
async function oldTokens(x: RunContext, f: Final): Promise<void> {
  const latest = f.lineage.token;
  if (!latest) return;
  for (const [name, token] of f.lineage.oldTokens) {
    if (!name.startsWith(`${f.seen.sid}:`)) continue; // from before a login: rotated away on purpose
    const [old, now] = await Promise.all([
      settledRead(f.c, token, "/chaos/old-token-read"),
      settledRead(f.c, latest, "/chaos/final-read"),
    ]);
    if (!old.seen || !now.seen) continue;
    const same =
      old.seen.sid === now.seen.sid && old.seen.ver === now.seen.ver && keysOf(old.seen) === keysOf(now.seen);
    if (!same) {
      const other = old.seen.sid !== now.seen.sid ? " (another session: the older token no longer opens this one)" : "";
      twoTruths(
        x.ledger,
        f.c,
        f.seen.sid,
        `token for ep${name.split(":")[1]} reads ${where(old.seen)}${other}, the latest token reads ${where(now.seen)}`,
      );
      continue;
    }
    const { key, ex: probe } = await f.c.probeWrite(token);
    if (!probe.ok) continue;
    const after = await settledRead(f.c, latest, "/chaos/final-read");
    if (after.seen && !(key in after.seen.data))
      twoTruths(
        x.ledger,
        f.c,
        f.seen.sid,
        `write ${key} through the ep${name.split(":")[1]} token acked (${probe.seen ? where(probe.seen) : "?"}), but the latest token reads ${where(after.seen)} without it`,
      );
  }
}

/** A logged-out token must open nothing: neither the session nor its login. */
async function loggedOut(x: RunContext, clients: Map<string, ChaosClient>, lo: LoggedOut): Promise<void> {
  const c = clients.get(lo.client);
  if (!c) return;
  const ex = await c.request({ method: "GET", path: "/chaos/after-logout" }, lo.token);
  if (!ex.seen) return;
  if (ex.seen.sid === lo.sid || (lo.sub !== undefined && ex.seen.sub === lo.sub)) {
    x.ledger.count(lo.scenario, "logoutsLost");
    x.ledger.problem({
      kind: "logout-lost",
      scenario: lo.scenario,
      client: lo.client,
      sid: lo.sid,
      detail: `logout acknowledged ${at(lo.at)}; its token still opens ${where(ex.seen)}${ex.seen.sub ? ` as ${ex.seen.sub}` : ""}`,
    });
  }
}

export interface Verified {
  /** Acknowledged writes lost, by lineage (for the outage figures). */
  lost: Map<Lineage, Ack[]>;
}

export async function verifyAll(x: RunContext, clients: ChaosClient[], ctx: ClientContext): Promise<Verified> {
  const finals: Final[] = [];
  // Keys of sessions their users logged out of are not expected back: accounted, so that acked = present + lost + these.
  for (const c of clients)
    for (const l of c.lineages) if (l.ended === "logout") x.ledger.count(c.scenario, "loggedOut", l.acked.size);
  const open = clients.flatMap((c) =>
    c.lineages.filter((l) => l.ended !== "logout" && (l.acked.size > 0 || l.sub)).map((lineage) => ({ c, lineage })),
  );
  await eachLimited(open, 8, async ({ c, lineage }) => {
    const f = await finalRead(x.ledger, c, lineage);
    if (f) finals.push(f);
    else x.ledger.count(c.scenario, "presentAtEnd", 0);
  });
  const lost = new Map<Lineage, Ack[]>();
  for (const { lineage } of open) {
    const f = finals.find((g) => g.lineage === lineage);
    lost.set(lineage, f ? f.lost : [...lineage.acked.values()]);
  }
  await eachLimited(finals, 8, (f) => inspect(x, f));
  await eachLimited(finals, 8, (f) => oldTokens(x, f));
  const byId = new Map(clients.map((c) => [c.id, c]));
  await eachLimited(ctx.loggedOut, 8, (lo) => loggedOut(x, byId, lo));
  return { lost };
}
