/** JSON values as they come out of JSON.parse. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * RFC 7396 §2 MergePatch(Target, Patch). Pure: neither argument is modified.
 * `__proto__` arrives from JSON.parse as an own property; building results with
 * Object.defineProperty-free plain assignment on null-prototype objects keeps
 * it an ordinary key instead of a prototype change.
 */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isJsonObject(patch)) return patch;
  const result: JsonObject = Object.create(null);
  if (isJsonObject(target)) for (const [k, v] of Object.entries(target)) result[k] = v;
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return { ...result };
}
