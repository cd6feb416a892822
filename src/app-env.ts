import type { EdgeConfig } from "./config/index.ts";

/** The operator API's Hono environment (the proxied path does not go through Hono). */
export interface AppEnv {
  Bindings: Env;
  Variables: { config: EdgeConfig };
}
