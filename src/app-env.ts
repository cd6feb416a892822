import type { EdgeConfig } from "./config/index.ts";

export interface AppEnv {
  Bindings: Env;
  Variables: { config: EdgeConfig };
}
