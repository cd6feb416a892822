import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app-env.ts";
import { EdgeError } from "../errors.ts";
import { poolView } from "../origins/index.ts";
import { objectCaller } from "../replication/failover.ts";
import { endAllSessions, liveSessions, type UsersScope } from "../users/index.ts";
import { type AdminApp, errors, json, security } from "./openapi.ts";
import { ErrorSchema, SubParam, UserRevocationSchema, UserSessionsSchema } from "./schemas.ts";

const unavailable = json(ErrorSchema, "The user's index (or the KV store for a pending revocation) is unreachable");

const listRoute = createRoute({
  method: "get",
  path: "/users/{sub}/sessions",
  summary: "A user's live sessions: where each lives, its origin, when it started and was last seen",
  security,
  request: { params: SubParam },
  responses: { 200: json(UserSessionsSchema, "The user's sessions"), 401: errors[401], 503: unavailable },
});

const revokeAllRoute = createRoute({
  method: "delete",
  path: "/users/{sub}/sessions",
  summary: "Revoke every session of a user; each ends on the server, reported one by one",
  security,
  request: { params: SubParam },
  responses: {
    200: json(UserRevocationSchema, "Every session has ended"),
    202: json(UserRevocationSchema, "Some objects were unreachable: their revocation is recorded and retried"),
    401: errors[401],
    503: unavailable,
  },
});

async function scopeOf(c: Context<AppEnv>): Promise<UsersScope> {
  const cfg = c.get("config");
  return {
    env: c.env,
    cfg,
    call: objectCaller(c.env, cfg, (await poolView(c.env, cfg))?.faults ?? []),
    waitUntil: (p) => c.executionCtx.waitUntil(p),
  };
}

/** The index or KV could not be reached: nothing is claimed, the operator retries. */
function indexUnavailable(sub: string, e: unknown): EdgeError {
  return new EdgeError("ERR_SESSION_UNAVAILABLE", `the session index of "${sub}" could not be reached; try again`, {
    status: 503,
    headers: { "retry-after": "1" },
    cause: e,
  });
}

const iso = (ms: number) => new Date(ms).toISOString();

export function registerUserRoutes(admin: AdminApp): void {
  admin.openapi(listRoute, async (c) => {
    const { sub } = c.req.valid("param");
    const found = await liveSessions(await scopeOf(c), sub).catch((e: unknown) => {
      throw indexUnavailable(sub, e);
    });
    const sessions = found.map(({ entry, live }) => {
      const r = live.state === "active" ? live.record : undefined;
      const at = live.state === "active" ? live.at : entry;
      return {
        sid: entry.sid,
        status: entry.revoking
          ? ("revoking" as const)
          : live.state === "unreachable"
            ? ("unreachable" as const)
            : r?.migration
              ? ("migrating" as const)
              : ("active" as const),
        region: at.region,
        epoch: at.epoch,
        jurisdiction: at.jurisdiction ?? null,
        origin: r?.origin ?? entry.origin,
        createdAt: iso(r?.createdAt ?? entry.createdAt),
        lastSeen: r ? iso(r.lastSeen) : null,
        version: r?.version ?? null,
      };
    });
    return c.json({ sub, sessions }, 200);
  });

  admin.openapi(revokeAllRoute, async (c) => {
    const { sub } = c.req.valid("param");
    const report = await endAllSessions(await scopeOf(c), sub, "all sessions revoked by an operator").catch(
      (e: unknown) => {
        throw indexUnavailable(sub, e);
      },
    );
    const count = (r: string) => report.filter((s) => s.result === r).length;
    const body = {
      sub,
      revoked: count("revoked"),
      alreadyEnded: count("already_ended"),
      pending: count("pending"),
      sessions: report,
    };
    return c.json(body, body.pending ? 202 : 200);
  });
}
