/**
 * The operator API's error contract: every refusal is JSON
 * `{"error":{"code","message"}}` with a code the README documents, whatever
 * part of the stack refuses (our routes, zod validation, Hono's body parsing,
 * bearer auth).
 */
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, BASE, callWorker } from "./harness.ts";

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function errorOf(res: Response) {
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  return { status: res.status, ...((await res.json()) as { error: { code: string; message: string } }).error };
}

const call = (path: string, init: RequestInit = {}) => callWorker(new Request(`${BASE}/__edge${path}`, init));

describe("every operator-API error is JSON with a documented code", () => {
  it("a malformed JSON body: 400 ERR_INVALID_REQUEST", async () => {
    const res = await call("/origins/alpha/drain", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: '{"in": 6',
    });
    expect(await errorOf(res)).toMatchObject({ status: 400, code: "ERR_INVALID_REQUEST" });
  });

  it("a body that is not JSON: 415 ERR_UNSUPPORTED_MEDIA_TYPE", async () => {
    const res = await call("/sessions/AAAAAAAAAAAAAAAAAAAAAAAA/migrate", {
      method: "POST",
      headers: { ...auth, "content-type": "text/plain" },
      body: "region=weur",
    });
    expect(await errorOf(res)).toMatchObject({ status: 415, code: "ERR_UNSUPPORTED_MEDIA_TYPE" });
  });

  it("a body that fails its schema: 400 naming every bad field", async () => {
    const res = await call("/origins/alpha/drain", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ in: -1, deadline: "tomorrow" }),
    });
    const error = await errorOf(res);
    expect(error).toMatchObject({ status: 400, code: "ERR_INVALID_REQUEST" });
    expect(error.message).toMatch(/deadline: .*; in: |in: .*; deadline: /);
  });

  it("any unusable Authorization header: 401 ERR_ADMIN_UNAUTHORIZED with a Bearer challenge", async () => {
    for (const authorization of [
      "Bearer",
      "Bearer ",
      "Bearer two words",
      "Bearer tok!en-with-a-non-token-character",
      `Basic ${btoa("admin:secret")}`,
      ADMIN_TOKEN,
      "Bearer wrong-token-wrong-token-wrong",
    ]) {
      const res = await call("/status", { headers: { authorization } });
      expect(await errorOf(res), authorization).toMatchObject({ status: 401, code: "ERR_ADMIN_UNAUTHORIZED" });
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
  });

  it("unknown paths and unknown origins: 404 with their own codes", async () => {
    expect(await errorOf(await call("/nope", { headers: auth }))).toMatchObject({ status: 404, code: "ERR_NOT_FOUND" });
    const res = await call("/origins/zulu/drain", { method: "POST", headers: auth });
    expect(await errorOf(res)).toMatchObject({ status: 404, code: "ERR_UNKNOWN_ORIGIN" });
  });

  it("the layer's own prefixes, in any encoding, are answered here and never forwarded to an origin", async () => {
    const at = (path: string) => callWorker(new Request(`${BASE}${path}`, { headers: auth }));
    for (const path of ["/%5F%5Fedge/nope", "/__edge/nope", "/.well-known/edge-session", "/.well-known/edge-session/x"])
      expect(await errorOf(await at(path)), path).toMatchObject({ status: 404, code: "ERR_NOT_FOUND" });
    // An encoded spelling of /__edge/status is the operator API's own route, not an origin's page.
    const status = await at("/__ed%67e/status");
    expect(status.status).toBe(200);
    expect(status.headers.get("content-type")).toMatch(/^application\/json/);
  });

  it("the OpenAPI document names /__edge as its server, so generated clients call /__edge/status", async () => {
    const doc = (await (await call("/openapi.json")).json()) as {
      servers?: { url: string }[];
      paths: Record<string, unknown>;
    };
    expect(doc.servers?.[0]?.url).toBe("/__edge");
    expect(new URL(`${doc.servers?.[0]?.url}/status`, BASE).pathname).toBe("/__edge/status");
    expect(Object.keys(doc.paths)).toContain("/status");
  });
});
