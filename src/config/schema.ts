import { z } from "zod";

/** Location hints accepted by Durable Objects (developers.cloudflare.com/durable-objects/reference/data-location). */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** RFC 6265 cookie-name is an RFC 7230 token. */
const COOKIE_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

const originUrl = z
  .string()
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "http:" || u.protocol === "https:") && !u.username && !u.password && !u.search && !u.hash;
    } catch {
      return false;
    }
  }, "must be an absolute http(s) URL without credentials, query or fragment")
  .transform((s) => s.replace(/\/+$/, ""));

export const OriginSchema = z.strictObject({
  id: z.string().regex(ID, "must be 1-64 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)"),
  url: originUrl,
  region: z.enum(LOCATION_HINTS).optional(),
  weight: z.number().int().min(0).max(1000).default(1),
  health: z
    .strictObject({
      path: z.string().startsWith("/", "must start with /").max(256),
      /** Seconds between probes. */
      interval: z.number().int().min(1).max(3600).default(10),
      /** Milliseconds before a probe counts as failed. */
      timeout: z.number().int().min(50).max(60_000).default(2000),
      /** Consecutive successes that make an unhealthy origin healthy (HAProxy `rise`). */
      rise: z.number().int().min(1).max(100).default(2),
      /** Consecutive failures that make a healthy origin unhealthy (HAProxy `fall`). */
      fall: z.number().int().min(1).max(100).default(3),
    })
    .optional(),
});
export type OriginConfig = z.output<typeof OriginSchema>;

export const OriginsSchema = z
  .array(OriginSchema)
  .min(1, "must list at least one origin")
  .max(256)
  .superRefine((origins, ctx) => {
    const seen = new Set<string>();
    origins.forEach((o, i) => {
      if (seen.has(o.id)) ctx.addIssue({ code: "custom", message: `duplicate origin id "${o.id}"`, path: [i, "id"] });
      seen.add(o.id);
    });
    if (!origins.some((o) => o.weight > 0))
      ctx.addIssue({ code: "custom", message: "at least one origin needs a weight above 0" });
  });

const kid = z.string().regex(ID, "must be 1-64 characters of A-Z a-z 0-9 . _ -");
const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/, "must be base64url");

/** Only the algorithms we accept (RFC 8725 §3.1: an explicit allow-list). */
export const SigningJwkSchema = z.discriminatedUnion("kty", [
  z.looseObject({
    kty: z.literal("OKP"),
    crv: z.literal("Ed25519"),
    kid,
    alg: z.enum(["EdDSA", "Ed25519"]).optional(),
    x: b64url,
    d: b64url,
  }),
  z.looseObject({
    kty: z.literal("EC"),
    crv: z.literal("P-256"),
    kid,
    alg: z.literal("ES256").optional(),
    x: b64url,
    y: b64url,
    d: b64url,
  }),
  z.looseObject({
    kty: z.literal("oct"),
    kid,
    alg: z.literal("HS256").optional(),
    // RFC 7518 §3.2: an HS256 key must be at least 256 bits.
    k: b64url.min(43, "must be at least 256 bits"),
  }),
]);
export type SigningJwk = z.output<typeof SigningJwkSchema>;

export const KeySetSchema = z
  .strictObject({ keys: z.array(SigningJwkSchema).min(1, "must hold at least one key").max(16) })
  .superRefine((set, ctx) => {
    const seen = new Set<string>();
    set.keys.forEach((k, i) => {
      if (seen.has(k.kid))
        ctx.addIssue({ code: "custom", message: `duplicate kid "${k.kid}"`, path: ["keys", i, "kid"] });
      seen.add(k.kid);
    });
  });

const seconds = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(["true", "false", "1", "0"]).transform((s) => s === "true" || s === "1");

/** RFC 6750 token68 without the padding: what `Authorization: Bearer` can carry (and Hono's bearerAuth accepts). */
export const ADMIN_TOKEN_CHARACTERS = /^[A-Za-z0-9._~+/-]+$/;

