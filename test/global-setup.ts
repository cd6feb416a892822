/** Runs in Node, outside workerd: real origin servers and fresh signing keys for the Worker tests. */
import type { TestProject } from "vitest/node";
import { startControlServer } from "./support/control-server.ts";
import { generateTestKeys } from "./support/keys.ts";
import { startOrigin } from "./support/origin-server.ts";

export default async function setup(project: TestProject) {
  const origins = await Promise.all(["alpha", "bravo", "charlie"].map((id) => startOrigin(id)));
  project.provide(
    "origins",
    origins.map((o) => ({ id: o.id, url: o.url })),
  );
  project.provide("keys", await generateTestKeys());
  const control = await startControlServer();
  project.provide("controlUrl", control.url);
  return async () => {
    await Promise.all([...origins.map((o) => o.close()), control.close()]);
  };
}
