import { describe, expect, it } from "vitest";
import { BrowserClient } from "./harness.ts";
import { admin, poolEnv, spawnOrigins } from "./pool-harness.ts";
import { loginWith, sessionOf } from "./session-admin.ts";

async function setup() {
  const origins = await spawnOrigins(1);
  const e = poolEnv(origins);
  const client = new BrowserClient(e);
  await client.send("/", loginWith({ cart: ["tea"], secret: "s3cret" }));
  return { e, client, sid: String((await sessionOf(client)).sid) };
}

describe("/__edge/sessions/:sid", () => {
  it("shows where a session lives, its sizes and audit trail; data only when asked", async () => {
    const { e, sid } = await setup();
    const res = await admin(e, "GET", `/sessions/${sid}`);
    expect(res.status).toBe(200);
    const view = (await res.json()) as Record<string, unknown>;
    expect(view).toMatchObject({ sid, status: "active", epoch: 1, region: "enam", version: 1, sub: "ada" });
    expect(Number(view.dataBytes)).toBeGreaterThan(10);
    expect(view.data).toBeUndefined();
    expect(JSON.stringify(view)).not.toContain("s3cret");
    const full = (await (await admin(e, "GET", `/sessions/${sid}?data=true`)).json()) as Record<string, unknown>;
    expect(full.data).toEqual({ cart: ["tea"], secret: "s3cret" });
  });

  it("404 for an unknown session, 400 for a malformed id", async () => {
    const { e } = await setup();
    const unknown = await admin(e, "GET", `/sessions/${"Z".repeat(24)}`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("ERR_UNKNOWN_SESSION");
    expect((await admin(e, "GET", "/sessions/..%2F..%2Fetc")).status).toBe(400);
  });

  it("revoke ends the session on the server: its cookie opens nothing, and a second revoke is 409", async () => {
    const { e, client, sid } = await setup();
    const res = await admin(e, "DELETE", `/sessions/${sid}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "destroyed", reason: "revoked" });
    const after = await sessionOf(client);
    expect(after.sid).not.toBe(sid);
    expect(after.sub).toBeUndefined();
    expect((await admin(e, "DELETE", `/sessions/${sid}`)).status).toBe(409);
  });
});

describe("/__edge/openapi.json", () => {
  it("documents the operator API from the same schemas that validate it", async () => {
    const { e } = await setup();
    const res = await admin(e, "GET", "/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe("3.1.0");
    for (const p of [
      "/status",
      "/origins",
      "/origins/{id}/drain",
      "/sessions/{sid}",
      "/sessions/{sid}/migrate",
      "/regions/{region}/evacuate",
      "/faults",
    ])
      expect(Object.keys(doc.paths)).toContain(p);
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(["DrainRequest", "MigrateRequest", "Fault", "Session"]),
    );
  });
});

describe("the per-session audit trail", () => {
  it("records created, login, re-pin, migration and logout, in the API and as one JSON log line each", async () => {
    const { vi } = await import("vitest");
    const logged = vi.spyOn(console, "log");
    const origins = await spawnOrigins(2);
    const e = poolEnv(origins, { AUTO_MIGRATE: "false" });
    const client = new BrowserClient(e);
    await client.send("/", loginWith({ n: 1 }));
    const sid = String((await sessionOf(client)).sid);
    await admin(e, "POST", `/sessions/${sid}/migrate`, { region: "weur" });
    const home = String((await sessionOf(client)).oid);
    await admin(e, "POST", `/origins/${home}/drain`, { in: 0 });
    await sessionOf(client);
    await client.send("/", { respond: { headers: { "x-edge-session-logout": "1" } } });

    const view = (await (await admin(e, "GET", `/sessions/${sid}`)).json()) as {
      status: string;
      audit: { event: string; detail: string | null }[];
    };
    expect(view.status).toBe("destroyed");
    expect(view.audit.map((a) => a.event)).toEqual(["created", "login", "migrated_in", "repinned", "logout"]);
    expect(view.audit.find((a) => a.event === "repinned")?.detail).toMatch(/\(drained\)$/);
    const lines = logged.mock.calls
      .map((c) => String(c[0]))
      .filter((l) => l.includes('"event":"session_audit"') && l.includes(sid))
      .map((l) => (JSON.parse(l) as { what: string }).what);
    expect(lines).toEqual(expect.arrayContaining(["migrated_in", "repinned", "logout"]));
    vi.restoreAllMocks();
  });
});
