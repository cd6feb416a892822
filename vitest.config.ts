import { randomBytes } from "node:crypto";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// The Worker and its Durable Objects share one env, as in production: the snapshot key is bound for both.
const SNAPSHOT_KEY = randomBytes(32).toString("base64");

/**
 * Quiet unless something fails: the layer's JSON log lines (console) are shown
 * only for failing tests, and workerd's own reports of connections the tests
 * break on purpose (an origin killed mid-request: "disconnected: Connection
 * refused", with native stack addresses) are dropped. DEBUG=1 shows everything.
 */
const DEBUG = process.env.DEBUG === "1" || process.env.DEBUG === "true";
const WORKERD_NOISE =
  /^(exception = |uncaught exception;|stack: \S*workerd@|NOSENTRY |console warning; message = Called \.text\(\) on an HTTP body)/;
if (!DEBUG)
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) =>
      typeof chunk === "string" && WORKERD_NOISE.test(chunk) ? true : write(chunk, ...rest)) as typeof stream.write;
  }

export default defineConfig({
  test: {
    silent: DEBUG ? false : "passed-only",
    projects: [
      {
        // Inside workerd: real Durable Objects and KV, the Worker's own code, real origins over loopback.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: { SNAPSHOT_KEY },
              // A small limit, so a test can reach it; tests that send no client address are not limited.
              ratelimits: { NEW_SESSIONS: { namespace_id: "1001", simple: { limit: 5, period: 60 } } },
            },
          }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          globalSetup: ["./test/global-setup.ts"],
        },
      },
      {
        // In Node: the real `wrangler dev` end to end, the demo origin and its helper.
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
          globalSetup: ["./test/node/support/build-origin-package.ts"],
          testTimeout: 60_000,
          hookTimeout: 90_000,
        },
      },
    ],
  },
});
