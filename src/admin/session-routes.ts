import { createRoute, z } from "@hono/zod-openapi";
import { readCacheFor } from "../cache/index.ts";
import { LOCATION_HINTS } from "../config/index.ts";
import { EdgeError, sessionUnavailable } from "../errors.ts";
import { evacuateRegion, locateSession } from "../migration/index.ts";
import {
  forgetObservedRegions,
  poolStub,
  poolView,
  refreshPoolView,
  regionsDown,
  reportCounts,
  reportEnded,
} from "../origins/index.ts";
import { ObjectUnavailable, objectCaller, recoverSession } from "../replication/failover.ts";
import { writeRevocation } from "../replication/store.ts";
import { following, type SessionAt, type SessionMeta, type SessionRecord } from "../session/index.ts";
import type { Forward } from "../session/record.ts";
import { principalStub } from "../users/index.ts";
import { type AdminApp, errors, json, security } from "./openapi.ts";
import {
  FaultSchema,
  FaultsChangeSchema,
  MigrateRequestSchema,
  MigrationResultSchema,
  SessionViewSchema,
} from "./schemas.ts";
import { sessionView } from "./sessions.ts";

const SidParam = z.object({
  sid: z
    .string()
    .regex(/^[A-Za-z0-9_-]{22,64}$/, "must be a session id")
    .openapi({ param: { name: "sid", in: "path" } }),
});
const RegionParam = z.object({ region: z.enum(LOCATION_HINTS).openapi({ param: { name: "region", in: "path" } }) });

const inspectRoute = createRoute({
  method: "get",
  path: "/sessions/{sid}",
  summary: "One session: where it lives, its origin, version, sizes and audit trail (data only with ?data=true)",
  security,
  request: { params: SidParam, query: z.object({ data: z.enum(["true", "false"]).optional() }) },
  responses: {
    200: json(SessionViewSchema, "The session"),
    400: errors[400],
    401: errors[401],
    404: errors[404],
    503: errors[503],
  },
});

const revokeRoute = createRoute({
  method: "delete",
  path: "/sessions/{sid}",
  summary: "Revoke a session: it ends on the server; its tokens open nothing",
  security,
  request: { params: SidParam },
  responses: {
    200: json(SessionViewSchema, "The ended session"),
    401: errors[401],
    404: errors[404],
    409: errors[409],
    503: errors[503],
  },
});

const migrateRoute = createRoute({
  method: "post",
  path: "/sessions/{sid}/migrate",
  summary: "Move a session's state to another region or jurisdiction",
  security,
  request: {
    params: SidParam,
    body: { content: { "application/json": { schema: MigrateRequestSchema } }, required: true },
  },
  responses: {
    200: json(MigrationResultSchema, "Migrated"),
    202: json(MigrationResultSchema, "Hand-over in progress; retried by the session"),
    400: errors[400],
    401: errors[401],
    404: errors[404],
    409: errors[409],
    503: errors[503],
  },
});

const evacuateRoute = createRoute({
  method: "post",
  path: "/regions/{region}/evacuate",
  summary: "Migrate every session homed in a region; streams one JSON line per session, then a summary",
  security,
  request: {
    params: RegionParam,
    body: {
      content: { "application/json": { schema: z.strictObject({ to: z.enum(LOCATION_HINTS).optional() }) } },
      required: false,
    },
  },
  responses: { 200: { description: "application/x-ndjson progress lines" }, 400: errors[400], 401: errors[401] },
});

const setFaultRoute = createRoute({
  method: "post",
  path: "/faults",
  summary: "Development and tests only: mark a region's objects, an origin or a session as down or slow",
  security,
  request: { body: { content: { "application/json": { schema: FaultSchema } }, required: true } },
  responses: {
    200: json(FaultsChangeSchema, "Faults in force"),
    400: errors[400],
    401: errors[401],
    403: errors[404],
  },
});

const clearFaultsRoute = createRoute({
  method: "delete",
  path: "/faults",
  summary: "Development and tests only: clear every injected fault",
  security,
  responses: { 200: json(FaultsChangeSchema, "No faults"), 401: errors[401], 403: errors[404] },
});

/** The operator API names epochs as the tokens do (`ep`, `reg`, `jur`). */
function wireForward(f: Forward): { ep: number; reg: string; jur?: string } {
  return { ep: f.epoch, reg: f.region, ...(f.jurisdiction ? { jur: f.jurisdiction } : {}) };
}

