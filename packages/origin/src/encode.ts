/**
 * JSON for an HTTP header value. Header values are byte strings (latin1 in
 * node:http, ByteString in Fetch), so "é" written as is arrives as "\ufffd" and
 * an emoji makes node:http throw. Every character above U+007E becomes a \u
 * escape, a surrogate pair as two: JSON.parse on the layer reads back exactly
 * the same string. JSON.stringify already escapes control characters.
 */
export function encodeHeaderJson(value: unknown): string {
  const json = JSON.stringify(value);
  if (typeof json !== "string") throw new TypeError("not representable as JSON");
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const isJsonObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** A member of `o` itself: "toString" or "__proto__" in a document are keys like any other. */
const own = (o: JsonObject, k: string): Json | undefined => (Object.hasOwn(o, k) ? o[k] : undefined);
/** Sets a member without ever invoking the `__proto__` setter. */
function put(o: JsonObject, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** RFC 7396: applies a merge patch to a copy of `target`. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isJsonObject(patch)) return structuredClone(patch);
  const out: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else put(out, k, applyMergePatch(own(out, k), v));
  }
  return out;
}

const same = (a: Json | undefined, b: Json | undefined) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The smallest merge patch that turns `from` into `to` (RFC 7396 §2 in
 * reverse): removed keys become null, objects are compared key by key, arrays
 * and scalars are sent whole. Several set() calls in one response thus become
 * one X-Edge-Session-Set with exactly their combined effect, which a naive
 * merge of the patches cannot always express.
 */
export function diffMergePatch(from: JsonObject, to: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const k of Object.keys(from)) if (!Object.hasOwn(to, k)) put(patch, k, null);
  for (const [k, v] of Object.entries(to)) {
    const before = own(from, k);
    if (same(before, v)) continue;
    put(patch, k, isJsonObject(v) && isJsonObject(before) ? diffMergePatch(before, v) : structuredClone(v));
  }
  return patch;
}
