/**
 * Headless Chromium for browser tests: the Debian package (`apt-get install
 * chromium`, as .ci/run does), driven by playwright-core. Playwright never
 * downloads a browser here.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function run(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: ["ignore", "ignore", "inherit"], timeout: 600_000 });
  return result.status === 0;
}

/**
 * Undefined when Chromium is there (installing it with apt-get first if this
 * is root on Debian); otherwise why the browser tests cannot run.
 */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const root = process.getuid?.() === 0;
  if (root && existsSync("/usr/bin/apt-get")) {
    console.log(`${CHROMIUM_PATH} is missing: installing the Debian package chromium with apt-get`);
    if (run("apt-get", ["update"]) && run("apt-get", ["install", "-y", "chromium"]) && existsSync(CHROMIUM_PATH))
      return undefined;
  }
  return `${CHROMIUM_PATH} is missing and could not be installed (apt-get install -y chromium as root; .ci/run does it)`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, headless: true });
}
