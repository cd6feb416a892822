/**
 * Fuzzing: property-based tests, with fast-check, of every parser
 * that takes input from a client, from storage or from the operator. Each
 * target runs CASES cases on every `npm test`. A failure prints fast-check's
 * seed and shrunk counter-example; pass `{ seed, path }` to fc.assert to replay it.
 *
 * The token targets verify at a fixed clock (NOW), so "expired" is decided by
 * the generated claims, never by when the suite happens to run.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/index.ts";
import { EnvSchema, type SigningJwk } from "../../src/config/schema.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  importSnapshotKey,
  type SessionSnapshot,
} from "../../src/replication/codec.ts";
import { applyMergePatch, type Json } from "../../src/session/merge-patch.ts";
import {
  type AffinityClaims,
  buildKeyRing,
  issueAffinityToken,
  SESSION_ID,
  type SigningKey,
  type TokenContext,
  verifyAffinityToken,
} from "../../src/token/index.ts";
import { BASE, BrowserClient, callWorker, edgeEnv } from "./harness.ts";
import { AFFINITY_AUD, AFFINITY_TYP, b64url, ISSUER } from "./tokens.ts";

const CASES = 10_000;
const WORKER_CASES = 500;
const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);
const NOW_S = Math.floor(NOW / 1000);
const TOLERANCE = 5;
/** Each target takes a few seconds alone; the limit leaves room for a busy machine (CI runs everything at once). */
const FUZZ_TIMEOUT = 60_000;

/** The Worker and the config parser log refusals; a fuzz run would print thousands of lines. */
function silenceConsole(): () => void {
  const spies = (["log", "info", "warn", "error", "debug"] as const).map((m) =>
    vi.spyOn(console, m).mockImplementation(() => {}),
  );
  return () => {
    for (const s of spies) s.mockRestore();
  };
}

// ---------------------------------------------------------------------------------------------
// Shared generators
// ---------------------------------------------------------------------------------------------

/** Strings of any UTF-16 code units, lone surrogates included. */
const anyText = (maxLength = 64) => fc.string({ unit: "binary", maxLength });
const b64Chars = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
const jwsChars = fc.oneof(
  { weight: 8, arbitrary: b64Chars },
  { weight: 2, arbitrary: fc.constantFrom(".", "=", "+", "/", " ", "\n", "\t", "%", "\u0000", "é", "\ud800") },
);
const sessionId = fc.stringMatching(/^[A-Za-z0-9_-]{22,64}$/);

/** Weighted choice between a well-formed value and anything else, so deep checks are reached. */
function mostly<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>, goodWeight = 3): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: goodWeight, arbitrary: good }, { weight: 1, arbitrary: bad });
}

/** `undefined` means "leave the member out". */
function withoutUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

// ---------------------------------------------------------------------------------------------
// (1) The token parser: verifyAffinityToken
// ---------------------------------------------------------------------------------------------

interface RawSigner {
  kid: string;
  alg: SigningKey["alg"];
  sign(input: string): Promise<Uint8Array>;
}

