import { z } from "@hono/zod-openapi";
import { LOCATION_HINTS } from "../config/schema.ts";
import { ORIGIN_STATES } from "./health.ts";

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string().openapi({ example: "ERR_INVALID_REQUEST" }), message: z.string() }) })
  .openapi("Error");

export const OriginIdParam = z.object({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
    .openapi({ param: { name: "id", in: "path" }, example: "origin-1" }),
});

export const DrainRequestSchema = z
  .strictObject({
    deadline: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: "When the origin's sessions move (RFC 3339)." }),
    in: z
      .number()
      .int()
      .min(0)
      .max(30 * 86400)
      .optional()
      .openapi({ description: "Seconds from now until the sessions move." }),
  })
  .refine((b) => !(b.deadline && b.in !== undefined), { message: "give either deadline or in, not both", path: ["in"] })
  .openapi("DrainRequest", {
    description:
      "No new sessions go to the origin from now on. Its sessions stay until the deadline, then move on their next request. With neither field, they stay until they end by themselves.",
  });

export const DrainSchema = z
  .object({
    since: z.string(),
    deadline: z.string().nullable(),
    status: z.enum(["draining", "complete"]),
    completedAt: z.string().nullable(),
  })
  .openapi("Drain");

/** Beside every pool change: it acts at once in the isolate that answered, and everywhere within this. */
const propagatesWithinSeconds = z.number().int().openapi({
  description:
    "The change acts at once in the isolate that took this call; every other isolate sees it within this many seconds (POOL_CACHE_SECONDS).",
});

export const DrainChangeSchema = DrainSchema.extend({ propagatesWithinSeconds }).openapi("DrainChange");

export const OriginStatusSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    region: z.string().nullable(),
    weight: z.number(),
    status: z
      .object({
        state: z.enum(ORIGIN_STATES),
        reason: z.string(),
        conditions: z.array(z.enum(ORIGIN_STATES)),
      })
      .openapi({
        description:
          "One state from active checks, ejection, drain and faults, worst first: down, ejected, drained, draining, idle (weight 0), healthy. `conditions` lists every one that applies.",
      }),
    health: z.object({
      state: z.enum(["healthy", "unhealthy"]),
      since: z.string(),
      checked: z.boolean().openapi({ description: "Whether active health checks are configured." }),
      lastCheckAt: z.string().nullable(),
      lastError: z.string().nullable(),
      recentErrors: z
        .array(z.object({ at: z.string(), error: z.string() }))
        .openapi({ description: "The last failed probes, newest last; kept after a recovery." }),
    }),
    ejectedUntil: z.string().nullable(),
    takesNewSessions: z.boolean(),
    sessions: z.number().openapi({ description: "Live sessions with stored state assigned to the origin." }),
    drain: DrainSchema.nullable(),
    connections: z
      .object({
        open: z
          .number()
          .openapi({ description: "Open WebSockets and event streams to the origin, through the layer." }),
        drainClosed: z.number().openapi({
          description: "Long-lived connections the layer closed (with a reconnect hint) since its drain started.",
        }),
      })
      .openapi({ description: "Long-lived connections, as isolates last reported them (every few seconds)." }),
  })
  .openapi("OriginStatus");

export const OriginsSchema = z.object({ origins: z.array(OriginStatusSchema) }).openapi("Origins");
export const OriginsChangeSchema = OriginsSchema.extend({ propagatesWithinSeconds }).openapi("OriginsChange");

export const StatusSchema = z
  .object({
    version: z.string(),
    environment: z.string(),
    origins: z.array(z.object({ id: z.string(), url: z.string(), region: z.string().nullable(), weight: z.number() })),
    keys: z.object({
      signing: z.string(),
      kids: z.array(z.object({ kid: z.string(), alg: z.string(), published: z.boolean() })),
      generated: z.boolean(),
    }),
  })
  .openapi("Status");

