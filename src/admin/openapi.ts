import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env.ts";
import { EdgeError } from "../errors.ts";
import { ErrorSchema } from "./schemas.ts";

export const json = <T>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

export const errors = {
  400: json(ErrorSchema, "Invalid input; the message names the field"),
  401: json(ErrorSchema, "Missing, malformed or wrong admin token"),
  415: json(ErrorSchema, "A body that is not application/json"),
  404: json(ErrorSchema, "No such origin or session"),
  409: json(ErrorSchema, "The request conflicts with the session's state"),
  503: json(
    ErrorSchema,
    "The session's object could not be reached (ERR_SESSION_UNAVAILABLE); retry after Retry-After",
  ),
};

export const security = [{ bearer: [] }];

function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".") || "body";
}

/** Schema failures become 400 ERR_INVALID_REQUEST naming the field, like every other refusal. */
export function validationHook(result: {
  success: boolean;
  error?: { issues: { path: PropertyKey[]; message: string }[] };
}): void {
  if (result.success) return;
  const issues = result.error?.issues ?? [];
  const message = issues.length
    ? issues.map((issue) => `${issuePath(issue.path)}: ${issue.message}`).join("; ")
    : "body: invalid";
  throw new EdgeError("ERR_INVALID_REQUEST", message, { status: 400 });
}

export type AdminApp = OpenAPIHono<AppEnv>;
