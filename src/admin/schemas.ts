import { z } from "@hono/zod-openapi";

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

export const OriginStatusSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    region: z.string().nullable(),
    weight: z.number(),
    health: z.object({
      state: z.enum(["healthy", "unhealthy"]),
      since: z.string(),
      checked: z.boolean().openapi({ description: "Whether active health checks are configured." }),
      lastCheckAt: z.string().nullable(),
      lastError: z.string().nullable(),
    }),
    ejectedUntil: z.string().nullable(),
    takesNewSessions: z.boolean(),
    sessions: z.number().openapi({ description: "Live sessions with stored state assigned to the origin." }),
    drain: DrainSchema.nullable(),
  })
  .openapi("OriginStatus");

export const OriginsSchema = z.object({ origins: z.array(OriginStatusSchema) }).openapi("Origins");

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
    events: z.array(
      z.object({
        at: z.string(),
        event: z.string().openapi({ example: "session_repinned" }),
        oid: z.string(),
        detail: z.string().nullable(),
      }),
    ),
  })
  .openapi("Stats");
