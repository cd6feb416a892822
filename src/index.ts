import { createApp } from "./app.ts";

export { PoolObject } from "./origins/index.ts";
export { SessionObject } from "./session/index.ts";
export { PrincipalObject } from "./users/index.ts";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