async function rawSigner(key: SigningKey): Promise<RawSigner> {
  const data = (input: string) => new TextEncoder().encode(input);
  if (key.alg === "HS256") {
    const secret =
      key.signKey instanceof Uint8Array
        ? await crypto.subtle.importKey("raw", key.signKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
        : key.signKey;
    return {
      kid: key.kid,
      alg: key.alg,
      sign: async (input) => new Uint8Array(await crypto.subtle.sign("HMAC", secret, data(input))),
    };
  }
  const signKey = key.signKey as CryptoKey;
  const params = key.alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", hash: "SHA-256" };
  return {
    kid: key.kid,
    alg: key.alg,
    sign: async (input) => new Uint8Array(await crypto.subtle.sign(params, signKey, data(input))),
  };
}

interface TokenFixture {
  /** Verifies with the whole set (Ed25519 signs; ES256 and HS256 verify), as the Worker does. */
  verify: TokenContext;
  /** One context per key of the set, each signing with that key. */
  issuers: TokenContext[];
  signers: RawSigner[];
  /** A valid token from each key, issued at NOW. */
  valid: string[];
  validClaims: AffinityClaims;
}

let tokens: TokenFixture;

const BASE_CLAIMS = {
  sid: "fuzz-session-0123456789abc",
  oid: "alpha",
  ep: 1,
  ver: 3,
  reg: "enam",
  ct: NOW_S - 60,
  exp: NOW_S + 600,
};

beforeAll(async () => {
  const set = JSON.parse(inject("keys").mixed) as { keys: SigningJwk[] };
  const verify: TokenContext = { keys: await buildKeyRing(set.keys), issuer: ISSUER, audience: AFFINITY_AUD };
  const issuers = await Promise.all(
    set.keys.map(async (k) => ({ ...verify, keys: await buildKeyRing([k]) }) satisfies TokenContext),
  );
  tokens = {
    verify,
    issuers,
    signers: await Promise.all(issuers.map((c) => rawSigner(c.keys.signer))),
    valid: await Promise.all(issuers.map((c) => issueAffinityToken(c, BASE_CLAIMS, NOW))),
    validClaims: { ...BASE_CLAIMS, iat: NOW_S },
  };
});

const REJECTION = /^ERR_TOKEN_[A-Z_]+$/;

function decodeLoose(segment: string): Uint8Array | undefined {
  // Uint8Array.fromBase64 is what jose decodes with in workerd; typed here because lib es2023 lacks it.
  const from = (Uint8Array as unknown as { fromBase64(s: string, o: { alphabet: string }): Uint8Array }).fromBase64;
  try {
    return from(segment, { alphabet: "base64url" });
  } catch {
    return undefined;
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * True when `candidate` carries exactly the header, claims and signature of
 * `issued`: same first two segments (they are the signed bytes), and a third
 * that decodes to the same signature. Only such a token may verify.
 */
function carriesSameSignature(candidate: string, issued: string): boolean {
  const parts = candidate.split(".");
  const [h, p, s] = issued.split(".");
  if (parts.length !== 3 || parts[0] !== h || parts[1] !== p) return false;
  return sameBytes(decodeLoose(parts[2] ?? ""), decodeLoose(s ?? ""));
}

const jsonSegment = (v: unknown) => b64url(JSON.stringify(v) ?? "null");

const algNames = fc.constantFrom("EdDSA", "ES256", "HS256", "none", "None", "NONE", "RS256", "ES256K", "Ed25519", "");
const kidNames = fc.constantFrom("ed-1", "es-1", "hs-1", "__proto__", "constructor", "../../etc/passwd", "");
const typNames = fc.constantFrom(
  AFFINITY_TYP,
  "JWT",
  "edge-session+jwt",
  "application/edge-affinity+jwt",
  "EDGE-AFFINITY+JWT",
);

const plausibleHeader = fc.record(
  {
    alg: mostly(algNames, fc.oneof(fc.string(), fc.jsonValue())),
    kid: mostly(kidNames, fc.oneof(fc.string(), fc.jsonValue())),
    typ: mostly(typNames, fc.oneof(fc.string(), fc.jsonValue())),
    crit: fc.oneof(fc.constant(["b64"]), fc.constant([]), fc.array(fc.string(), { maxLength: 3 }), fc.jsonValue()),
    b64: fc.oneof(fc.boolean(), fc.jsonValue()),
    jku: fc.constant("https://evil.example/jwks.json"),
    jwk: fc.jsonValue({ maxDepth: 2 }),
    x5u: fc.constant("https://evil.example/cert.pem"),
    zip: fc.constant("DEF"),
  },
  { requiredKeys: [] },
);

const plausibleClaims = fc.record(
  {
    iss: mostly(fc.constant(ISSUER), fc.jsonValue()),
    aud: mostly(fc.constant(AFFINITY_AUD), fc.jsonValue()),
    sid: mostly(sessionId, fc.jsonValue()),
    oid: mostly(fc.constant("alpha"), fc.jsonValue()),
    ep: mostly(fc.constant(1), fc.jsonValue()),
    reg: mostly(fc.constant("enam"), fc.jsonValue()),
    ct: mostly(fc.constant(NOW_S), fc.jsonValue()),
    iat: mostly(fc.constant(NOW_S), fc.jsonValue()),
    exp: mostly(fc.integer({ min: NOW_S - 20, max: NOW_S + 3600 }), fc.jsonValue()),
    nbf: fc.oneof(fc.integer({ min: NOW_S - 20, max: NOW_S + 20 }), fc.jsonValue()),
  },
  { requiredKeys: [] },
);

const segment = fc.oneof(
  { weight: 3, arbitrary: fc.oneof(plausibleHeader, plausibleClaims, fc.jsonValue()).map(jsonSegment) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 96 }).map(b64url) },
  { weight: 1, arbitrary: fc.string({ unit: jwsChars, maxLength: 96 }) },
);
const signatureSegment = fc.oneof(
  fc.uint8Array({ maxLength: 130 }).map(b64url),
  fc.constant(""),
  fc.string({ unit: jwsChars, maxLength: 130 }),
);

type Mutation =
  | { t: "flip"; at: number; bit: number }
  | { t: "set"; at: number; ch: string }
  | { t: "delete"; at: number }
  | { t: "insert"; at: number; ch: string }
  | { t: "truncate"; at: number }
  | { t: "swap"; i: number; j: number }
  | { t: "graft"; from: number; seg: number }
  | { t: "duplicate"; seg: number }
  | { t: "drop"; seg: number }
  | { t: "append"; s: string };

const oneChar = fc.oneof(jwsChars, fc.string({ unit: "binary", minLength: 1, maxLength: 1 }));
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("set" as const), at: fc.nat(), ch: oneChar }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("delete" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("insert" as const), at: fc.nat(), ch: oneChar }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("truncate" as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("swap" as const), i: fc.nat({ max: 2 }), j: fc.nat({ max: 2 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("graft" as const), from: fc.nat({ max: 2 }), seg: fc.nat({ max: 2 }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("duplicate" as const), seg: fc.nat({ max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("drop" as const), seg: fc.nat({ max: 2 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("append" as const), s: fc.string({ unit: jwsChars, maxLength: 8 }) }),
  },
);

function mutate(token: string, m: Mutation, others: readonly string[]): string {
  const at = (n: number) => (token.length === 0 ? 0 : n % token.length);
  const segs = token.split(".");
  switch (m.t) {
    case "flip":
      return (
        token.slice(0, at(m.at)) +
        String.fromCharCode(token.charCodeAt(at(m.at)) ^ (1 << m.bit)) +
        token.slice(at(m.at) + 1)
      );
    case "set":
      return token.slice(0, at(m.at)) + m.ch + token.slice(at(m.at) + 1);
    case "delete":
      return token.slice(0, at(m.at)) + token.slice(at(m.at) + 1);
    case "insert":
      return token.slice(0, at(m.at)) + m.ch + token.slice(at(m.at));
    case "truncate":
      return token.slice(0, at(m.at));
    case "swap": {
      const a = segs[m.i] ?? "";
      segs[m.i] = segs[m.j] ?? "";
      segs[m.j] = a;
      return segs.join(".");
    }
    case "graft": {
      const donor = (others[m.from] ?? "").split(".");
      segs[m.seg] = donor[m.seg] ?? "";
      return segs.join(".");
    }
    case "duplicate":
      segs.splice(m.seg, 0, segs[m.seg] ?? "");
      return segs.join(".");
    case "drop":
      segs.splice(m.seg, 1);
      return segs.join(".");
    case "append":
      return token + m.s;
  }
}

function normalizeTyp(typ: string): string {
  return typ.toLowerCase().replace(/^application\//, "");
}

/** zod measures string lengths in code points. */
const codePoints = (s: string) => [...s].length;
const between = (n: number, min: number, max: number) => n >= min && n <= max;

/**
 * What must hold of a token that verified (RFC 8725 §2.1, §3.1, §3.8–3.11; RFC 7515 §4.1.11).
 * `b64` counts only when `crit` names it (RFC 7797 §6); then it must be true, as a JWT payload is encoded.
 */
function expectEveryCheckHeld(header: Record<string, unknown>, claims: Record<string, unknown>, signer: RawSigner) {
  expect(header.alg).toBe(signer.alg);
  expect(header.kid).toBe(signer.kid);
  expect(typeof header.typ === "string" && normalizeTyp(header.typ)).toBe(AFFINITY_TYP);
  if (header.crit !== undefined) {
    expect(Array.isArray(header.crit) && header.crit.length > 0 && header.crit.every((c) => c === "b64")).toBe(true);
    expect(header.b64).toBe(true);
  }
  expect(claims.iss).toBe(ISSUER);
  const aud = claims.aud;
  expect(Array.isArray(aud) ? aud.includes(AFFINITY_AUD) : aud === AFFINITY_AUD).toBe(true);
  expect(typeof claims.exp === "number" && claims.exp > NOW_S - TOLERANCE).toBe(true);
  expect(claims.nbf === undefined || (typeof claims.nbf === "number" && claims.nbf <= NOW_S + TOLERANCE)).toBe(true);
  expect(typeof claims.iat).toBe("number");
  expect(claims.sid).toMatch(SESSION_ID);
  expect(typeof claims.oid === "string" && between(codePoints(claims.oid), 1, 64)).toBe(true);
  expect(Number.isInteger(claims.ep) && (claims.ep as number) >= 1).toBe(true);
  expect(typeof claims.reg === "string" && between(codePoints(claims.reg), 1, 16)).toBe(true);
  expect(Number.isInteger(claims.ct) && (claims.ct as number) >= 0).toBe(true);
  expect(claims.jur === undefined || claims.jur === "eu").toBe(true);
}

/** Small JSON values of any type: what a hostile token can put in a member. */
const junk = fc.oneof(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }));

/** A valid base with up to three members removed or replaced by something from their pool. */
function perturb(
  base: Record<string, unknown>,
  pools: Record<string, fc.Arbitrary<unknown>>,
): fc.Arbitrary<Record<string, unknown>> {
  return fc.uniqueArray(fc.constantFrom(...Object.keys(pools)), { maxLength: 3 }).chain((names) =>
    fc.tuple(...names.map((n) => fc.option(pools[n] ?? junk, { nil: undefined, freq: 4 }))).map((values) => {
      const out = { ...base };
      names.forEach((n, k) => {
        if (values[k] === undefined) delete out[n];
        else out[n] = values[k];
      });
      return out;
    }),
  );
}

const near = (t: number) => fc.integer({ min: t - 10, max: t + 10 });
const headerPools: Record<string, fc.Arbitrary<unknown>> = {
  alg: fc.oneof(algNames, junk),
  kid: fc.oneof(kidNames, junk),
  typ: fc.oneof(typNames, junk),
  crit: fc.oneof(fc.constantFrom(["b64"], [], ["x-evil"], ["alg"], ["b64", "b64"]), junk),
  b64: fc.oneof(fc.boolean(), junk),
  jku: fc.constant("https://evil.example/jwks.json"),
  jwk: fc.constant({ kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }),
  x5u: fc.constant("https://evil.example/cert.pem"),
  zip: fc.constant("DEF"),
  "x-evil": junk,
};
const claimPools: Record<string, fc.Arbitrary<unknown>> = {
  iss: fc.oneof(fc.constantFrom("evil", "", "EDGE-SESSION", [ISSUER]), junk),
  aud: fc.oneof(fc.constantFrom([AFFINITY_AUD], ["x", AFFINITY_AUD], "edge-session:origin", ISSUER), junk),
  sid: fc.oneof(sessionId, fc.constantFrom("short", "A".repeat(65), "bad sid with spaces 0123"), junk),
  oid: fc.oneof(fc.constantFrom("", "o".repeat(64), "o".repeat(65)), anyText(70), junk),
  ep: fc.oneof(fc.constantFrom(0, -1, 1.5, "1", 2 ** 53, 2 ** 60, 1e308), fc.integer(), junk),
  reg: fc.oneof(fc.constantFrom("", "r".repeat(16), "r".repeat(17)), anyText(20), junk),
  ct: fc.oneof(fc.constantFrom(-1, 0.5, "0", 2 ** 53), fc.integer(), junk),
  iat: fc.oneof(near(NOW_S), fc.constantFrom("now", 1.5), junk),
  exp: fc.oneof(near(NOW_S), fc.double({ min: NOW_S - 10, max: NOW_S + 10, noNaN: true }), junk),
  nbf: fc.oneof(near(NOW_S), junk),
  jur: fc.oneof(fc.constantFrom("eu", "us", "EU"), junk),
};

describe("fuzz: the affinity token parser (verifyAffinityToken)", () => {
  it(
    `refuses arbitrary strings with a reason code, never throwing (${CASES} cases)`,
    async () => {
      const input = fc.oneof(
        { weight: 3, arbitrary: anyText(300) },
        { weight: 3, arbitrary: fc.string({ unit: jwsChars, maxLength: 300 }) },
        { weight: 1, arbitrary: fc.integer({ min: 2040, max: 2100 }).map((n) => "eyJ.".repeat(n).slice(0, n)) },
      );
      await fc.assert(
        fc.asyncProperty(input, async (token) => {
          const r = await verifyAffinityToken(tokens.verify, token, NOW);
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.code).toMatch(REJECTION);
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    `refuses three base64url segments of arbitrary JSON headers, claims and signatures (${CASES} cases)`,
    async () => {
      await fc.assert(
        fc.asyncProperty(segment, segment, signatureSegment, async (h, p, s) => {
          const r = await verifyAffinityToken(tokens.verify, `${h}.${p}.${s}`, NOW);
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.code).toMatch(REJECTION);
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    `accepts a token signed with our key only when every RFC 8725 check holds (${CASES} cases)`,
    async () => {
      let accepted = 0;
      const signed = fc.nat({ max: 2 }).chain((i) =>
        fc.record({
          i: fc.constant(i),
          header: perturb(
            { alg: ["EdDSA", "ES256", "HS256"][i], kid: ["ed-1", "es-1", "hs-1"][i], typ: AFFINITY_TYP },
            headerPools,
          ),
          claims: perturb({ ...BASE_CLAIMS, iss: ISSUER, aud: AFFINITY_AUD, iat: NOW_S }, claimPools),
        }),
      );
      await fc.assert(
        fc.asyncProperty(signed, async ({ i, header, claims }) => {
          const signer = tokens.signers[i] as RawSigner;
          const input = `${jsonSegment(header)}.${jsonSegment(claims)}`;
          const token = `${input}.${b64url(await signer.sign(input))}`;
          const r = await verifyAffinityToken(tokens.verify, token, NOW);
          if (!r.ok) {
            expect(r.code).toMatch(REJECTION);
            return;
          }
          accepted++;
          expectEveryCheckHeld(header, claims, signer);
          expect(r.claims).toMatchObject({ sid: claims.sid, oid: claims.oid, ep: claims.ep, exp: claims.exp });
        }),
        { numRuns: CASES },
      );
      // The property must not hold vacuously: a good share of the cases were accepted.
      expect(accepted).toBeGreaterThan(CASES / 20);
    },
    FUZZ_TIMEOUT,
  );

  it(
    `refuses every mutation of a valid token that changes what was signed (${CASES} cases)`,
    async () => {
      const base = fc.nat({ max: 2 });
      await fc.assert(
        fc.asyncProperty(base, fc.array(mutation, { minLength: 1, maxLength: 3 }), async (i, ms) => {
          const issued = tokens.valid[i] as string;
          const token = ms.reduce((t, m) => mutate(t, m, tokens.valid), issued);
          const r = await verifyAffinityToken(tokens.verify, token, NOW);
          if (!r.ok) {
            expect(r.code).toMatch(REJECTION);
            return;
          }
          // Only a re-encoding of one of the issued tokens' own signature may pass (see wycheproof.test.ts).
          expect(tokens.valid.some((v) => carriesSameSignature(token, v))).toBe(true);
          expect(r.claims).toEqual(tokens.validClaims);
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    `round-trips any valid claims through issue and verify, with each key (${CASES} cases)`,
    async () => {
      const text = (min: number, max: number) =>
        fc.string({ unit: "binary", minLength: min, maxLength: max }).filter((s) => s.length >= min && s.length <= max);
      const claims = fc.record({
        sid: sessionId,
        oid: text(1, 64),
        ep: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        ver: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        reg: text(1, 16),
        ct: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        jur: fc.option(fc.constant("eu" as const), { nil: undefined }),
        cb: fc.option(text(1, 64), { nil: undefined }),
        ttl: fc.integer({ min: TOLERANCE + 1, max: 400 * 86400 }),
      });
      const now = fc.integer({ min: Date.UTC(2001, 0, 1), max: Date.UTC(2100, 0, 1) });
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: 2 }), claims, now, async (i, { ttl, jur, cb, ...c }, at) => {
          const ctx = tokens.issuers[i] as TokenContext;
          const exp = Math.floor(at / 1000) + ttl;
          const issued = { ...c, exp, ...(jur ? { jur } : {}), ...(cb ? { cb } : {}) };
          const token = await issueAffinityToken(ctx, issued, at);
          const r = await verifyAffinityToken(tokens.verify, token, at);
          expect(r).toEqual({ ok: true, claims: { ...issued, iat: Math.floor(at / 1000) } });
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );
});

// ---------------------------------------------------------------------------------------------
// (2) The merge-patch applier: applyMergePatch (RFC 7396)
// ---------------------------------------------------------------------------------------------

/** Keys that would change a prototype if a merge assigned them naively. */
const hostileKeys = fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf");
const jsonKey = fc.oneof({ weight: 1, arbitrary: hostileKeys }, { weight: 3, arbitrary: fc.string({ maxLength: 6 }) });

/**
 * JSON *text*, rendered by hand and parsed back, because that is how patches
 * arrive: JSON.parse makes `__proto__` an own property, which an object
 * literal or a plain assignment in a generator would not.
 */
const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string; object: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom("null", "true", "false", "0", "-1", "1.5e3", '""', '"x"'),
    fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
    fc.array(tie("value"), { maxLength: 4 }).map((xs) => `[${xs.join(",")}]`),
    tie("object"),
  ),
  object: fc
    .array(fc.tuple(jsonKey, tie("value")), { maxLength: 5 })
    .map((es) => `{${es.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`),
})).value;
const jsonArb = jsonText.map((t) => JSON.parse(t) as Json);
const objectArb = fc
  .array(fc.tuple(jsonKey, jsonText), { maxLength: 6 })
  .map((es) => JSON.parse(`{${es.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`) as Json);

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** RFC 7396 §2's pseudocode, written plainly over Maps, as the reference. */
function reference(target: Json | undefined, patch: Json): unknown {
  if (!isObject(patch)) return patch;
  const out = new Map<string, unknown>(isObject(target) ? Object.entries(target) : []);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) out.delete(k);
    else out.set(k, reference(out.get(k) as Json | undefined, v));
  }
  return out;
}

/** A canonical text for comparing results: Maps and objects alike, keys sorted (objects put integer-like keys first). */
function canon(v: unknown): string {
  const members = (entries: [string, unknown][]) =>
    `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => `${JSON.stringify(k)}:${canon(x)}`)
      .join(",")}}`;
  if (v instanceof Map) return members([...v]);
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (isObject(v)) return members(Object.entries(v));
  return JSON.stringify(v);
}

function prototypeIsClean(): boolean {
  const probe: Record<string, unknown> = {};
  return (
    Object.getOwnPropertyNames(Object.prototype).length === PROTOTYPE_NAMES &&
    probe.polluted === undefined &&
    ([] as unknown as Record<string, unknown>).polluted === undefined &&
    Object.getPrototypeOf(probe) === Object.prototype &&
    typeof Object.prototype.toString === "function"
  );
}
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).length;

/** Every object in the result is a plain object whose prototype is Object.prototype, with only own data. */
function plainAllTheWay(v: unknown): boolean {
  if (Array.isArray(v)) return v.every(plainAllTheWay);
  if (typeof v !== "object" || v === null) return true;
  return Object.getPrototypeOf(v) === Object.prototype && Object.values(v).every(plainAllTheWay);
}

describe("fuzz: the merge-patch applier (applyMergePatch, RFC 7396)", () => {
  it(
    `agrees with RFC 7396's pseudocode and never modifies its inputs (${CASES} cases)`,
    () => {
      fc.assert(
        fc.property(fc.oneof(objectArb, jsonArb), fc.oneof(objectArb, jsonArb), (target, patch) => {
          const before = [canon(target), canon(patch)];
          const result = applyMergePatch(target, patch);
          expect(canon(result)).toBe(canon(reference(target, patch)));
          expect([canon(target), canon(patch)]).toEqual(before);
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    `is idempotent (${CASES} cases)`,
    () => {
      fc.assert(
        fc.property(fc.oneof(objectArb, jsonArb), fc.oneof(objectArb, jsonArb), (target, patch) => {
          const once = applyMergePatch(target, patch);
          expect(canon(applyMergePatch(once, patch))).toBe(canon(once));
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    `deletes exactly the keys set to null, and a non-object patch replaces the target (${CASES} cases)`,
    () => {
      fc.assert(
        fc.property(fc.oneof(objectArb, jsonArb), fc.oneof(objectArb, jsonArb), (target, patch) => {
          const result = applyMergePatch(target, patch);
          if (!isObject(patch)) {
            expect(result).toBe(patch);
            return;
          }
          expect(isObject(result)).toBe(true);
          const out = result as Record<string, Json>;
          for (const [k, v] of Object.entries(patch)) {
            if (v === null) expect(Object.hasOwn(out, k)).toBe(false);
            else expect(Object.hasOwn(out, k)).toBe(true);
          }
          // Keys the patch does not name are kept as they were.
          if (isObject(target))
            for (const [k, v] of Object.entries(target))
              if (!Object.hasOwn(patch, k)) expect(canon(out[k])).toBe(canon(v));
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    `never pollutes a prototype, and the result is plain, JSON-serializable data (${CASES} cases)`,
    () => {
      fc.assert(
        fc.property(fc.oneof(objectArb, jsonArb), objectArb, (target, patch) => {
          const result = applyMergePatch(target, patch);
          expect(prototypeIsClean()).toBe(true);
          expect(plainAllTheWay(result)).toBe(true);
          const text = JSON.stringify(result);
          expect(canon(JSON.parse(text))).toBe(canon(result));
          // A `__proto__` the patch sets survives as data, as JSON.parse gave it.
          if (isObject(patch) && Object.getOwnPropertyDescriptor(patch, "__proto__")?.value != null)
            expect(Object.hasOwn(result as object, "__proto__")).toBe(true);
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );
});

// ---------------------------------------------------------------------------------------------
// (3) The snapshot codec: encodeSnapshot / decodeSnapshot
// ---------------------------------------------------------------------------------------------

const snapshotArb: fc.Arbitrary<SessionSnapshot> = fc.record(
  {
    sid: sessionId,
    epoch: fc.nat(),
    version: fc.nat(),
    region: fc.string({ maxLength: 8 }),
    jurisdiction: fc.constant("eu"),
    origin: fc.string({ maxLength: 16 }),
    home: fc.string({ maxLength: 16 }),
    data: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }) as fc.Arbitrary<
      SessionSnapshot["data"]
    >,
    auth: fc.record(
      { sub: anyText(16), claims: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 })) },
      { requiredKeys: [] },
    ) as fc.Arbitrary<SessionSnapshot["auth"]>,
    createdAt: fc.nat(),
    updatedAt: fc.nat(),
    lastSeen: fc.nat(),
    takenAt: fc.nat(),
  },
  {
    requiredKeys: [
      "sid",
      "epoch",
      "version",
      "region",
      "origin",
      "data",
      "auth",
      "createdAt",
      "updatedAt",
      "lastSeen",
      "takenAt",
    ],
  },
);

type Damage = { kind: "replace" | "insert"; at: number; byte: number } | { kind: "delete"; at: number };
const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }) },
);

/** One byte of the stored value changed, added or lost. The envelope is ASCII, so a byte is a character. */
function damage(stored: string, d: Damage): string {
  const at = d.at % stored.length;
  const ch = d.kind === "delete" ? "" : String.fromCharCode(d.byte);
  return stored.slice(0, at) + ch + stored.slice(d.kind === "insert" ? at : at + 1);
}

const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe("fuzz: the snapshot codec (encodeSnapshot / decodeSnapshot)", () => {
  const secret = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

  it(
    `round-trips any snapshot (${CASES} cases)`,
    async () => {
      const key = await importSnapshotKey(secret());
      await fc.assert(
        fc.asyncProperty(snapshotArb, async (s) => {
          const decoded = await decodeSnapshot(key, s.sid, await encodeSnapshot(key, s));
          expect(decoded).toEqual({ ok: true, snapshot: plain(s) });
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    `refuses any single-byte damage, or decodes the very same snapshot (${CASES} cases)`,
    async () => {
      const key = await importSnapshotKey(secret());
      const originals = fc.sample(snapshotArb, { numRuns: 32, seed: 8 });
      const stored = await Promise.all(originals.map((s) => encodeSnapshot(key, s)));
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: originals.length - 1 }), damageArb, async (i, d) => {
          const s = originals[i] as SessionSnapshot;
          const damaged = damage(stored[i] as string, d);
          const decoded = await decodeSnapshot(key, s.sid, damaged);
          if (decoded.ok) expect(decoded.snapshot).toEqual(plain(s));
          else expect(decoded.code).toMatch(/^ERR_SNAPSHOT_[A-Z_]+$/);
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    `never throws on arbitrary stored values, envelopes and ciphertexts (${CASES} cases)`,
    async () => {
      const key = await importSnapshotKey(secret());
      const sid = "fuzz-session-0123456789abc";
      const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
      const sum = async (ct: string) => {
        try {
          const bytes = Uint8Array.from(atob(ct), (c) => c.charCodeAt(0));
          return b64(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
        } catch {
          return "not base64";
        }
      };
      const base64ish = fc.oneof(fc.uint8Array({ maxLength: 64 }).map(b64), fc.string({ maxLength: 24 }));
      const envelope = fc.record(
        {
          f: mostly(fc.constant(1), fc.jsonValue()),
          sid: mostly(fc.constant(sid), fc.jsonValue()),
          ep: mostly(fc.nat(), fc.jsonValue()),
          ver: mostly(fc.nat(), fc.jsonValue()),
          kid: mostly(fc.constant(key.kid), fc.jsonValue()),
          at: mostly(fc.nat(), fc.jsonValue()),
          iv: mostly(base64ish, fc.jsonValue()),
          ct: mostly(base64ish, fc.jsonValue()),
          sum: fc.oneof(fc.constant("computed"), fc.string({ maxLength: 44 }), fc.jsonValue()),
        },
        { requiredKeys: [] },
      );
      const stored = fc.oneof(
        anyText(200),
        fc.json({ maxDepth: 3 }),
        envelope.map((e) => ({ e })),
      );
      await fc.assert(
        fc.asyncProperty(stored, async (raw) => {
          let text: string;
          if (typeof raw === "string") text = raw;
          else {
            const e = raw.e as Record<string, unknown>;
            if (e.sum === "computed") e.sum = typeof e.ct === "string" ? await sum(e.ct) : "x";
            text = JSON.stringify(e);
          }
          const decoded = await decodeSnapshot(key, sid, text);
          // No key could have produced these bytes: nothing decodes.
          expect(decoded.ok).toBe(false);
          if (!decoded.ok) expect(decoded.code).toMatch(/^ERR_SNAPSHOT_[A-Z_]+$/);
        }),
        { numRuns: CASES },
      );
    },
    FUZZ_TIMEOUT,
  );
});

// ---------------------------------------------------------------------------------------------
// (4) The config parser: parseConfig
// ---------------------------------------------------------------------------------------------

const FIELDS = Object.keys(EnvSchema.shape);
/** A field whose value is checked against another one: a bad value may be reported under the other's name. */
const CHECKED_AGAINST: Record<string, string[]> = {
  SESSION_IDLE_TIMEOUT: ["SESSION_ABSOLUTE_TIMEOUT"],
  ORIGINS: ["FALLBACK_ORIGIN"],
};

const garbage = fc.oneof(
  fc.string({ maxLength: 40 }),
  anyText(20),
  fc.constantFrom("", " ", "true", "0", "-1", "1e309", "NaN", "Infinity", "0x10", "1.5", "9007199254740993", "null"),
  fc.jsonValue({ maxDepth: 2 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
);
const numberish = fc.oneof(
  fc.integer({ min: -10, max: 100_000_000 }).map(String),
  fc.double({ noNaN: true }).map(String),
  fc.integer({ min: 0, max: 100_000 }),
  garbage,
);
const b64urlOf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(b64url);

function originArb(ids: fc.Arbitrary<string>): fc.Arbitrary<Record<string, unknown>> {
  const good = {
    id: ids,
    url: fc.constantFrom("http://127.0.0.1:1", "https://origin.example/base/", "http://[::1]:8080"),
  };
  return fc
    .record(
      {
        id: mostly(good.id, garbage, 5),
        url: mostly(
          good.url,
          fc.oneof(
            fc.constantFrom("ftp://x", "http://u:p@x", "http://x/?q=1", "http://x/#f", "/relative", "javascript:x"),
            garbage,
          ),
          5,
        ),
        region: mostly(fc.constantFrom("wnam", "enam", "weur", "apac"), garbage),
        weight: mostly(fc.integer({ min: 0, max: 1000 }), fc.oneof(fc.integer(), fc.double(), garbage)),
        health: mostly(
          fc.record(
            {
              path: mostly(fc.constant("/health"), garbage),
              interval: mostly(fc.integer({ min: 1, max: 3600 }), numberish),
              timeout: mostly(fc.integer({ min: 50, max: 60_000 }), numberish),
              rise: mostly(fc.integer({ min: 1, max: 100 }), numberish),
              fall: mostly(fc.integer({ min: 1, max: 100 }), numberish),
            },
            { requiredKeys: ["path"] },
          ),
          garbage,
        ),
        wieght: fc.constant(2),
      },
      { requiredKeys: ["id", "url"] },
    )
    .map(withoutUndefined);
}

function jwkArb(valid: SigningJwk[]): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      fc.constantFrom(...valid),
      fc.record(
        {
          kty: fc.oneof(fc.constantFrom("OKP", "EC", "oct", "RSA"), garbage),
          crv: fc.oneof(fc.constantFrom("Ed25519", "P-256", "X25519", "P-384"), garbage),
          kid: fc.oneof(fc.constantFrom("a", "ed-1", "k".repeat(65), "../x"), garbage),
          alg: fc.oneof(fc.constantFrom("EdDSA", "ES256", "HS256", "Ed25519", "none"), garbage),
          x: fc.oneof(b64urlOf(32), b64urlOf(31), garbage),
          y: fc.oneof(b64urlOf(32), garbage),
          d: fc.oneof(b64urlOf(32), b64urlOf(33), garbage),
          k: fc.oneof(b64urlOf(32), b64urlOf(31), b64urlOf(64), garbage),
        },
        { requiredKeys: [] },
      ),
    )
    .map(([jwk, changes]) => withoutUndefined({ ...jwk, ...changes }));
}

describe("fuzz: the config parser (parseConfig)", () => {
  let restore: () => void;
  beforeAll(() => {
    restore = silenceConsole();
  });
  afterAll(() => restore());

  it(
    `returns a config or throws a ConfigError naming the bad field, nothing else (${CASES} cases)`,
    async () => {
      const keys = inject("keys");
      const validSets = [keys.mixed, keys.es256, keys.hs256];
      const validJwks = validSets.flatMap((s) => (JSON.parse(s) as { keys: SigningJwk[] }).keys);
      const baseline: Record<string, unknown> = {
        ENVIRONMENT: "production",
        ORIGINS: JSON.stringify([
          { id: "alpha", url: "http://127.0.0.1:1" },
          { id: "bravo", url: "http://127.0.0.1:2" },
        ]),
        SESSION_SIGNING_KEYS: keys.mixed,
        ADMIN_TOKEN: "fuzz-admin-token-0123456789",
        SNAPSHOT_KEY: btoa(String.fromCharCode(...new Uint8Array(32).fill(7))),
      };
      const ids = fc.constantFrom("alpha", "bravo", "charlie", "a.b-c_d");
      const perField: Record<string, fc.Arbitrary<unknown>> = {
        ENVIRONMENT: mostly(fc.constantFrom("development", "staging", "production"), garbage),
        ORIGINS: fc.oneof(
          { weight: 4, arbitrary: fc.array(originArb(ids), { maxLength: 4 }).map((o) => JSON.stringify(o)) },
          { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
          { weight: 1, arbitrary: garbage },
        ),
        SESSION_SIGNING_KEYS: fc.oneof(
          { weight: 2, arbitrary: fc.constantFrom(...validSets) },
          {
            weight: 4,
            arbitrary: fc
              .array(fc.oneof(fc.constantFrom(...validJwks), jwkArb(validJwks)), { maxLength: 3 })
              .map((ks) => JSON.stringify({ keys: ks })),
          },
          { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
          { weight: 1, arbitrary: garbage },
        ),
        SNAPSHOT_KEY: fc.oneof(
          fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => btoa(String.fromCharCode(...b))),
          fc.uint8Array({ minLength: 32, maxLength: 32 }).map(b64url),
          fc.uint8Array({ maxLength: 40 }).map((b) => btoa(String.fromCharCode(...b))),
          garbage,
        ),
        FALLBACK_ORIGIN: fc.oneof(
          originArb(ids).map((o) => JSON.stringify(o)),
          garbage,
        ),
        ADMIN_TOKEN: fc.oneof(fc.string({ minLength: 20, maxLength: 40 }), garbage),
      };
      const valueFor = (field: string) => perField[field] ?? numberish;
      const env = fc.uniqueArray(fc.constantFrom(...FIELDS), { maxLength: 5 }).chain((fields) =>
        fc.tuple(...fields.map(valueFor)).map((values) => ({
          touched: fields,
          env: withoutUndefined({ ...baseline, ...Object.fromEntries(fields.map((f, i) => [f, values[i]])) }),
        })),
      );
      let parsed = 0;
      await fc.assert(
        fc.asyncProperty(env, async ({ touched, env }) => {
          try {
            const cfg = await parseConfig(env);
            parsed++;
            expect(cfg.origins.length).toBeGreaterThan(0);
            expect(cfg.absoluteTimeout).toBeGreaterThanOrEqual(cfg.idleTimeout);
          } catch (e) {
            expect(e).toBeInstanceOf(ConfigError);
            const { problems, detail, message } = e as ConfigError;
            const blamable = touched.flatMap((f) => [f, ...(CHECKED_AGAINST[f] ?? [])]);
            expect(problems.length).toBeGreaterThan(0);
            for (const problem of problems) {
              expect(blamable).toContain(problem.field.split(/[.[]/)[0] ?? "");
              expect(problem.message.length).toBeGreaterThan(0);
            }
            // The detail reaches the logs: it must not quote a secret. Clients see only the fixed message.
            expect(quotedSecret(detail, env)).toBeUndefined();
            expect(message).not.toMatch(/[A-Z]{2,}_[A-Z]/);
          }
        }),
        { numRuns: CASES },
      );
      expect(parsed).toBeGreaterThan(CASES / 20);
    },
    FUZZ_TIMEOUT,
  );

  it("a malformed SESSION_SIGNING_KEYS is never quoted in the ConfigError", async () => {
    const { x, d } = {
      x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
      d: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    };
    // `d` unquoted: one slip when pasting a key set by hand.
    const keys = `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"${x}","d":${d}}]}`;
    const env = {
      ORIGINS: '[{"id":"a","url":"http://127.0.0.1:1"}]',
      SESSION_SIGNING_KEYS: keys,
      SNAPSHOT_KEY: btoa("k".repeat(32)),
    };
    const error = await parseConfig(env).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    // V8's own message would carry `..."URo","d":nWGxne_9WmC"...`: ten characters of the private key.
    expect(quotedSecret((error as ConfigError).detail, env)).toBeUndefined();
  });
});

const SECRETS = ["SESSION_SIGNING_KEYS", "ADMIN_TOKEN", "SNAPSHOT_KEY"];

/** The first 8-character piece of key material (a base64 run of 40+ characters) from a secret that `message` contains. */
function quotedSecret(message: string, env: Record<string, unknown>): string | undefined {
  for (const name of SECRETS) {
    const value = env[name];
    if (typeof value !== "string") continue;
    for (const run of value.match(/[A-Za-z0-9_+/-]{40,}/g) ?? [])
      for (let i = 0; i + 8 <= run.length; i++) if (message.includes(run.slice(i, i + 8))) return run.slice(i, i + 8);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// (5) Through the real Worker: no token value a client can send gets a 5xx
// ---------------------------------------------------------------------------------------------

/**
 * Characters a header value can carry (RFC 9110 §5.5: VCHAR, SP, HTAB). obs-text (0x80–0xFF) is left
 * out: workerd's Headers would re-encode it as UTF-8 and print a warning for every case.
 */
const headerChar = fc.oneof(
  { weight: 6, arbitrary: b64Chars },
  { weight: 2, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom("\t", ".", ";", "=", '"', ",", "%") },
);

describe("fuzz: token values through the real Worker", () => {
  let restore: () => void;
  const real: string[] = [];
  beforeAll(async () => {
    restore = silenceConsole();
    const victim = new BrowserClient();
    await victim.send("/", {
      respond: { headers: { "x-edge-session-set": '{"secret":1}', "x-edge-session-login": '{"sub":"v"}' } },
    });
    real.push(victim.cookie ?? "", ...tokens.valid);
  });
  afterAll(() => restore());

  it(
    `never answers a 5xx, whatever cookie or token header is sent (${WORKER_CASES} requests)`,
    async () => {
      const lenient = edgeEnv();
      const strict = edgeEnv({ STRICT_TOKENS: "true" });
      const value = fc.oneof(
        { weight: 3, arbitrary: fc.string({ unit: headerChar, maxLength: 200 }) },
        {
          weight: 3,
          arbitrary: fc
            .tuple(fc.nat({ max: 3 }), fc.array(mutation, { minLength: 1, maxLength: 2 }))
            .map(([i, ms]) => ms.reduce((t, m) => mutate(t, m, real), real[i] ?? "")),
        },
        { weight: 2, arbitrary: fc.tuple(segment, segment, signatureSegment).map((s) => s.join(".")) },
        { weight: 1, arbitrary: fc.integer({ min: 2000, max: 9000 }).map((n) => "e".repeat(n)) },
      );
      // Header values cannot hold CR, LF or NUL (fetch refuses them before the Worker), and stay ASCII (see headerChar).
      const sendable = value.map((v) =>
        Array.from(v)
          .filter((c) => c.charCodeAt(0) <= 0x7e && (c >= " " || c === "\t"))
          .join(""),
      );
      const request = fc.record({
        mode: fc.constantFrom("cookie", "header", "both"),
        strict: fc.boolean(),
        prefix: fc.constantFrom("", "a=1; ", "__Host-edge-session=x; ", "; ; "),
        quoted: fc.boolean(),
        value: sendable,
      });
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const headers = new Headers();
          const v = r.quoted ? `"${r.value}"` : r.value;
          if (r.mode !== "header") headers.set("cookie", `${r.prefix}__Host-edge-session=${v}`);
          if (r.mode !== "cookie") headers.set("x-edge-session-token", r.value);
          const res = await callWorker(new Request(`${BASE}/echo`, { headers }), r.strict ? strict : lenient);
          const body = await res.text();
          expect(res.status, body).toBeLessThan(500);
          if (!r.strict) expect(res.status, body).toBe(200);
          else if (res.status !== 200) {
            expect(res.status, body).toBe(401);
            expect((JSON.parse(body) as { error: { code: string } }).error.code).toMatch(
              /^ERR_(TOKEN_[A-Z_]+|SESSION_ENDED)$/,
            );
          }
        }),
        { numRuns: WORKER_CASES },
      );
    },
    FUZZ_TIMEOUT,
  );
});
