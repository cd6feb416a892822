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
  type SigningJwk,
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
  /**
   * Seconds an isolate may serve a session version from memory after its object last confirmed it
   * (READ_CACHE_SECONDS). 0 is strict mode: the object is consulted on every request.
   */
  readCacheSeconds: number;
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

/**
 * For secrets, only the position of a JSON syntax error is reported: V8's
 * message quotes the text around it, which would put key material in a 500
 * body and a log line.
 */
function parseJson(field: string, raw: string, secret = false): unknown {
  try {
    return JSON.parse(raw);
  } catch (e) {
    const message = (e as Error).message;
    const at = /position (\d+)/.exec(message)?.[1];
    throw new ConfigError(
      field,
      secret ? `is not valid JSON${at ? ` (at position ${at})` : ""}` : `is not valid JSON (${message})`,
    );
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

let developmentKeys: SigningJwk[] | undefined;

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
    const generated = await generateDevelopmentKeys();
    // Concurrent first parses each generate one; all of them keep the first, so tokens verify across them.
    developmentKeys ??= generated;
    return buildKeyRing(developmentKeys, true);
  }
  const parsed = KeySetSchema.safeParse(parseJson("SESSION_SIGNING_KEYS", raw, true));
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
  // A cached version is confirmed by a read of its object, which is also what keeps the session from
  // idling out: the cache period must leave the idle timer room to be refreshed.
  if (raw.READ_CACHE_SECONDS * 2 > raw.SESSION_IDLE_TIMEOUT)
    throw new ConfigError("READ_CACHE_SECONDS", "must be at most half of SESSION_IDLE_TIMEOUT");
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
    readCacheSeconds: raw.READ_CACHE_SECONDS,
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
/** Resolved outcomes only, never a pending parse: see loadConfig. */
const cache = new Map<string, EdgeConfig | ConfigError>();
/** The env object a request brings is usually the same object every time: a cheap first lookup. */
const byEnv = new WeakMap<object, EdgeConfig | ConfigError>();

/**
 * Validated once per isolate (per distinct set of values): the env object of a
 * Worker does not change between requests, so the parse, the key imports and
 * any development key are reused. A failure is cached too, so a bad config is
 * logged once and answered the same way on every request.
 *
 * Only finished results are shared between requests. A promise still pending
 * belongs to the request that started it (workerd binds I/O to its request),
 * so requests arriving during the first parse each parse for themselves; the
 * development key they generate is shared (see loadKeys).
 */
export async function loadConfig(env: object): Promise<EdgeConfig> {
  let outcome = byEnv.get(env);
  if (!outcome) {
    const values = env as Record<string, unknown>;
    const cacheKey = JSON.stringify(CONFIG_KEYS.map((k) => values[k] ?? null));
    outcome = cache.get(cacheKey);
    if (!outcome) {
      outcome = await parseConfig(values).catch((e: unknown) => {
        if (e instanceof ConfigError) return e;
        throw e;
      });
      if (!cache.has(cacheKey)) {
        if (cache.size >= 16) cache.clear();
        cache.set(cacheKey, outcome);
        if (outcome instanceof ConfigError)
          log("error", "config_invalid", { code: outcome.code, field: outcome.field, message: outcome.message });
      }
      outcome = cache.get(cacheKey) ?? outcome;
    }
    byEnv.set(env, outcome);
  }
  if (outcome instanceof ConfigError) throw outcome;
  return outcome;
}
