/**
 * Session snapshots as stored in Workers KV.
 *
 * Envelope (JSON): { f: 1, sid, ep, ver, kid, at, iv, ct, sum }
 * - `ct` is AES-256-GCM over the snapshot body, with additional data
 *   `edge-session/snapshot/v1|sid|ep|ver`: a snapshot cannot be moved to another
 *   session, nor relabelled as another epoch or version, without failing the tag.
 * - `sum` is a plain SHA-256 of `ct`: it tells storage damage (truncation,
 *   flipped bytes) apart from a key or label mismatch in the refusal code.
 * - `kid` names the key (first bytes of its SHA-256), so a snapshot written under
 *   another SNAPSHOT_KEY is refused as such.
 * A newer format (`f` > 1) is refused rather than guessed at.
 */
import type { JsonObject } from "../session/merge-patch.ts";

export const SNAPSHOT_FORMAT = 1;

/** What a snapshot restores: everything a session object holds but its timers. */
export interface SessionSnapshot {
  sid: string;
  epoch: number;
  version: number;
  region: string;
  jurisdiction?: string;
  origin: string;
  home?: string;
  data: JsonObject;
  auth: { sub?: string; claims?: JsonObject };
  createdAt: number;
  updatedAt: number;
  lastSeen: number;
  /** When this snapshot was taken (ms). */
  takenAt: number;
}

export interface SnapshotEnvelope {
  f: number;
  sid: string;
  ep: number;
  ver: number;
  kid: string;
  at: number;
  iv: string;
  ct: string;
  sum: string;
}

export type SnapshotRefusal =
  | "ERR_SNAPSHOT_MALFORMED"
  | "ERR_SNAPSHOT_FORMAT"
  | "ERR_SNAPSHOT_CORRUPT"
  | "ERR_SNAPSHOT_WRONG_KEY"
  | "ERR_SNAPSHOT_MISMATCH";

export type DecodeResult =
  | { ok: true; snapshot: SessionSnapshot }
  | { ok: false; code: SnapshotRefusal; message: string };

export interface SnapshotKey {
  kid: string;
  key: CryptoKey;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function b64(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let bin = "";
  for (const b of view) bin += String.fromCharCode(b);
  return btoa(bin);
}

function unb64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return b64(await crypto.subtle.digest("SHA-256", bytes));
}

function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text) as Uint8Array<ArrayBuffer>;
}

function aad(sid: string, ep: number, ver: number): Uint8Array<ArrayBuffer> {
  return utf8(`edge-session/snapshot/v1|${sid}|${ep}|${ver}`);
}

/** SNAPSHOT_KEY is 32 random bytes, base64 (standard or url-safe). */
export async function importSnapshotKey(secret: string): Promise<SnapshotKey> {
  const plain = secret.trim().replaceAll("-", "+").replaceAll("_", "/").replace(/=+$/, "");
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = unb64(plain + "=".repeat((4 - (plain.length % 4)) % 4));
  } catch {
    throw new Error("must be base64");
  }
  if (raw.byteLength !== 32) throw new Error(`must be 32 bytes of base64 (got ${raw.byteLength} bytes)`);
  const key = await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  const kid = (await sha256(raw)).slice(0, 8);
  return { kid, key };
}

export async function encodeSnapshot(k: SnapshotKey, s: SessionSnapshot): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const body = utf8(JSON.stringify(s));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad(s.sid, s.epoch, s.version) }, k.key, body),
  );
  const envelope: SnapshotEnvelope = {
    f: SNAPSHOT_FORMAT,
    sid: s.sid,
    ep: s.epoch,
    ver: s.version,
    kid: k.kid,
    at: s.takenAt,
    iv: b64(iv),
    ct: b64(ct),
    sum: await sha256(ct),
  };
  return JSON.stringify(envelope);
}

function parseEnvelope(raw: string): SnapshotEnvelope | undefined {
  try {
    const e = JSON.parse(raw) as Partial<SnapshotEnvelope>;
    const fields =
      typeof e.f === "number" &&
      typeof e.sid === "string" &&
      typeof e.ep === "number" &&
      typeof e.ver === "number" &&
      typeof e.kid === "string" &&
      typeof e.at === "number" &&
      typeof e.iv === "string" &&
      typeof e.ct === "string" &&
      typeof e.sum === "string";
    return fields ? (e as SnapshotEnvelope) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Never throws: a snapshot that cannot be trusted is a refusal with a code.
 * `sid` is the session the caller expects (from the KV key it read).
 */
export async function decodeSnapshot(k: SnapshotKey, sid: string, raw: string): Promise<DecodeResult> {
  const e = parseEnvelope(raw);
  if (!e)
    return { ok: false, code: "ERR_SNAPSHOT_MALFORMED", message: "not a snapshot envelope (truncated or not JSON)" };
  if (e.f !== SNAPSHOT_FORMAT)
    return {
      ok: false,
      code: "ERR_SNAPSHOT_FORMAT",
      message: `snapshot format ${e.f} is not one this version reads (${SNAPSHOT_FORMAT})`,
    };
  let iv: Uint8Array<ArrayBuffer>;
  let ct: Uint8Array<ArrayBuffer>;
  try {
    iv = unb64(e.iv);
    ct = unb64(e.ct);
  } catch {
    return { ok: false, code: "ERR_SNAPSHOT_CORRUPT", message: "iv or ciphertext is not base64" };
  }
  if ((await sha256(ct)) !== e.sum)
    return {
      ok: false,
      code: "ERR_SNAPSHOT_CORRUPT",
      message: "checksum mismatch: the stored bytes were damaged or altered",
    };
  if (e.kid !== k.kid)
    return {
      ok: false,
      code: "ERR_SNAPSHOT_WRONG_KEY",
      message: `written under key ${e.kid}, not the current ${k.kid}`,
    };
  if (e.sid !== sid)
    return { ok: false, code: "ERR_SNAPSHOT_MISMATCH", message: "the snapshot belongs to another session" };
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad(e.sid, e.ep, e.ver) }, k.key, ct);
  } catch {
    return {
      ok: false,
      code: "ERR_SNAPSHOT_MISMATCH",
      message: "authentication failed: the labels (sid, epoch, version) do not match the ciphertext",
    };
  }
  try {
    const snapshot = JSON.parse(decoder.decode(plain)) as SessionSnapshot;
    if (snapshot.sid !== e.sid || snapshot.epoch !== e.ep || snapshot.version !== e.ver)
      return { ok: false, code: "ERR_SNAPSHOT_MISMATCH", message: "body and envelope disagree" };
    return { ok: true, snapshot };
  } catch {
    return { ok: false, code: "ERR_SNAPSHOT_MALFORMED", message: "decrypted body is not JSON" };
  }
}

/** What KV list() returns beside each key, so listing needs no decryption. */
export interface SnapshotMetadata {
  oid: string;
  reg: string;
  jur?: string;
  ep: number;
  ver: number;
  updatedAt: number;
}

export function snapshotKey(sid: string): string {
  return `snap:${sid}`;
}

export function fenceKey(sid: string): string {
  return `fence:${sid}`;
}

/** An operator revocation that could not reach the session's object yet: no restore may bring it back. */
export function revokedKey(sid: string): string {
  return `revoked:${sid}`;
}
