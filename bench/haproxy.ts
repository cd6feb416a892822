/**
 * HAProxy in front of the same origins, for scale: native code doing
 * cookie-based stickiness (`cookie SERVERID insert indirect nocache`, the
 * classic recipe) and nothing else — no signed token, no session state, no
 * signed header to the origin.
 *
 * Optional: when `haproxy` is not on the PATH the scenarios are skipped with a
 * message (`apt-get install -y haproxy` on Debian).
 */
import { spawn, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { atExit, trackChild } from "./cleanup.ts";

export interface RunningHaproxy {
  url: string;
  version: string;
  /** The cookie value HAProxy routes to the first origin with. */
  firstServerCookie: string;
}

/** `HAProxy version 2.6.12-…`, or undefined when haproxy is not installed. */
export function haproxyVersion(): string | undefined {
  const probe = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) return undefined;
  return /HAProxy version (\S+)/.exec(probe.stdout)?.[1] ?? "unknown";
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.connect(port, "127.0.0.1");
  });
}

export function haproxyConfig(port: number, origins: string[]): string {
  const servers = origins.map((url, i) => {
    const { host } = new URL(url);
    return `  server s${i + 1} ${host} cookie s${i + 1}`;
  });
  return [
    "global",
    // One thread, like the one isolate thread that runs the Worker.
    "  nbthread 1",
    "  maxconn 4096",
    "defaults",
    "  mode http",
    "  option http-keep-alive",
    "  http-reuse always",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    "frontend bench",
    `  bind 127.0.0.1:${port}`,
    "  default_backend origins",
    "backend origins",
    "  balance roundrobin",
    "  cookie SERVERID insert indirect nocache",
    ...servers,
    "",
  ].join("\n");
}

export async function startHaproxy(origins: string[], version: string): Promise<RunningHaproxy> {
  const dir = await mkdtemp(join(tmpdir(), "edge-session-bench-haproxy-"));
  atExit(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const config = join(dir, "haproxy.cfg");
  await writeFile(config, haproxyConfig(port, origins));
  // -db: stay in the foreground, so the process we track is HAProxy itself.
  const child = spawn("haproxy", ["-db", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  trackChild("haproxy", child);
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}):\n${stderr}`);
    if (await accepts(port)) return { url: `http://127.0.0.1:${port}`, version, firstServerCookie: "SERVERID=s1" };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`haproxy did not listen on ${port} within 5 s:\n${stderr}`);
}
