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
  /** Really stops origin `index` (0-based): its port refuses connections until open(). */
  close(index: number): Promise<void>;
  open(index: number): Promise<void>;
  /** Requests each origin received since the last resetReceived(), by method. */
  received(): Promise<Record<string, number>[]>;
  resetReceived(): Promise<void>;
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

  let nextId = 0;
  const waiting = new Map<number, (m: { ok: boolean; result?: unknown; error?: string }) => void>();
  child.on("message", (m: { id?: number; ok: boolean; result?: unknown; error?: string }) => {
    if (m.id !== undefined) waiting.get(m.id)?.(m);
  });
  const command = (cmd: string, index?: number) =>
    new Promise<{ received: Record<string, number>[] }>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, (m) => {
        waiting.delete(id);
        if (m.ok) resolve(m.result as { received: Record<string, number>[] });
        else reject(new Error(`origin ${cmd}: ${m.error}`));
      });
      child.send({ id, cmd, index });
    });

  return {
    urls,
    async stats() {
      return (await (await fetch(`${first}/__bench/stats`)).json()) as OriginStats;
    },
    async reset() {
      await (await fetch(`${first}/__bench/reset`)).arrayBuffer();
    },
    close: async (index) => void (await command("close", index)),
    open: async (index) => void (await command("open", index)),
    received: async () => (await command("counts")).received,
    resetReceived: async () => void (await command("reset")),
  };
}
