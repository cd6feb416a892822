import type { z } from "zod";
import { type LearnedAffinity, learnedRule, sealKeyFrom } from "../affinity/index.ts";
import { EdgeError } from "../errors.ts";
import { log } from "../log.ts";
import { importSnapshotKey, type SnapshotKey } from "../replication/codec.ts";
import { buildKeyRing, generateDevelopmentKeys, type KeyRing } from "../token/keys.ts";
import {
  AdminTokenSchema,
  EnvSchema,
  FallbackOriginSchema,
  KeySetSchema,
  LearnedAffinitySchema,
  type LocationHint,
  type OriginConfig,
  OriginsSchema,
  type SigningJwk,
} from "./schema.ts";

export type { LocationHint, OriginConfig } from "./schema.ts";
export { LOCATION_HINTS } from "./schema.ts";

export interface EdgeLimits {
  /** The whole forwarded header value (compact JWS) stays at or under this many bytes. */
  forwardedBytes: number;
  /** Deprecated extra cap: session data larger than this (serialized) is left out of the forwarded header. */
  forwardedDataBytes: number;
  /** Largest `claims` (as JSON) an origin may give at login. */
  loginClaimsBytes: number;
  /** Largest accepted `X-Edge-Session-Set` value. */
  patchBytes: number;
  /** Largest session document (serialized `data`). */
  sessionBytes: number;
  /** Most keys, at any depth, in a session document. */
  sessionKeys: number;
  /** Deepest nesting of a session document, a patch or login claims. */
  sessionDepth: number;
}

export interface EdgeConfig {
  environment: "development" | "staging" | "production";
  isDevelopment: boolean;
  origins: OriginConfig[];
  keys: KeyRing;
  /** Unset, or set but unusable (then adminTokenInvalid): the operator API answers 503. */
  adminToken: string | undefined;
  adminTokenInvalid: boolean;
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
  /** Per-user session control: the cap on concurrent logged-in sessions (0: none). */
  users: { maxSessions: number };
  /** Whether proxied responses carry X-Edge-Session-Status (how the session was found and placed). */
  sessionStatusHeader: boolean;
  /** Origin-issued ids the layer binds to their origin (LEARNED_AFFINITY), and the key that seals them. */
  learned: LearnedAffinity;
  /** ORIGIN_AUTH_SECRET: sent to every origin (X-Edge-Origin-Auth) so origins can lock out direct traffic. */
  originAuth: string | undefined;
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

/** One thing wrong with the configuration: the variable (with a path inside its JSON) and what is wrong. */
export interface ConfigProblem {
  field: string;
  message: string;
}

/**
 * Thrown for bad configuration; every request then gets a bare 500 ERR_CONFIG.
 * The problems (every one found, not only the first) go to the log, never to
 * clients: a field name or a JSON parse position is a map of the deployment.
 */
export class ConfigError extends EdgeError {
  readonly problems: ConfigProblem[];
  /** The first problem's field, for callers that name one. */
  readonly field: string;
  /** Every problem, one after another: for the log and for `npm run check-config`. */
  readonly detail: string;
  constructor(problems: ConfigProblem[]) {
    super("ERR_CONFIG", "the layer is misconfigured; the operator's log has the details (event config_invalid)", {
      status: 500,
      report: true,
    });
    this.problems = problems;
    this.field = problems[0]?.field ?? "env";
    this.detail = `invalid configuration: ${problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`;
  }
}

/** Collects problems as the parse goes, so one run reports all of them. */
class Problems {
  readonly list: ConfigProblem[] = [];
  add(field: string, message: string): void {
    this.list.push({ field, message });
  }
  zod(root: string, error: z.ZodError): void {
    for (const issue of error.issues) {
      const [head, ...rest] = issue.path;
      this.add(root ? fieldPath(root, issue.path) : fieldPath(String(head ?? "env"), rest), issue.message);
    }
  }
}

function fieldPath(root: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, part) => (typeof part === "number" ? `${acc}[${part}]` : `${acc}.${String(part)}`),
    root,
  );
}

