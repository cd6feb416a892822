import type { z } from "zod";
import { EdgeError } from "../errors.ts";
import { log } from "../log.ts";
import { importSnapshotKey, type SnapshotKey } from "../replication/codec.ts";
import { buildKeyRing, generateDevelopmentKeys, type KeyRing } from "../token/keys.ts";
import {
  EnvSchema,
  FallbackOriginSchema,
  KeySetSchema,
  type LocationHint,
  type OriginConfig,
  OriginsSchema,
} from "./schema.ts";

export type { LocationHint, OriginConfig } from "./schema.ts";
export { LOCATION_HINTS } from "./schema.ts";

export interface EdgeLimits {
  /** Session data larger than this (serialized) is left out of the forwarded header. */
  forwardedDataBytes: number;
  /** Largest accepted `X-Edge-Session-Set` value. */
  patchBytes: number;
  /** Largest session document (serialized `data`). */
  sessionBytes: number;
  /** Most keys, at any depth, in a session document. */
  sessionKeys: number;
}

export interface EdgeConfig {
  environment: "development" | "staging" | "production";
  isDevelopment: boolean;
  origins: OriginConfig[];
  keys: KeyRing;
  adminToken: string | undefined;
  cookieName: string;
  /** Seconds. */
  idleTimeout: number;
  /** Seconds. */
  absoluteTimeout: number;
  strictTokens: boolean;
  issuer: string;
  affinityAudience: string;
  forwardedAudience: string;
  limits: EdgeLimits;
  /** Home region for sessions whose client location is unknown (local requests carry no `cf`). */
  defaultRegion: LocationHint;
  pool: PoolSettings;
  snapshots: { key: SnapshotKey; generated: boolean };
  /** Milliseconds to wait for a session object before failing over to its snapshot. */
  sessionTimeoutMs: number;
  /** Fault injection (/__edge/faults) is honoured only when this is true. */
  faultInjection: boolean;
  migration: { auto: boolean; afterRequests: number; afterSeconds: number };
  jurisdictions: "none" | "eu";
  clientBinding: "off" | "ua" | "ip" | "ua+ip" | "ja4";
}

export interface PoolSettings {
  /** Name of the control-plane object holding health, drains and counts. */
  name: string;
  /** Seconds an isolate reuses its copy of the pool view. */
  cacheSeconds: number;
  failover: "sticky" | "temporary";
  /** Seconds the home origin must have been healthy before a `temporary` session returns. */
  returnHomeAfter: number;
  outlier: { consecutiveFailures: number; baseEjectionSeconds: number; maxEjectionPercent: number };
  maxRetries: number;
  /** Seconds to wait for an origin's response headers before the attempt counts as failed. */
  originTimeout: number;
  retryBodyMaxBytes: number;
  boundedLoadFactor: number;
  /** Serves requests when no origin can (a sorry page); sessions are never assigned to it. */
  fallback: { id: string; url: string } | undefined;
}

/** Thrown for bad configuration; every request then gets a 500 naming the field. */
export class ConfigError extends EdgeError {
  readonly field: string;
  constructor(field: string, message: string) {
    super("ERR_CONFIG", `invalid configuration: ${field}: ${message}`, { status: 500, report: true });
    this.field = field;
  }
}

function fieldPath(root: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, part) => (typeof part === "number" ? `${acc}[${part}]` : `${acc}.${String(part)}`),
    root,
  );
}

function firstIssue(root: string, error: z.ZodError): ConfigError {
  const issue = error.issues[0];
  if (!issue) return new ConfigError(root, "is invalid");
  const [head, ...rest] = issue.path;
  return root
    ? new ConfigError(fieldPath(root, issue.path), issue.message)
    : new ConfigError(fieldPath(String(head ?? "env"), rest), issue.message);
}

function parseJson(field: string, raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw new ConfigError(field, `is not valid JSON (${(e as Error).message})`);
  }
}

