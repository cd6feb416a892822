import type { EdgeConfig } from "./config/index.ts";
import type { Trace } from "./observe/index.ts";

export interface AppEnv {
  Bindings: Env;
  /** `trace`: set on proxied requests only (src/observe). */
  Variables: { config: EdgeConfig; trace?: Trace };
}