/**
 * For secrets, only the position of a JSON syntax error is reported: V8's
 * message quotes the text around it, which would put key material in a log line.
 */
function parseJson(problems: Problems, field: string, raw: string, secret = false): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(raw) };
  } catch (e) {
    const message = (e as Error).message;
    const at = /position (\d+)/.exec(message)?.[1];
    problems.add(
      field,
      secret ? `is not valid JSON${at ? ` (at position ${at})` : ""}` : `is not valid JSON (${message})`,
    );
    return undefined;
  }
}

/** 32 fixed bytes, only ever used when ENVIRONMENT=development and no SNAPSHOT_KEY is set. */
export const DEVELOPMENT_SNAPSHOT_KEY = "ZGV2ZWxvcG1lbnQtb25seS1zbmFwc2hvdC1rZXkhISE";

async function loadSnapshotKey(
  problems: Problems,
  raw: string | undefined,
  isDevelopment: boolean,
): Promise<EdgeConfig["snapshots"] | undefined> {
  if (raw === undefined || raw.trim() === "") {
    if (!isDevelopment) {
      problems.add(
        "SNAPSHOT_KEY",
        "is not set; set it with `wrangler secret put SNAPSHOT_KEY` (32 random bytes, base64)",
      );
      return undefined;
    }
    log("warn", "config_dev_snapshot_key", {
      message:
        "!!! SNAPSHOT_KEY is not set: snapshots are encrypted with a fixed development key. Never run like this in production. !!!",
    });
    return { key: await importSnapshotKey(DEVELOPMENT_SNAPSHOT_KEY), generated: true };
  }
  try {
    return { key: await importSnapshotKey(raw), generated: false };
  } catch (e) {
    problems.add("SNAPSHOT_KEY", (e as Error).message);
    return undefined;
  }
}

let developmentKeys: SigningJwk[] | undefined;

async function loadKeys(
  problems: Problems,
  raw: string | undefined,
  isDevelopment: boolean,
): Promise<KeyRing | undefined> {
  if (raw === undefined || raw.trim() === "") {
    if (!isDevelopment) {
      problems.add("SESSION_SIGNING_KEYS", "is not set; set it with `wrangler secret put SESSION_SIGNING_KEYS`");
      return undefined;
    }
    log("warn", "config_dev_signing_key", {
      message:
        "!!! SESSION_SIGNING_KEYS is not set: using a generated Ed25519 key for development. Tokens will not survive a restart. Never run like this in production. !!!",
    });
    const generated = await generateDevelopmentKeys();
    // Concurrent first parses each generate one; all of them keep the first, so tokens verify across them.
    developmentKeys ??= generated;
    return buildKeyRing(developmentKeys, true);
  }
  const json = parseJson(problems, "SESSION_SIGNING_KEYS", raw, true);
  if (!json) return undefined;
  const parsed = KeySetSchema.safeParse(json.value);
  if (!parsed.success) {
    problems.zod("SESSION_SIGNING_KEYS", parsed.error);
    return undefined;
  }
  try {
    return await buildKeyRing(parsed.data.keys);
  } catch (e) {
    problems.add("SESSION_SIGNING_KEYS", `a key could not be imported (${(e as Error).message})`);
    return undefined;
  }
}

function parseOrigins(problems: Problems, raw: unknown): OriginConfig[] | undefined {
  if (typeof raw !== "string") return undefined; // EnvSchema has reported it
  const json = parseJson(problems, "ORIGINS", raw);
  if (!json) return undefined;
  const origins = OriginsSchema.safeParse(json.value);
  if (origins.success) return origins.data;
  problems.zod("ORIGINS", origins.error);
  return undefined;
}

function parseFallback(
  problems: Problems,
  raw: unknown,
  origins: OriginConfig[] | undefined,
): PoolSettings["fallback"] {
  if (typeof raw !== "string" || raw.trim() === "") return undefined;
  const json = parseJson(problems, "FALLBACK_ORIGIN", raw);
  if (!json) return undefined;
  const parsed = FallbackOriginSchema.safeParse(json.value);
  if (!parsed.success) {
    problems.zod("FALLBACK_ORIGIN", parsed.error);
    return undefined;
  }
  if (origins?.some((o) => o.id === parsed.data.id))
    problems.add("FALLBACK_ORIGIN.id", `"${parsed.data.id}" is also in ORIGINS; the fallback must be separate`);
  return parsed.data;
}

