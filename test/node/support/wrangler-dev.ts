/**
 * Real processes for the Node-side tests and for `npm start`: the layer under
 * `wrangler dev`, demo origins, and free ports on 127.0.0.1.
 *
 * Every child is spawned in a process group of its own (detached) and stopped
 * by signalling the whole group: `wrangler` starts a second Node process that
 * starts `workerd`, and killing only the first would leave workerd behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";

export const PROJECT_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const WRANGLER_BIN = join(PROJECT_ROOT, "node_modules", ".bin", "wrangler");
export const DEMO_ORIGIN = join(PROJECT_ROOT, "origin", "demo.ts");
/** Same as JWKS_PATH in src/app.ts (not imported: src/ only loads inside workerd). */
export const JWKS_PATH = "/.well-known/edge-session/jwks.json";
const HOST = "127.0.0.1";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- ports

export function portIsFree(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** `preferred` if it is free, otherwise a port the OS hands out. Another process may still take it before use. */
export async function freePort(preferred?: number, host = HOST): Promise<number> {
  if (preferred !== undefined && (await portIsFree(preferred, host))) return preferred;
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- processes

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves when the direct child exits (its group may outlive it; stop() waits for the group). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines of stdout and stderr, without colours: for error messages. */
  output(): string;
  /** The first line (past or future) that matches; rejects if the process exits first or on timeout. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once every process in the group is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Every output line as it arrives. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

const liveGroups = new Set<number>();
/** Temporary directories holding secrets: removed by stop(), or at the latest when this process exits. */
const secretDirs = new Set<string>();
let exitHookInstalled = false;

/** Last resort when the parent exits without stopping its children (an uncaught error, process.exit). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const pgid of liveGroups) signalGroup(pgid, "SIGKILL");
    for (const dir of secretDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    // EPERM: it exists but is not ours to signal (cannot happen for our own children, but do not call it gone).
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function waitForGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (signalGroup(pgid, 0)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

export function spawnManaged(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions = {},
): ManagedProcess {
  const child = spawn(command, args, {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: options.env ?? process.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pgid = child.pid;
  if (pgid !== undefined) {
    liveGroups.add(pgid);
    installExitHook();
  }

  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of ["stdout", "stderr"] as const) {
    const input = child[stream];
    if (!input) continue;
    createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (raw) => {
      const line = stripVTControlCharacters(raw);
      lines.push(line);
      if (lines.length > 300) lines.shift();
      options.onLine?.(raw, stream);
      for (const listener of listeners) listener(line);
    });
  }

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", (error) => {
      lines.push(`spawn failed: ${error.message}`);
      resolve({ code: null, signal: null });
    });
  });
  const output = () => lines.join("\n");

  return {
    name,
    child,
    exited,
    output,
    waitForLine(pattern, timeoutMs = 30_000) {
      for (const line of lines) {
        const match = line.match(pattern);
        if (match) return Promise.resolve(match);
      }
      return new Promise((resolve, reject) => {
        const done = (error?: Error, match?: RegExpMatchArray) => {
          clearTimeout(timer);
          listeners.delete(onLine);
          if (match) resolve(match);
          else reject(error);
        };
        const onLine = (line: string) => {
          const match = line.match(pattern);
          if (match) done(undefined, match);
        };
        const timer = setTimeout(
          () => done(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms\n${output()}`)),
          timeoutMs,
        );
        listeners.add(onLine);
        exited.then(({ code, signal }) =>
          done(new Error(`${name} exited (${signal ?? `code ${code}`}) before printing ${pattern}\n${output()}`)),
        );
      });
    },
    async stop(graceMs = 5_000) {
      if (pgid === undefined) return;
      if (signalGroup(pgid, "SIGTERM") && !(await waitForGroupGone(pgid, graceMs))) {
        signalGroup(pgid, "SIGKILL");
        await waitForGroupGone(pgid, 2_000);
      }
      liveGroups.delete(pgid);
      await exited;
    },
  };
}

/** Polls `url` until it answers 2xx; fails early if `process` exits, and after `timeoutMs`. */
export async function waitForUrl(
  url: string,
  options: { process?: ManagedProcess; timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<Response> {
  const { process: proc, timeoutMs = 60_000 } = options;
  let exited = false;
  proc?.exited.then(() => {
    exited = true;
  });
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${proc?.name} exited before ${url} answered\n${proc?.output()}`);
    try {
      const res = await fetch(url, { headers: options.headers ?? {}, signal: AbortSignal.timeout(5_000) });
      if (res.ok) return res;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${last})\n${proc?.output() ?? ""}`);
}

// ---------------------------------------------------------------- wrangler dev

export interface WranglerDevOptions {
  /** `--var NAME:VALUE` for each entry (a JSON value stays whole). These names are also removed from the child's env. */
  vars: Record<string, string>;
  /**
   * Secrets, bound as Worker secrets: written to a .env file (mode 0600) in a
   * temporary directory and passed with `--env-file`, so they never appear on
   * a command line (`ps`) the way `--var` values do. Removed by stop().
   */
  secrets?: Record<string, string>;
  /** Default: a free port (retried on another one if wrangler cannot bind it). */
  port?: number;
  /** Durable Object / KV state. Default: a fresh temporary directory, deleted by stop(). */
  persistTo?: string;
  /** Added to the child's environment (WRANGLER_SEND_METRICS is always "false"). */
  env?: NodeJS.ProcessEnv;
  onLine?: SpawnOptions["onLine"];
  /** Extra arguments for `wrangler dev`. */
  args?: string[];
  readyTimeoutMs?: number;
}

export interface WranglerDev {
  url: string;
  port: number;
  jwksUrl: string;
  process: ManagedProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `wrangler dev` on 127.0.0.1 for this project and resolves once the
 * layer serves its JWKS. Works offline (it warns that it cannot fetch
 * `Request.cf`, which is expected).
 */
export async function startWranglerDev(options: WranglerDevOptions): Promise<WranglerDev> {
  const persistTo = options.persistTo ?? (await mkdtemp(join(tmpdir(), "edge-session-wrangler-")));
  const cleanup = options.persistTo ? async () => {} : () => rm(persistTo, { recursive: true, force: true });
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, WRANGLER_SEND_METRICS: "false" };
  // wrangler also reads secrets from its environment; leave --var and the env file as the only sources.
  for (const name of [...Object.keys(options.vars), ...Object.keys(options.secrets ?? {})]) delete env[name];
  const vars = Object.entries(options.vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
  let secretsDir: string | undefined;
  if (options.secrets) {
    secretsDir = await mkdtemp(join(tmpdir(), "edge-session-secrets-"));
    secretDirs.add(secretsDir);
    installExitHook();
    const file = join(secretsDir, ".env");
    // Single quotes: dotenv takes the value literally (no $ expansion), and JSON holds no single quote.
    const lines = Object.entries(options.secrets).map(([k, v]) => {
      if (v.includes("'") || v.includes("\n")) throw new Error(`secret ${k} cannot be written to a .env file`);
      return `${k}='${v}'\n`;
    });
    await writeFile(file, lines.join(""), { mode: 0o600 });
    vars.push("--env-file", file);
  }
  const removeSecrets = async () => {
    if (!secretsDir) return;
    secretDirs.delete(secretsDir);
    await rm(secretsDir, { recursive: true, force: true });
  };

  const attempts = options.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    const args = [
      WRANGLER_BIN,
      "dev",
      "--ip",
      HOST,
      "--port",
      String(port),
      "--persist-to",
      persistTo,
      "--show-interactive-dev-session=false",
      // wrangler.toml routes to a custom domain: locally, the Worker sees the host the client used instead.
      "--local-upstream",
      `${HOST}:${port}`,
      ...vars,
      ...(options.args ?? []),
    ];
    const proc = spawnManaged("wrangler dev", process.execPath, args, {
      env,
      ...(options.onLine ? { onLine: options.onLine } : {}),
    });
    const url = `http://${HOST}:${port}`;
    try {
      await waitForUrl(`${url}${JWKS_PATH}`, { process: proc, timeoutMs: options.readyTimeoutMs ?? 60_000 });
    } catch (e) {
      await proc.stop();
      const portTaken = /EADDRINUSE|address already in use/i.test(proc.output());
      if (portTaken && attempt < attempts) continue;
      await cleanup();
      await removeSecrets();
      throw e;
    }
    return {
      url,
      port,
      jwksUrl: `${url}${JWKS_PATH}`,
      process: proc,
      output: proc.output,
      stop: async () => {
        await proc.stop();
        await cleanup();
        await removeSecrets();
      },
    };
  }
}

// ---------------------------------------------------------------- demo origins

export interface DemoOrigin {
  id: string;
  url: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** Starts origin/demo.ts on a free port and resolves with its URL once it prints `listening <id> <url>`. */
export async function startDemoOrigin(
  id: string,
  jwksUrl: string,
  options: { onLine?: SpawnOptions["onLine"]; env?: NodeJS.ProcessEnv } = {},
): Promise<DemoOrigin> {
  const proc = spawnManaged(id, process.execPath, [DEMO_ORIGIN, "--id", id, "--port", "0", "--jwks", jwksUrl], {
    ...options,
  });
  try {
    const [, , url] = await proc.waitForLine(/^listening (\S+) (\S+)$/, 15_000);
    return { id, url: url ?? "", process: proc, stop: () => proc.stop() };
  } catch (e) {
    await proc.stop();
    throw e;
  }
}
