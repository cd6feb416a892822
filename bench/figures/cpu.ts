/**
 * CPU time of a workerd process, from /proc (Linux). The bench starts one
 * workerd per Worker through Miniflare; the one a call started is found as the
 * new workerd child of this process, or as the workerd listening on a URL's
 * port. Per request, this is a figure that, unlike req/s, does not move when the
 * load generator and the origin compete with workerd for the machine's cores.
 * A Worker's Durable Objects run in its process, so their work is included.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

function stat(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may contain spaces.
    return raw.slice(raw.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

function workerdChildren(): Set<number> {
  const out = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("workerd")) continue;
    } catch {
      continue;
    }
    // Field 4 of /proc/<pid>/stat is the parent pid (index 1 after the command name).
    if (Number(stat(pid)?.[1]) === process.pid) out.add(pid);
  }
  return out;
}

/** Runs `start` and returns what it returned, with the pid of the workerd it started (if on Linux). */
export async function withNewWorkerd<T>(start: () => Promise<T>): Promise<{ value: T; pid: number | undefined }> {
  const before = workerdChildren();
  const value = await start();
  const pid = [...workerdChildren()].find((p) => !before.has(p));
  return { value, pid };
}

const listening = new Map<string, number | undefined>();

/** The workerd process listening on a URL's port (ss -ltnp); undefined for any other server, or where that cannot be read. */
export function workerdServing(url: string): number | undefined {
  const port = new URL(url).port;
  if (listening.has(port)) return listening.get(port);
  let pid: number | undefined;
  try {
    const found = /pid=(\d+)/.exec(execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" }))?.[1];
    pid = found && readFileSync(`/proc/${found}/comm`, "utf8").trim() === "workerd" ? Number(found) : undefined;
  } catch {
    pid = undefined;
  }
  listening.set(port, pid);
  return pid;
}

/**
 * Time a process has spent on a CPU so far, in ms, summed over its threads from
 * the scheduler's per-thread statistics (nanosecond resolution); NaN when unknown.
 */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`))
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    return ns / 1e6;
  } catch {
    return Number.NaN;
  }
}