/** The Worker's vars and secrets, as strings, before anything is derived from them. */
export const EnvSchema = z.object({
  ENVIRONMENT: z.enum(["development", "staging", "production"]).default("production"),
  ORIGINS: z.string({ error: "is required (a JSON array of origins)" }),
  SESSION_SIGNING_KEYS: z.string().optional(),
  /** Checked apart (AdminTokenSchema): a bad admin token disables the operator API, not the layer. */
  ADMIN_TOKEN: z.string().optional(),
  COOKIE_NAME: z.string().regex(COOKIE_TOKEN, "must be an RFC 6265 cookie name").default("__Host-edge-session"),
  SESSION_IDLE_TIMEOUT: seconds(10, 30 * 86400).default(1800),
  SESSION_ABSOLUTE_TIMEOUT: seconds(10, 400 * 86400).default(28800),
  STRICT_TOKENS: bool.default(false),
  TOKEN_ISSUER: z.string().min(1).max(256).default("edge-session"),
  FORWARDED_AUDIENCE: z.string().min(1).max(256).default("edge-session:origin"),
  // The whole X-Edge-Session value; 6 KiB leaves room under 8 KiB header-line limits (nginx, Apache) and
  // Node's 16 KiB for all headers together. Never below 3 KiB: the header without data and claims fits in that.
  FORWARDED_MAX_BYTES: seconds(3072, 64 * 1024).default(6144),
  /** Deprecated: an extra cap on `data` alone, applied before FORWARDED_MAX_BYTES; unset by default. */
  FORWARDED_DATA_MAX_BYTES: seconds(0, 64 * 1024).optional(),
  LOGIN_CLAIMS_MAX_BYTES: seconds(0, 64 * 1024).default(2048),
  MAX_PATCH_BYTES: seconds(2, 64 * 1024).default(8192),
  MAX_SESSION_BYTES: seconds(1024, 1536 * 1024).default(256 * 1024),
  DEFAULT_REGION: z.enum(LOCATION_HINTS).default("enam"),
  FAILOVER_POLICY: z.enum(["sticky", "temporary"]).default("sticky"),
  RETURN_HOME_AFTER: seconds(0, 86400).default(60),
  OUTLIER_CONSECUTIVE_FAILURES: seconds(1, 1000).default(5),
  OUTLIER_BASE_EJECTION: seconds(1, 3600).default(30),
  OUTLIER_MAX_EJECTION_PERCENT: seconds(0, 100).default(50),
  MAX_RETRIES: seconds(0, 5).default(2),
  ORIGIN_TIMEOUT: seconds(1, 600).default(30),
  RETRY_BODY_MAX_BYTES: seconds(0, 10 * 1024 * 1024).default(1024 * 1024),
  BOUNDED_LOAD_FACTOR: z.coerce.number().min(1).max(100).default(1.25),
  FALLBACK_ORIGIN: z.string().optional(),
  POOL_NAME: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 . _ -")
    .default("default"),
  POOL_CACHE_SECONDS: seconds(0, 60).default(3),
  /** How long an isolate serves a session version from memory after its object last confirmed it; 0: strict. */
  READ_CACHE_SECONDS: seconds(0, 60).default(5),
  SNAPSHOT_KEY: z.string().optional(),
  /** Milliseconds to wait for a session object before restoring from its snapshot elsewhere. */
  SESSION_TIMEOUT_MS: seconds(50, 60_000).default(3000),
  FAULT_INJECTION: bool.default(false),
  AUTO_MIGRATE: bool.default(true),
  MIGRATE_AFTER_REQUESTS: seconds(1, 10_000).default(5),
  MIGRATE_AFTER_SECONDS: seconds(0, 86_400).default(30),
  /** "eu": sessions created from EU countries live in the EU jurisdiction and never leave it. */
  JURISDICTIONS: z.enum(["none", "eu"]).default("none"),
  /** Most keys (at any depth) a session document may hold. */
  MAX_SESSION_KEYS: seconds(1, 100_000).default(1000),
  /**
   * Deepest nesting of a session document. Every codec on a session's way (RPC structured clone,
   * JSON, the snapshot codec, merge patch) recurses per level; workerd's stack gives out in the low
   * thousands, and sooner inside a Durable Object calling another. 256 leaves a wide margin.
   */
  MAX_SESSION_DEPTH: seconds(1, 256).default(64),
  CLIENT_BINDING: z.enum(["off", "ua", "ip", "ua+ip", "ja4"]).default("off"),
  /** Most concurrent logged-in sessions per user (`sub`); a login past it ends the oldest. 0: no cap. */
  MAX_SESSIONS_PER_USER: seconds(0, 10_000).default(0),
  /** Adds X-Edge-Session-Status to proxied responses; unset: on in development only. */
  SESSION_STATUS_HEADER: bool.optional(),
  /** JSON array of ids origins issue (response header or cookie) that the layer binds to them. */
  LEARNED_AFFINITY: z.string().optional(),
  /** Sent to origins in X-Edge-Origin-Auth so they can refuse requests that did not come through the layer. */
  ORIGIN_AUTH_SECRET: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .min(32, "must be at least 32 characters")
      .regex(ADMIN_TOKEN_CHARACTERS, "may only hold the characters A-Z a-z 0-9 . _ ~ + / -")
      .optional(),
  ),
});
/** RFC 9110 field-name (a token), kept to what a learned id can sensibly travel in. */
const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/** Headers that carry something else than an origin's session id, or that the layer owns. */
const NOT_LEARNABLE = new Set([
  "cookie",
  "set-cookie",
  "host",
  "authorization",
  "content-length",
  "content-type",
  "connection",
  "upgrade",
  "transfer-encoding",
  "forwarded",
]);

