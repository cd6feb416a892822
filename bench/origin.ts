/** Starts bench/origin-server.ts as a child process and reads its counters. */
import { fork } from "node:child_process";
import { trackChild } from "./cleanup.ts";

export interface OriginStats {
  requests: number;
  writes: number;
  withSessionHeader: number;
  lastSession: Record<string, unknown> | null;
}

export interface BenchOrigin {
  /** One URL per port; the same process answers all of them. */
  urls: string[];
  stats(): Promise<OriginStats>;
  reset(): Promise<void>;
}

export async function startOrigin(ports = 2): Promise<BenchOrigin> {
  const child = fork("bench/origin-server.ts", ["--ports", String(ports)], {
    execPath: process.execPath,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  trackChild("origin", child);
  const listening = await new Promise<number[]>((resolve, reject) => {
    child.once("message", (m) => resolve((m as { ports: number[] }).ports));
    child.once("exit", (code) => reject(new Error(`the bench origin exited (${code}) before listening`)));
    child.once("error", reject);
  });
  const urls = listening.map((p) => `http://127.0.0.1:${p}`);
  const [first] = urls;
  if (!first) throw new Error("the bench origin reported no port");
  return {
    urls,
    async stats() {
      return (await (await fetch(`${first}/__bench/stats`)).json()) as OriginStats;
    },
    async reset() {
      await (await fetch(`${first}/__bench/reset`)).arrayBuffer();
    },
  };
}
