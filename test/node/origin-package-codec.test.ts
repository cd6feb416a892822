/**
 * The origin package's pure parts, property-tested: header encoding (any
 * Unicode survives a header), merge-patch diffs (several set() calls become one
 * exact patch), and the session object's refusals.
 */
import { createServer, validateHeaderValue } from "node:http";
import type { AddressInfo } from "node:net";
import {
  applyMergePatch,
  createVerifier,
  diffMergePatch,
  EdgeSession,
  type EdgeSessionClaims,
  EdgeSessionError,
  encodeHeaderJson,
  type HeaderSink,
  type JsonObject,
} from "edge-session-origin";
import fc from "fast-check";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { describe, expect, it } from "vitest";

const jsonObject = fc.dictionary(
  // Keys that name Object.prototype members are keys like any other in a document.
  fc.oneof(fc.constantFrom("__proto__", "toString", "constructor"), fc.string({ unit: "binary", maxLength: 6 })),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as JsonObject[string]),
  { maxKeys: 6 },
);
/** Documents as the layer stores them: no null members (a merge patch's null deletes). */
const document = jsonObject.map((o) => applyMergePatch({}, o) as JsonObject);

describe("encodeHeaderJson", () => {
  it("is printable ASCII that JSON.parse reads back exactly, for any string (emoji and lone surrogates included)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), jsonObject, (s, o) => {
        const value = { s, o };
        const encoded = encodeHeaderJson(value);
        expect(encoded).toMatch(/^[\x20-\x7e]*$/);
        expect(JSON.parse(encoded)).toEqual(value);
      }),
      { numRuns: 2000 },
    );
  });

  it("goes through a real node:http response header unchanged (the raw JSON.stringify does not)", async () => {
    const value = { note: "café 😀" };
    const server = createServer((_req, res) => res.setHeader("x-v", encodeHeaderJson(value)).end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(JSON.parse(res.headers.get("x-v") ?? "")).toEqual(value);
      // What the package exists to prevent: an emoji in a raw header value throws in node:http.
      expect(() => validateHeaderValue("x-v", JSON.stringify(value))).toThrow(
        expect.objectContaining({ code: "ERR_INVALID_CHAR" }),
      );
      expect(() => new Headers({ "x-v": JSON.stringify(value) })).toThrow(TypeError);
    } finally {
      server.close();
    }
  });
});

describe("diffMergePatch", () => {
  it("gives a patch that turns `from` into `to` (RFC 7396), for any two documents", () => {
    fc.assert(
      fc.property(document, document, (from, to) => {
        expect(applyMergePatch(from, diffMergePatch(from, to))).toEqual(to);
      }),
      { numRuns: 2000 },
    );
  });
});

function session(claims: Partial<EdgeSessionClaims>, document?: JsonObject | EdgeSessionError) {
  const headers = new Map<string, string>();
  const sink: HeaderSink = { set: (n, v) => void headers.set(n, v), remove: (n) => void headers.delete(n) };
  const full: EdgeSessionClaims = {
    sid: "s",
    ver: 7,
    oid: "o",
    reg: "enam",
    ep: 1,
    iss: "edge-session",
    aud: "edge-session:origin",
    iat: 0,
    exp: 0,
    ...claims,
  };
  const doc = document instanceof EdgeSessionError ? document : document && { sid: "s", ver: 7, data: document };
  return { s: new EdgeSession(full, "token", sink, { maxPatchBytes: 8192 }, doc), headers };
}

describe("EdgeSession", () => {
  it("combines several set() calls into one exact patch, conditional on the version it read", () => {
    fc.assert(
      fc.property(document, fc.array(jsonObject, { maxLength: 4 }), (data, patches) => {
        const { s, headers } = session({ data });
        let expected: JsonObject = data;
        for (const p of patches) {
          s.set(p);
          expected = applyMergePatch(expected, p) as JsonObject;
        }
        expect(s.data).toEqual(expected);
        if (!patches.length) return;
        expect(applyMergePatch(data, JSON.parse(headers.get("X-Edge-Session-Set") ?? "{}"))).toEqual(expected);
        expect(headers.get("X-Edge-Session-Set-If-Version")).toBe("7");
      }),
      { numRuns: 500 },
    );
  });

  it("refuses to read or write a document it could not see, with a typed error", () => {
    const { s, headers } = session({ data_omitted: true }, new EdgeSessionError("ERR_DOCUMENT_STALE", "moved on"));
    expect(() => s.data).toThrow(expect.objectContaining({ code: "ERR_DOCUMENT_STALE", status: 409 }));
    expect(() => s.set({ cart: ["small"] })).toThrow(EdgeSessionError);
    expect(headers.size).toBe(0);
    const unknown = session({ data_omitted: true });
    expect(() => unknown.s.set({ a: 1 })).toThrow(expect.objectContaining({ code: "ERR_DOCUMENT_UNAVAILABLE" }));
    // The document the layer gave for the omitted data is what it reads and writes against.
    const loaded = session({ data_omitted: true }, { cart: ["a"] });
    loaded.s.set({ cart: ["a", "b"] });
    expect(loaded.headers.get("X-Edge-Session-Set")).toBe('{"cart":["a","b"]}');
  });

  it("refuses a change larger than MAX_PATCH_BYTES before it is sent; logout always wins", () => {
    const { s, headers } = session({ data: {} });
    expect(() => s.set({ big: "€".repeat(2000) })).toThrow(expect.objectContaining({ code: "ERR_PATCH_TOO_LARGE" }));
    expect(headers.size).toBe(0);
    s.set({ a: 1 }, { ifVersion: false });
    expect(headers.has("X-Edge-Session-Set-If-Version")).toBe(false);
    s.login("ada", { role: "admin" });
    s.logout();
    expect(Object.fromEntries(headers)).toEqual({ "X-Edge-Session-Logout": "1" });
    expect(() => s.set({ b: 2 })).toThrow(expect.objectContaining({ code: "ERR_LOGGED_OUT" }));
  });
});

describe("createVerifier", () => {
  it("follows a key rotation: a header under a kid it has not seen makes it fetch the key set again", async () => {
    const keys: JWK[] = [];
    const signers: Record<string, CryptoKey> = {};
    const addKey = async (kid: string, alg: "EdDSA" | "ES256") => {
      const pair = await generateKeyPair(alg, alg === "EdDSA" ? { crv: "Ed25519" } : {});
      keys.push({ ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" });
      signers[kid] = pair.privateKey;
    };
    let fetches = 0;
    const server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const sign = (kid: string, alg: string, typ = "edge-session+jwt") =>
      new SignJWT({ sid: "s", ver: 1, oid: "o", reg: "enam", ep: 1 })
        .setProtectedHeader({ alg, kid, typ })
        .setIssuer("edge-session")
        .setAudience("edge-session:origin")
        .setIssuedAt()
        .setExpirationTime("2m")
        .sign(signers[kid] as CryptoKey);
    try {
      const verify = createVerifier({
        layerUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        jwksCache: { cooldownMs: 0 },
      });
      await addKey("ed-1", "EdDSA");
      expect(await verify(await sign("ed-1", "EdDSA"))).toMatchObject({ sid: "s", ver: 1 });
      expect(await verify(await sign("ed-1", "EdDSA"))).not.toBeNull();
      expect(fetches).toBe(1);
      await addKey("es-2", "ES256");
      expect(await verify(await sign("es-2", "ES256"))).toMatchObject({ sid: "s" });
      expect(fetches).toBe(2);
      expect(await verify(await sign("es-2", "ES256", "edge-affinity+jwt"))).toBeNull();
    } finally {
      server.close();
    }
  });
});