/** The secret the learned-id key is derived from: SNAPSHOT_KEY's bytes (already validated by loadSnapshotKey). */
function snapshotSecretBytes(raw: string | undefined): Uint8Array<ArrayBuffer> {
  const secret = raw?.trim() ? raw.trim() : DEVELOPMENT_SNAPSHOT_KEY;
  const plain = secret.replaceAll("-", "+").replaceAll("_", "/").replace(/=+$/, "");
  const bin = atob(plain + "=".repeat((4 - (plain.length % 4)) % 4));
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}

async function loadLearnedAffinity(
  problems: Problems,
  raw: string | undefined,
  snapshotSecret: string | undefined,
  cookieName: string,
): Promise<LearnedAffinity | undefined> {
  const key = async () => sealKeyFrom(snapshotSecretBytes(snapshotSecret));
  if (raw === undefined || raw.trim() === "") return { rules: [], key: await key() };
  const json = parseJson(problems, "LEARNED_AFFINITY", raw);
  if (!json) return undefined;
  const parsed = LearnedAffinitySchema.safeParse(json.value);
  if (!parsed.success) {
    problems.zod("LEARNED_AFFINITY", parsed.error);
    return undefined;
  }
  const own = parsed.data.findIndex((r) => r.cookie === cookieName);
  if (own >= 0) {
    problems.add(`LEARNED_AFFINITY[${own}].cookie`, "is the layer's own cookie (COOKIE_NAME)");
    return undefined;
  }
  return { rules: parsed.data.map(learnedRule), key: await key() };
}

/**
 * The admin token concerns the operator API only: a bad one disables that API
 * (503) and leaves proxying alone, rather than failing every request.
 */
function checkAdminToken(raw: unknown): { token?: string; problem?: string } {
  if (raw === undefined || raw === "") return {};
  const parsed = AdminTokenSchema.safeParse(raw);
  if (parsed.success) return { token: parsed.data };
  return { problem: parsed.error.issues.map((i) => i.message).join("; ") };
}

/** Everything wrong with `env` at once, and the config when nothing is. */
export interface ConfigCheck {
  config?: EdgeConfig;
  problems: ConfigProblem[];
  /** Problems that only disable the operator API. */
  operatorProblems: ConfigProblem[];
}