/**
 * One id an origin issues and the layer learns (LEARNED_AFFINITY): a response
 * header (MCP's Mcp-Session-Id) or a cookie (JSESSIONID), and what happens when
 * the origin it is bound to is gone.
 */
export const LearnedRuleSchema = z
  .strictObject({
    header: z
      .string()
      .regex(HEADER_TOKEN, "must be an HTTP header name")
      .refine((h) => !NOT_LEARNABLE.has(h.toLowerCase()), "cannot be learned (it carries something else)")
      .refine((h) => !/^x-(edge-session|forwarded)/i.test(h), "is reserved for the layer")
      .optional(),
    cookie: z.string().regex(COOKIE_TOKEN, "must be an RFC 6265 cookie name").optional(),
    whenGone: z.enum(["strict", "failover"]).default("strict"),
  })
  .superRefine((r, ctx) => {
    if ((r.header === undefined) === (r.cookie === undefined))
      ctx.addIssue({ code: "custom", message: 'needs exactly one of "header" or "cookie"' });
  });

export const LearnedAffinitySchema = z
  .array(LearnedRuleSchema)
  .max(8)
  .superRefine((rules, ctx) => {
    const seen = new Set<string>();
    rules.forEach((r, i) => {
      const key = r.header !== undefined ? `header:${r.header.toLowerCase()}` : `cookie:${r.cookie}`;
      if (seen.has(key))
        ctx.addIssue({ code: "custom", message: `duplicate rule ${key}`, path: [i, r.header ? "header" : "cookie"] });
      seen.add(key);
    });
  });

export const AdminTokenSchema = z
  .string()
  .min(24, "must be at least 24 characters")
  .regex(ADMIN_TOKEN_CHARACTERS, "may only hold the characters A-Z a-z 0-9 . _ ~ + / -");
export const FallbackOriginSchema = z.strictObject({ id: OriginSchema.shape.id, url: originUrl });

export type RawEnvConfig = z.output<typeof EnvSchema>;