/** 32 fixed bytes, only ever used when ENVIRONMENT=development and no SNAPSHOT_KEY is set. */
export const DEVELOPMENT_SNAPSHOT_KEY = "ZGV2ZWxvcG1lbnQtb25seS1zbmFwc2hvdC1rZXkhISE";

export async function loadSnapshotKey(
  raw: string | undefined,
  isDevelopment: boolean,
): Promise<EdgeConfig["snapshots"]> {
  if (raw === undefined || raw.trim() === "") {
    if (!isDevelopment)
      throw new ConfigError(
        "SNAPSHOT_KEY",
        "is not set; set it with `wrangler secret put SNAPSHOT_KEY` (32 random bytes, base64)",
      );
    log("warn", "config_dev_snapshot_key", {
      message:
        "!!! SNAPSHOT_KEY is not set: snapshots are encrypted with a fixed development key. Never run like this in production. !!!",
    });
    return { key: await importSnapshotKey(DEVELOPMENT_SNAPSHOT_KEY), generated: true };
  }
  try {
    return { key: await importSnapshotKey(raw), generated: false };
  } catch (e) {
    throw new ConfigError("SNAPSHOT_KEY", (e as Error).message);
  }
}

async function loadKeys(raw: string | undefined, isDevelopment: boolean): Promise<KeyRing> {
  if (raw === undefined || raw.trim() === "") {
    if (!isDevelopment)
      throw new ConfigError(
        "SESSION_SIGNING_KEYS",
        "is not set; set it with `wrangler secret put SESSION_SIGNING_KEYS`",
      );
    log("warn", "config_dev_signing_key", {
      message:
        "!!! SESSION_SIGNING_KEYS is not set: using a generated Ed25519 key for development. Tokens will not survive a restart. Never run like this in production. !!!",
    });
    return buildKeyRing(await generateDevelopmentKeys(), true);
  }
  const parsed = KeySetSchema.safeParse(parseJson("SESSION_SIGNING_KEYS", raw));
  if (!parsed.success) throw firstIssue("SESSION_SIGNING_KEYS", parsed.error);
  try {
    return await buildKeyRing(parsed.data.keys);
  } catch (e) {
    throw new ConfigError("SESSION_SIGNING_KEYS", `a key could not be imported (${(e as Error).message})`);
  }
}

function parseFallback(raw: string | undefined, origins: OriginConfig[]): PoolSettings["fallback"] {
  if (raw === undefined || raw.trim() === "") return undefined;
  const parsed = FallbackOriginSchema.safeParse(parseJson("FALLBACK_ORIGIN", raw));
  if (!parsed.success) throw firstIssue("FALLBACK_ORIGIN", parsed.error);
  if (origins.some((o) => o.id === parsed.data.id))
    throw new ConfigError(
      "FALLBACK_ORIGIN.id",
      `"${parsed.data.id}" is also in ORIGINS; the fallback must be separate`,
    );
  return parsed.data;
}