export async function checkConfig(env: Record<string, unknown>): Promise<ConfigCheck> {
  const problems = new Problems();
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) problems.zod("", parsed.error);
  // The derived values are checked even when a plain one is wrong, so one run names every problem.
  const environment = parsed.success ? parsed.data.ENVIRONMENT : env.ENVIRONMENT;
  const isDevelopment = environment === "development";
  const asString = (v: unknown) => (typeof v === "string" ? v : undefined);
  const origins = parseOrigins(problems, env.ORIGINS);
  const keys = await loadKeys(problems, asString(env.SESSION_SIGNING_KEYS), isDevelopment);
  const snapshots = await loadSnapshotKey(problems, asString(env.SNAPSHOT_KEY), isDevelopment);
  const fallback = parseFallback(problems, env.FALLBACK_ORIGIN, origins);
  const admin = checkAdminToken(env.ADMIN_TOKEN);
  const operatorProblems = admin.problem ? [{ field: "ADMIN_TOKEN", message: admin.problem }] : [];
  const cookieName = parsed.success ? parsed.data.COOKIE_NAME : asString(env.COOKIE_NAME);
  // Its sealing key derives from SNAPSHOT_KEY: only once that key is known to be good.
  const learned = snapshots
    ? await loadLearnedAffinity(problems, asString(env.LEARNED_AFFINITY), asString(env.SNAPSHOT_KEY), cookieName ?? "")
    : undefined;
  if (!parsed.success || !origins || !keys || !snapshots || !learned)
    return { problems: problems.list, operatorProblems };
  const raw = parsed.data;
  if (raw.SESSION_ABSOLUTE_TIMEOUT < raw.SESSION_IDLE_TIMEOUT)
    problems.add("SESSION_ABSOLUTE_TIMEOUT", "must not be shorter than SESSION_IDLE_TIMEOUT");
  // A cached version is confirmed by a read of its object, which is also what keeps the session from
  // idling out: the cache period must leave the idle timer room to be refreshed.
  if (raw.READ_CACHE_SECONDS * 2 > raw.SESSION_IDLE_TIMEOUT)
    problems.add("READ_CACHE_SECONDS", "must be at most half of SESSION_IDLE_TIMEOUT");
  if (problems.list.length) return { problems: problems.list, operatorProblems };
  if (raw.COOKIE_NAME.startsWith("__Host-") === false && raw.ENVIRONMENT === "production")
    log("warn", "config_cookie_prefix", {
      message: "COOKIE_NAME has no __Host- prefix; the cookie can be set by subdomains",
    });
  if (admin.problem)
    log("error", "config_admin_invalid", {
      code: "ERR_ADMIN_DISABLED",
      field: "ADMIN_TOKEN",
      message: `ADMIN_TOKEN ${admin.problem}: the operator API answers 503 until it is fixed; proxying is unaffected`,
    });
  else if (!admin.token)
    log("warn", "config_admin_disabled", { message: "ADMIN_TOKEN is not set: /__edge/ answers 503" });
  const config: EdgeConfig = {
    environment: raw.ENVIRONMENT,
    isDevelopment,
    origins,
    keys,
    adminToken: admin.token,
    adminTokenInvalid: Boolean(admin.problem),
    cookieName: raw.COOKIE_NAME,
    idleTimeout: raw.SESSION_IDLE_TIMEOUT,
    absoluteTimeout: raw.SESSION_ABSOLUTE_TIMEOUT,
    strictTokens: raw.STRICT_TOKENS,
    issuer: raw.TOKEN_ISSUER,
    affinityAudience: `${raw.TOKEN_ISSUER}:affinity`,
    forwardedAudience: raw.FORWARDED_AUDIENCE,
    limits: {
      forwardedBytes: raw.FORWARDED_MAX_BYTES,
      forwardedDataBytes: raw.FORWARDED_DATA_MAX_BYTES ?? Number.POSITIVE_INFINITY,
      loginClaimsBytes: raw.LOGIN_CLAIMS_MAX_BYTES,
      patchBytes: raw.MAX_PATCH_BYTES,
      sessionBytes: raw.MAX_SESSION_BYTES,
      sessionKeys: raw.MAX_SESSION_KEYS,
      sessionDepth: raw.MAX_SESSION_DEPTH,
    },
    defaultRegion: raw.DEFAULT_REGION,
    snapshots,
    learned,
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
    users: { maxSessions: raw.MAX_SESSIONS_PER_USER },
    sessionStatusHeader: raw.SESSION_STATUS_HEADER ?? isDevelopment,
    originAuth: raw.ORIGIN_AUTH_SECRET,
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
      fallback,
    },
  };
  return { config, problems: [], operatorProblems };
}

/** The config, or a ConfigError carrying every problem found. */
export async function parseConfig(env: Record<string, unknown>): Promise<EdgeConfig> {
  const { config, problems } = await checkConfig(env);
  if (!config) throw new ConfigError(problems);
  return config;
}

const CONFIG_KEYS = Object.keys(EnvSchema.shape);
/** Every variable the layer reads (vars and secrets). */
export const CONFIG_NAMES: readonly string[] = CONFIG_KEYS;
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
          log("error", "config_invalid", { code: outcome.code, message: outcome.detail, problems: outcome.problems });
      }
      outcome = cache.get(cacheKey) ?? outcome;
    }
    byEnv.set(env, outcome);
  }
  if (outcome instanceof ConfigError) throw outcome;
  return outcome;
}
