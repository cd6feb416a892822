/**
 * Everything the bench starts registers how to stop it here, so that a normal
 * end, an error and Ctrl-C all leave no workerd, HAProxy or origin behind.
 *
 * `stopAll()` runs the async stoppers in reverse order of start. For a hard
 * exit (a signal, or `process.exit` from elsewhere — Miniflare's own exit hook
 * calls it on SIGINT), the child processes are also killed synchronously from
 * the `exit` event, which can't wait for anything.
 */
import type { ChildProcess } from "node:child_process";

type Stopper = () => Promise<void>;

const stoppers: { name: string; stop: Stopper }[] = [];
const children = new Set<ChildProcess>();
const onExit: (() => void)[] = [];
let installed = false;

function installExitHooks(): void {
  if (installed) return;
  installed = true;
  process.on("exit", () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const fn of onExit) fn();
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.on(signal, () => {
      console.error(`\nbench: ${signal}, stopping everything`);
      void stopAll().finally(() => process.exit(130));
    });
}

export function onStop(name: string, stop: Stopper): void {
  installExitHooks();
  stoppers.push({ name, stop });
}

/** Something synchronous to do however the process exits (e.g. remove a temporary folder). */
export function atExit(fn: () => void): void {
  installExitHooks();
  onExit.push(fn);
}

/** Waits for a child to exit after SIGTERM, then SIGKILLs it. */
export function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      children.delete(child);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** Registers a child process: stopped by stopAll(), killed on any exit. */
export function trackChild(name: string, child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
  onStop(name, () => stopChild(child));
}

export async function stopAll(): Promise<void> {
  while (stoppers.length) {
    const entry = stoppers.pop();
    if (!entry) break;
    try {
      await entry.stop();
    } catch (e) {
      console.error(`bench: stopping ${entry.name} failed: ${String(e)}`);
    }
  }
}
