/**
 * `npm run bench -- --profile <scenario>`: where the Worker's CPU time goes in
 * one scenario. The edge Worker is bundled unminified and its isolate is
 * sampled through workerd's inspector (Chrome DevTools Protocol, every 100 µs)
 * while the scenario's load runs. Self time is summed by source module (from
 * esbuild's `// src/…` and `// node_modules/…` comments in the bundle) and by
 * function. "(idle)" is time the isolate had nothing to run; native calls
 * (WebCrypto, RPC, fetch) show as their own entries or in their JS caller.
 *
 * The profiler slows the Worker: read shares, not the req/s it prints.
 */
import { readFile } from "node:fs/promises";
import WebSocket from "ws";
import { runLoad } from "./load.ts";
import type { Prepared } from "./scenarios.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

/** A minimal CDP client: numbered requests, answers matched by id. */
async function devtools(url: string) {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  let next = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  });
  return {
    send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
      const id = ++next;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve) => waiting.set(id, (r) => resolve(r as T)));
    },
    close: () => socket.close(),
  };
}

/** Line index → the module esbuild says the line came from. */
async function moduleMap(bundlePath: string): Promise<(line: number) => string> {
  const starts: { line: number; module: string }[] = [];
  (await readFile(bundlePath, "utf8")).split("\n").forEach((text, line) => {
    if (/^\/\/ (src|node_modules)\//.test(text)) starts.push({ line, module: text.slice(3) });
  });
  return (line) => {
    let found = "(bundle)";
    for (const s of starts) {
      if (s.line > line) break;
      found = s.module;
    }
    return found;
  };
}

function top(totals: Map<string, number>, all: number, count: number): string {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, n]) => `${((100 * n) / all).toFixed(1).padStart(6)}%  ${name}`)
    .join("\n");
}

export async function profileScenario(
  inspectorUrl: string,
  bundlePath: string,
  prepared: Prepared,
  connections: number,
  seconds: number,
): Promise<string> {
  const spec = { ...prepared.spec, connections };
  await runLoad({ ...spec, duration: 2 });
  const cdp = await devtools(inspectorUrl);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  await cdp.send("Profiler.start");
  const load = await runLoad({ ...spec, duration: seconds });
  const { profile } = await cdp.send<{ profile: CpuProfile }>("Profiler.stop");
  cdp.close();

  const moduleAt = await moduleMap(bundlePath);
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const id of profile.samples) {
    const frame = frames.get(id);
    if (!frame) continue;
    const inBundle = frame.url.endsWith(".js") && frame.lineNumber >= 0;
    const module = inBundle ? moduleAt(frame.lineNumber) : frame.functionName || frame.url || "(native)";
    const fn = inBundle ? `${frame.functionName || "(anonymous)"}  ${module}` : module;
    byModule.set(module, (byModule.get(module) ?? 0) + 1);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + 1);
  }
  // Total time: a sample counts once for every function on its stack (self plus callees).
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const nameOf = (id: number): string | undefined => {
    const frame = frames.get(id);
    if (!frame || !(frame.url.endsWith(".js") && frame.lineNumber >= 0)) return undefined;
    return `${frame.functionName || "(anonymous)"}  ${moduleAt(frame.lineNumber)}`;
  };
  const inclusive = new Map<string, number>();
  for (const id of profile.samples) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = nameOf(at);
      if (name && !seen.has(name)) {
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
      }
    }
  }
  const all = profile.samples.length;
  return [
    `${load.rps.toFixed(0)} req/s under the profiler, ${all} samples`,
    "",
    "self time by module:",
    top(byModule, all, 25),
    "",
    "self time by function:",
    top(byFunction, all, 35),
    "",
    "total time by function (itself and what it calls), bundle code only:",
    top(inclusive, all, 40),
  ].join("\n");
}