export async function parseConfig(env: Record<string, unknown>): Promise<EdgeConfig> {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw firstIssue("", parsed.error);
  const raw = parsed.data;
  const origins = OriginsSchema.safeParse(parseJson("ORIGINS", raw.ORIGINS));
  if (!origins.success) throw firstIssue("ORIGINS", origins.error);
  if (raw.SESSION_ABSOLUTE_TIMEOUT < raw.SESSION_IDLE_TIMEOUT)
    throw new ConfigError("SESSION_ABSOLUTE_TIMEOUT", "must not be shorter than SESSION_IDLE_TIMEOUT");
  if (raw.COOKIE_NAME.startsWith("__Host-") === false && raw.ENVIRONMENT === "production")
    log("warn", "config_cookie_prefix", {
      message: "COOKIE_NAME has no __Host- prefix; the cookie can be set by subdomains",
    });
  const isDevelopment = raw.ENVIRONMENT === "development";
  if (!raw.ADMIN_TOKEN)
    log("warn", "config_admin_disabled", { message: "ADMIN_TOKEN is not set: /__edge/ answers 503" });
  return {
    environment: raw.ENVIRONMENT,
    isDevelopment,
    origins: origins.data,
    keys: await loadKeys(raw.SESSION_SIGNING_KEYS, isDevelopment),
    adminToken: raw.ADMIN_TOKEN,
    cookieName: raw.COOKIE_NAME,
    idleTimeout: raw.SESSION_IDLE_TIMEOUT,
    absoluteTimeout: raw.SESSION_ABSOLUTE_TIMEOUT,
    strictTokens: raw.STRICT_TOKENS,
    issuer: raw.TOKEN_ISSUER,
    affinityAudience: `${raw.TOKEN_ISSUER}:affinity`,
    forwardedAudience: raw.FORWARDED_AUDIENCE,
    limits: {
      forwardedDataBytes: raw.FORWARDED_DATA_MAX_BYTES,
      patchBytes: raw.MAX_PATCH_BYTES,
      sessionBytes: raw.MAX_SESSION_BYTES,
      sessionKeys: raw.MAX_SESSION_KEYS,
    },
    defaultRegion: raw.DEFAULT_REGION,
    snapshots: await loadSnapshotKey(raw.SNAPSHOT_KEY, isDevelopment),
    sessionTimeoutMs: raw.SESSION_TIMEOUT_MS,
    // Fault injection is a development and test tool; a production deployment ignores the flag.
    faultInjection: isDevelopment || (raw.FAULT_INJECTION && raw.ENVIRONMENT !== "production"),
    migration: {
      auto: raw.AUTO_MIGRATE,
      afterRequests: raw.MIGRATE_AFTER_REQUESTS,
      afterSeconds: raw.MIGRATE_AFTER_SECONDS,
    },
    jurisdictions: raw.JURISDICTIONS,
    clientBinding: raw.CLIENT_BINDING,
    pool: {
      name: raw.POOL_NAME,
      cacheSeconds: raw.POOL_CACHE_SECONDS,
      failover: raw.FAILOVER_POLICY,
      returnHomeAfter: raw.RETURN_HOME_AFTER,
      outlier: {
        consecutiveFailures: raw.OUTLIER_CONSECUTIVE_FAILURES,
        baseEjectionSeconds: raw.OUTLIER_BASE_EJECTION,
        maxEjectionPercent: raw.OUTLIER_MAX_EJECTION_PERCENT,
      },
      maxRetries: raw.MAX_RETRIES,
      originTimeout: raw.ORIGIN_TIMEOUT,
      retryBodyMaxBytes: raw.RETRY_BODY_MAX_BYTES,
      boundedLoadFactor: raw.BOUNDED_LOAD_FACTOR,
      fallback: parseFallback(raw.FALLBACK_ORIGIN, origins.data),
    },
  };
}

const CONFIG_KEYS = Object.keys(EnvSchema.shape);
const cache = new Map<string, Promise<EdgeConfig>>();

/**
 * Validated once per isolate (per distinct set of values): the env object of a
 * Worker does not change between requests, so the parse, the key imports and
 * any development key are reused. A failure is cached too, so a bad config is
 * logged once and answered the same way on every request.
 */
export function loadConfig(env: object): Promise<EdgeConfig> {
  const values = env as Record<string, unknown>;
  const cacheKey = JSON.stringify(CONFIG_KEYS.map((k) => values[k] ?? null));
  let hit = cache.get(cacheKey);
  if (!hit) {
    if (cache.size >= 16) cache.clear();
    hit = parseConfig(values);
    hit.catch((e: unknown) => {
      if (e instanceof ConfigError)
        log("error", "config_invalid", { code: e.code, field: e.field, message: e.message });
      else log("error", "config_failed", { message: String(e) });
    });
    cache.set(cacheKey, hit);
  }
  return hit;
}
