import type { TestKeys } from "./keys.ts";

declare module "vitest" {
  interface ProvidedContext {
    origins: { id: string; url: string }[];
    keys: TestKeys;
    controlUrl: string;
  }
}
