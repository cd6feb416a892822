/**
 * Serves a bundled Worker with the Miniflare API: one workerd process per
 * Worker, on a free loopback port. Not `wrangler dev`, whose dev proxy caps a
 * bare pass-through Worker near 450 req/s on this kind of machine.
 *
 * Requests go to a direct socket of the Worker (`unsafeDirectSockets`), not
 * through Miniflare's entry Worker, so nothing but workerd and the Worker itself
 * stands between the load generator and the origin, as on the edge. The entry
 * URL is kept for comparison (docs/benchmarks.md says what that hop costs).
 *
 * workerd's warnings and errors (the Worker's own `console.warn/error` lines,
 * uncaught exceptions) are counted rather than printed, so that a scenario can
 * report what went wrong during it without flooding the terminal.
 */
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { onStop } from "./cleanup.ts";

export const COMPATIBILITY_DATE = "2026-11-01";
export const COMPATIBILITY_FLAGS = ["nodejs_compat"];

export interface WorkerSpec {
  name: string;
  /**
   * Take bindings (Durable Objects with their SQLite flag, KV, vars), compatibility
   * date and flags from this wrangler config, as `wrangler dev` would, so the bench
   * follows wrangler.toml as it changes. `bindings` below are laid over its vars.
   */
  wranglerConfig?: string;
  /** Relative to the project root, which must be the current directory. */
  scriptPath: string;
  bindings: Record<string, string>;
  /** Open workerd's inspector (for CPU profiles). */
  inspector?: boolean;
  /** Called with each warning or error line, besides counting it. */
  onLog?: (message: string) => void;
}

export interface RunningWorker {
  name: string;
  /** workerd serving this Worker directly. */
  url: string;
  /** Through Miniflare's entry Worker (adds one hop inside workerd). */
  entryUrl: string;
  miniflare: Miniflare;
  /** Warnings and errors logged so far, by normalised message. */
  logs: Map<string, number>;
  /** Chrome DevTools Protocol endpoint of this Worker's isolate, when asked for. */
  inspectorUrl?: string;
  /** Stops its workerd (once; the bench's exit stops whatever is left). */
  stop(): Promise<void>;
}

/** One key per kind of problem: JSON log lines by event and code, runtime errors without their C++ prefix. */
export function logKey(message: string): string {
  const line = message.trim();
  if (line.startsWith("{")) {
    try {
      const { event, code } = JSON.parse(line) as { event?: string; code?: string };
      if (event) return `${event}${code ? ` ${code}` : ""}`;
    } catch {
      // not JSON after all
    }
  }
  const runtime = /failed: (?:remote\.)?jsg\.\w+: (.*)$/.exec(line);
  const text = runtime?.[1] ?? line;
  // The first sentence names the problem; a trailing "(I/O type: …)" says which object.
  const first = /^.*?[.!](?=\s|$)/.exec(text)?.[0] ?? text;
  const detail = /\(([^()]*type: [^()]*)\)\s*$/.exec(text)?.[1];
  const key = detail && first !== text ? `${first} (${detail})` : first;
  return key.length > 160 ? `${key.slice(0, 159)}…` : key;
}

/** Counts added to `after` since `before`. */
export function logDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, n] of after) {
    const added = n - (before.get(key) ?? 0);
    if (added > 0) out.set(key, added);
  }
  return out;
}

/** What `wrangler dev` would give Miniflare for this config, less the script (we pass the bundle). */
async function wranglerWorkerOptions(configPath: string): Promise<Record<string, unknown>> {
  // Quiet: it would warn that the secrets are missing, which the bench passes as bindings.
  process.env.WRANGLER_LOG ??= "error";
  const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
  const { workerOptions } = unstable_getMiniflareWorkerOptions(configPath);
  // Module rules are for unbundled sources; the bench passes one bundled ES module.
  // Paths (the bench's bundle) stay relative to the project root, not to the config's folder.
  const { modulesRules: _rules, rootPath: _root, ...options } = workerOptions;
  return options as Record<string, unknown>;
}

export async function startWorker(spec: WorkerSpec): Promise<RunningWorker> {
  const fromConfig = spec.wranglerConfig ? await wranglerWorkerOptions(spec.wranglerConfig) : {};
  const logs = new Map<string, number>();
  const miniflare = new Miniflare(
    convertV4MiniflareOptions({
      compatibilityDate: COMPATIBILITY_DATE,
      compatibilityFlags: COMPATIBILITY_FLAGS,
      ...fromConfig,
      host: "127.0.0.1",
      port: 0,
      ...(spec.inspector ? { inspectorPort: 0 } : {}),
      // No cf object fetched from the network: a fixed placeholder one.
      cf: false,
      handleStructuredLogs: ({ level, message }) => {
        if (level !== "warn" && level !== "error" && !/Uncaught|exception/.test(message)) return;
        const key = logKey(message);
        logs.set(key, (logs.get(key) ?? 0) + 1);
        spec.onLog?.(message);
      },
      name: spec.name,
      modules: true,
      scriptPath: spec.scriptPath,
      bindings: { ...(fromConfig.bindings as Record<string, string> | undefined), ...spec.bindings },
      unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    }),
  );
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= miniflare.dispose();
    return stopped;
  };
  onStop(`workerd (${spec.name})`, stop);
  const entry = await miniflare.ready;
  const direct = await miniflare.unsafeGetDirectURL(spec.name);
  const inspector = spec.inspector ? await miniflare.getInspectorURL() : undefined;
  return {
    ...(inspector ? { inspectorUrl: new URL(`/core:user:${spec.name}`, inspector).href } : {}),
    name: spec.name,
    url: direct.href.replace(/\/$/, ""),
    entryUrl: entry.href.replace(/\/$/, ""),
    miniflare,
    logs,
    stop,
  };
}
