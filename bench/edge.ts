/**
 * Starts the edge-session Worker (a bundle of it) in its own workerd, with the
 * bindings of wrangler.toml and the bench's keys, against the given origins.
 */
import { adminToken, signingKeySet, snapshotKey } from "./keys.ts";
import type { SigningAlg } from "./options.ts";
import { type RunningWorker, startWorker } from "./workers.ts";

export interface EdgeSpec {
  bundle: string;
  origins: string[];
  alg: SigningAlg;
  inspector?: boolean;
  /** Laid over the defaults (ENVIRONMENT=production and the secrets), e.g. staging with fault injection. */
  vars?: Record<string, string>;
  /** Called with each warning or error line the Worker logs. */
  onLog?: (message: string) => void;
  /** Send a first request to validate the configuration (default); off to time a cold first request. */
  validate?: boolean;
}

export interface RunningEdge extends RunningWorker {
  adminToken: string;
}

export async function startEdge(spec: EdgeSpec): Promise<RunningEdge> {
  const token = adminToken();
  const edge = await startWorker({
    name: "edge-session",
    scriptPath: spec.bundle,
    inspector: spec.inspector ?? false,
    // Durable Objects (SQLite-backed), KV, vars and compatibility settings as wrangler.toml declares them.
    wranglerConfig: "wrangler.toml",
    bindings: {
      ENVIRONMENT: "production",
      ORIGINS: JSON.stringify(spec.origins.map((url, i) => ({ id: `origin-${i + 1}`, url }))),
      SESSION_SIGNING_KEYS: await signingKeySet(spec.alg),
      ADMIN_TOKEN: token,
      SNAPSHOT_KEY: snapshotKey(),
      ...spec.vars,
    },
    ...(spec.onLog ? { onLog: spec.onLog } : {}),
  });
  if (spec.validate === false) return { ...edge, adminToken: token };
  // The configuration is validated on the first request; fail here, not in the middle of a measurement.
  const res = await fetch(`${edge.url}/.well-known/edge-session/jwks.json`);
  const body = await res.text();
  if (res.status !== 200) throw new Error(`edge-session did not start cleanly (${res.status}): ${body}`);
  return { ...edge, adminToken: token };
}