const unknownSession = (sid: string) => new EdgeError("ERR_UNKNOWN_SESSION", `no session ${sid}`, { status: 404 });

/** The session's object (or a hop on the way to it) could not be reached: a typed 503, never a 500. */
function asUnavailable(sid: string, e: unknown): EdgeError | unknown {
  if (e instanceof ObjectUnavailable)
    return sessionUnavailable(
      `session ${sid}: its object in ${e.at.region} could not be reached (${e.code}); try again`,
      e,
    );
  return e;
}
const unreachable =
  (sid: string) =>
  (e: unknown): never => {
    throw asUnavailable(sid, e);
  };

export function registerSessionRoutes(admin: AdminApp): void {
  admin.openapi(inspectRoute, async (c) => {
    const cfg = c.get("config");
    const { sid } = c.req.valid("param");
    const view = await poolView(c.env, cfg);
    const found = await locateSession(c.env, cfg, sid, objectCaller(c.env, cfg, view?.faults ?? [])).catch(
      unreachable(sid),
    );
    if (!found) throw unknownSession(sid);
    return c.json(sessionView(found, c.req.valid("query").data === "true"), 200);
  });

  admin.openapi(revokeRoute, async (c) => {
    const cfg = c.get("config");
    const { sid } = c.req.valid("param");
    const call = objectCaller(c.env, cfg, (await poolView(c.env, cfg))?.faults ?? []);
    const revokeAt = async (at: SessionAt, active: SessionRecord) => {
      const meta: SessionMeta = {
        sid,
        epoch: at.epoch,
        origin: active.origin,
        region: active.region,
        createdAt: active.createdAt,
        idleMs: active.idleMs,
        absoluteMs: active.absoluteMs,
        maxDataBytes: cfg.limits.sessionBytes,
        pool: active.pool,
      };
      const { result } = await following(at, call, (stub) => stub.revoke(meta));
      if (result.kind === "destroyed") c.executionCtx.waitUntil(reportCounts(c.env, cfg.pool.name, result.counts));
    };
    const revoke = async () => {
      const found = await locateSession(c.env, cfg, sid, call);
      if (!found) throw unknownSession(sid);
      if (found.stored.status !== "active")
        throw new EdgeError("ERR_SESSION_ENDED", `session ${sid} has already ended`, { status: 409 });
      const active = found.stored;
      // The user's index forgets it (a stale entry would only be found gone later).
      if (active.sub !== undefined)
        c.executionCtx.waitUntil(
          principalStub(c.env, active.sub)
            .unregister([sid])
            .catch(() => {}),
        );
      try {
        await revokeAt(found.at, active);
      } catch (e) {
        if (!(e instanceof ObjectUnavailable)) throw e;
        // Its object is out of reach: recover the session forward (a newer epoch, or a restore that
        // fences this one) and end it there, so the revoke holds wherever the session turns up.
        const recovered = await recoverSession(
          {
            env: c.env,
            cfg,
            call,
            down: regionsDown(cfg, (await poolView(c.env, cfg))?.faults ?? []),
            clientRegion: cfg.defaultRegion,
            recordEvent: () => {},
          },
          e,
        );
        if (recovered.kind === "live" || recovered.kind === "restored")
          await revokeAt(recovered.session, {
            ...active,
            origin: recovered.session.origin,
            region: recovered.session.region,
          });
      }
    };
    await revoke().catch(async (e: unknown) => {
      const err = asUnavailable(sid, e);
      if (!(err instanceof EdgeError) || err.code !== "ERR_SESSION_UNAVAILABLE") throw err;
      // Never a silent no-op: the operator hears that the session is not ended yet. Meanwhile no restore
      // from its snapshot may bring it back (the mark outlives any session that could carry this id).
      await writeRevocation(c.env.SNAPSHOTS, sid, Date.now() + cfg.absoluteTimeout * 1000);
      throw sessionUnavailable(
        `session ${sid} could not be reached to revoke it (${err.message}). It will not be restored elsewhere, but it ends only when this call succeeds: repeat it`,
        err,
        5,
      );
    });
    // Revoked here: this isolate stops answering it from memory now, every other one through the pool.
    readCacheFor(cfg).evict(sid);
    c.executionCtx.waitUntil(reportEnded(c.env, cfg, [sid]));
    const after = await locateSession(c.env, cfg, sid, call).catch(unreachable(sid));
    if (!after) throw unknownSession(sid);
    return c.json(sessionView(after, false), 200);
  });

  admin.openapi(migrateRoute, async (c) => {
    const cfg = c.get("config");
    const { sid } = c.req.valid("param");
    const body = c.req.valid("json");
    const call = objectCaller(c.env, cfg, (await poolView(c.env, cfg))?.faults ?? []);
    const found = await locateSession(c.env, cfg, sid, call).catch(unreachable(sid));
    if (!found) throw unknownSession(sid);
    if (found.stored.status !== "active")
      throw new EdgeError("ERR_SESSION_ENDED", `session ${sid} has ended`, { status: 409 });
    const current = found.stored;
    const reg =
      body.region ??
      (body.jurisdiction === "eu" && !["weur", "eeur"].includes(current.region) ? "weur" : current.region);
    if (reg === current.region && (body.jurisdiction ?? current.jurisdiction) === current.jurisdiction)
      throw new EdgeError("ERR_ALREADY_THERE", `session ${sid} already lives in ${reg}`, { status: 409 });
    const target = { region: reg, ...(body.jurisdiction ? { jurisdiction: body.jurisdiction } : {}) };
    const result = await call(found.at, (stub) => stub.migrate(target, "operator")).catch(unreachable(sid));
    readCacheFor(cfg).evict(sid);
    switch (result.kind) {
      case "migrated":
        return c.json(
          {
            status: "migrated" as const,
            from: wireForward(result.from),
            to: wireForward(result.to),
            durationMs: result.durationMs,
          },
          200,
        );
      case "pending":
        return c.json({ status: "pending" as const, from: null, to: wireForward(result.to), durationMs: null }, 202);
      case "refused":
        throw new EdgeError(result.code, result.message, { status: 409 });
      case "ended":
        throw new EdgeError("ERR_SESSION_ENDED", `session ${sid} has ended (${result.reason})`, { status: 409 });
      case "moved":
        throw new EdgeError("ERR_SESSION_MOVED", `session ${sid} moved while this call ran; try again`, {
          status: 409,
        });
      case "not_found":
        throw unknownSession(sid);
    }
  });

  admin.openapi(evacuateRoute, async (c) => {
    const cfg = c.get("config");
    const { region } = c.req.valid("param");
    const to = c.req.valid("json")?.to;
    const call = objectCaller(c.env, cfg, (await poolView(c.env, cfg))?.faults ?? []);
    const encoder = new TextEncoder();
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const run = async () => {
      const writer = writable.getWriter();
      const totals = { migrated: 0, skipped: 0, failed: 0 };
      try {
        for await (const line of evacuateRegion(c.env, cfg, region, to, call)) {
          totals[line.status] += 1;
          readCacheFor(cfg).evict(line.sid);
          await writer.write(encoder.encode(`${JSON.stringify(line)}\n`));
        }
        await writer.write(encoder.encode(`${JSON.stringify({ done: true, region, ...totals })}\n`));
      } catch (e) {
        await writer.write(encoder.encode(`${JSON.stringify({ done: false, region, error: String(e), ...totals })}\n`));
      } finally {
        await writer.close();
      }
    };
    // Not waitUntil: the streamed response keeps the request alive while it is read, and backpressure
    // paces the migrations to the reader. A client that disconnects stops the evacuation (re-run it: it resumes).
    void run().catch(() => {});
    return new Response(readable, { status: 200, headers: { "content-type": "application/x-ndjson; charset=utf-8" } });
  });

  const requireFaults = (enabled: boolean) => {
    if (!enabled)
      throw new EdgeError(
        "ERR_FAULT_INJECTION_DISABLED",
        "fault injection is off (ENVIRONMENT=development or FAULT_INJECTION=true outside production)",
        {
          status: 403,
        },
      );
  };

  admin.openapi(setFaultRoute, async (c) => {
    const cfg = c.get("config");
    requireFaults(cfg.faultInjection);
    const faults = await poolStub(c.env, cfg).setFault(c.req.valid("json"));
    await refreshPoolView(c.env, cfg);
    return c.json({ faults, propagatesWithinSeconds: cfg.pool.cacheSeconds }, 200);
  });

  admin.openapi(clearFaultsRoute, async (c) => {
    const cfg = c.get("config");
    requireFaults(cfg.faultInjection);
    await poolStub(c.env, cfg).clearFaults();
    forgetObservedRegions(cfg);
    await refreshPoolView(c.env, cfg);
    return c.json({ faults: [], propagatesWithinSeconds: cfg.pool.cacheSeconds }, 200);
  });
}
