/** JSON values as they come out of JSON.parse. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Nesting depth of a JSON value: 0 for a scalar, 1 + its deepest member for an
 * array or object (`{}` is 1, `{"a":[1]}` is 2). Iterative, and it returns as
 * soon as it reaches a level past `limit` (with that level, limit + 1): neither
 * a hostile document nor the check itself can exhaust the stack, and a refusal
 * costs no more than the first `limit + 1` levels.
 */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const pending: { v: object; depth: number }[] = [];
  if (typeof value === "object" && value !== null) pending.push({ v: value, depth: 1 });
  for (let top = pending.pop(); top; top = pending.pop()) {
    if (top.depth > deepest) {
      deepest = top.depth;
      if (deepest > limit) return deepest;
    }
    for (const child of Array.isArray(top.v) ? top.v : Object.values(top.v))
      if (typeof child === "object" && child !== null) pending.push({ v: child, depth: top.depth + 1 });
  }
  return deepest;
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
