/**
 * CPU time of a workerd process, from /proc (Linux): user + system, in ms.
 * The bench starts one workerd per Worker through Miniflare; the one a call
 * started is found as the new workerd child of this process.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

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

/** User + system CPU time of a process so far, in ms (10 ms resolution); NaN when unknown. */
export function cpuMs(pid: number | undefined): number {
  const fields = pid === undefined ? undefined : stat(pid);
  if (!fields) return Number.NaN;
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat (indexes 11 and 12 here).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}
