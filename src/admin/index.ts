import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env.ts";
import { requireAdmin } from "./auth.ts";
import { registerDashboard } from "./dashboard/index.ts";
import { validationHook } from "./openapi.ts";
import { registerPoolRoutes } from "./pool-routes.ts";
import { registerSessionRoutes } from "./session-routes.ts";
import { registerUserRoutes } from "./user-routes.ts";
import { VERSION } from "./version.ts";

export { fromHttpException, HTTPException } from "./http-errors.ts";
export { VERSION };

/** Where the routes below live: generated clients join this to the API's paths (/status → /__edge/status). */
export const ADMIN_BASE = "/__edge";

/**
 * The operator API under /__edge/. JSON in and out; every route but the OpenAPI
 * document needs the admin token. The OpenAPI document is generated from the
 * same zod schemas that validate the requests.
 */
export function adminRoutes(): OpenAPIHono<AppEnv> {
  const admin = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  admin.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  admin.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "edge-session operator API", version: VERSION },
    servers: [{ url: ADMIN_BASE, description: "the layer's own host" }],
  });
  registerDashboard(admin);
  admin.use(requireAdmin());
  registerPoolRoutes(admin);
  registerSessionRoutes(admin);
  registerUserRoutes(admin);
  return admin;
}
