/**
 * CPU time of the workerd process that serves a Worker, per request: a figure
 * that, unlike req/s, does not move when the load generator and the origin
 * compete with workerd for this machine's cores. Read from Linux's per-thread
 * scheduler statistics (nanoseconds on a CPU), summed over every thread of the
 * process listening on the Worker's port. Durable Objects of that Worker run in
 * the same process, so their work is included.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const pids = new Map<string, number | undefined>();

/** The process listening on a URL's port on this machine (ss -ltnp); undefined where that cannot be read. */
export function processServing(url: string): number | undefined {
  const port = new URL(url).port;
  if (pids.has(port)) return pids.get(port);
  let pid: number | undefined;
  try {
    const out = execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
    const found = /pid=(\d+)/.exec(out)?.[1];
    pid = found ? Number(found) : undefined;
  } catch {
    pid = undefined;
  }
  pids.set(port, pid);
  return pid;
}

/** Nanoseconds the process has spent on a CPU so far (all its threads); undefined if it cannot be read. */
export function cpuNanoseconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    let total = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`))
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    return total;
  } catch {
    return undefined;
  }
}