export const StatsSchema = z
  .object({
    origins: z.array(OriginStatusSchema),
    regions: z.array(z.object({ region: z.string(), sessions: z.number() })),
    totals: z
      .object({
        sessions: z.number(),
        onListedOrigins: z.number(),
        byRegion: z.number(),
        unlisted: z.array(z.object({ id: z.string(), sessions: z.number() })),
      })
      .openapi({
        description:
          "sessions = onListedOrigins + the unlisted ones (pinned to origins no longer in ORIGINS; they move on their next request) = byRegion.",
      }),
    events: z.array(
      z.object({
        at: z.string(),
        event: z.string().openapi({ example: "session_repinned" }),
        oid: z.string().openapi({ description: "The origin, or the fault target (origin:<id>, region:<hint>, *)." }),
        lane: z
          .string()
          .nullable()
          .openapi({ description: "The configured origin the event concerns; null for pool-wide events." }),
        detail: z.string().nullable(),
      }),
    ),
  })
  .openapi("Stats");

export const SessionViewSchema = z
  .object({
    sid: z.string(),
    status: z.enum(["active", "migrating", "moved", "destroyed"]),
    epoch: z.number(),
    region: z.string(),
    jurisdiction: z.string().nullable(),
    reason: z.string().nullable(),
    endedAt: z.string().nullable(),
    origin: z.string().nullable(),
    home: z.string().nullable().optional(),
    version: z.number().nullable(),
    sub: z.string().nullable(),
    dataBytes: z.number().nullable(),
    createdAt: z.string().nullable().optional(),
    updatedAt: z.string().nullable().optional(),
    lastSeen: z.string().nullable().optional(),
    audit: z.array(z.object({ at: z.string(), event: z.string(), detail: z.string().nullable() })),
    data: z.record(z.string(), z.unknown()).optional(),
    claims: z.record(z.string(), z.unknown()).nullable().optional(),
  })
  .openapi("Session");

export const MigrateRequestSchema = z
  .strictObject({
    region: z.enum(LOCATION_HINTS).optional(),
    jurisdiction: z.enum(["eu"]).optional(),
  })
  .refine((b) => b.region !== undefined || b.jurisdiction !== undefined, {
    message: "give region or jurisdiction",
    path: ["region"],
  })
  .openapi("MigrateRequest");

const ForwardSchema = z.object({ ep: z.number(), reg: z.string(), jur: z.string().optional() });

export const MigrationResultSchema = z
  .object({
    status: z.enum(["migrated", "pending"]),
    from: ForwardSchema.nullable(),
    to: ForwardSchema,
    durationMs: z.number().nullable(),
  })
  .openapi("MigrationResult");

export const FaultSchema = z
  .strictObject({
    target: z
      .string()
      .regex(
        /^(region:[a-z]+|origin:[A-Za-z0-9._-]+|session:[A-Za-z0-9_-]+)$/,
        'must be "region:<hint>", "origin:<id>" or "session:<sid>"',
      ),
    mode: z.enum(["down", "slow"]),
    ms: z.number().int().min(0).max(60_000).optional(),
  })
  .openapi("Fault");

export const FaultsChangeSchema = z.object({ faults: z.array(FaultSchema), propagatesWithinSeconds }).openapi("Faults");

export const SubParam = z.object({
  sub: z
    .string()
    .min(1)
    .max(256)
    .openapi({ param: { name: "sub", in: "path" }, example: "ada", description: "The `sub` an origin logged in." }),
});

export const UserSessionSchema = z
  .object({
    sid: z.string(),
    status: z.enum(["active", "migrating", "revoking", "unreachable"]).openapi({
      description:
        "revoking: revoked while its object was unreachable; retried until it answers (a restore refuses it meanwhile). unreachable: its object did not answer now.",
    }),
    region: z.string(),
    epoch: z.number(),
    jurisdiction: z.string().nullable(),
    origin: z.string(),
    createdAt: z.string(),
    lastSeen: z.string().nullable().openapi({ description: "When the session was last seen (to within a minute)." }),
    version: z.number().nullable(),
  })
  .openapi("UserSession");

export const UserSessionsSchema = z
  .object({ sub: z.string(), sessions: z.array(UserSessionSchema) })
  .openapi("UserSessions");

export const UserRevocationSchema = z
  .object({
    sub: z.string(),
    revoked: z.number(),
    alreadyEnded: z.number(),
    pending: z.number().openapi({
      description:
        "Sessions whose object could not be reached: the revocation is recorded (a restore elsewhere refuses them) and retried until each object answers.",
    }),
    sessions: z.array(
      z.object({
        sid: z.string(),
        region: z.string(),
        epoch: z.number(),
        origin: z.string(),
        result: z.enum(["revoked", "already_ended", "pending"]),
      }),
    ),
  })
  .openapi("UserRevocation");
