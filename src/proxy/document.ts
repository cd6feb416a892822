import type { EdgeConfig } from "../config/index.ts";
import { EdgeError, type ErrorCode } from "../errors.ts";
import { ObjectUnavailable, objectCaller } from "../replication/failover.ts";
import { inspectAt, type JsonObject, type SessionAt } from "../session/index.ts";
import type { StoredSession } from "../session/record.ts";
import type { ForwardedSigner } from "../token/index.ts";

/**
 * The origin-facing document endpoint. An origin whose X-Edge-Session says
 * `data_omitted` (or `claims_omitted`) sends that same header back here and
 * gets the document it stands for: the session's data and claims at exactly
 * (sid, ver). The header is the credential. It is signed by the layer, bound to
 * one session and one version, and lives 120 s, so whoever holds it can read
 * nothing the header would not have carried had it fitted, and only while it
 * is fresh. A session that has moved on (another version, logout, rotation) is
 * refused: data at (sid, version) never changes, so what the origin reads here
 * is exactly what it would merge a patch into with Set-If-Version.
 */
export const DOCUMENT_PATH = "/.well-known/edge-session/document";

export interface SessionDocument {
  sid: string;
  ver: number;
  data: JsonObject;
  sub?: string;
  claims?: JsonObject;
}

function refused(code: ErrorCode, message: string, status: 401 | 409 | 410): EdgeError {
  return new EdgeError(code, message, { status, report: false, headers: { "cache-control": "no-store" } });
}

export async function sessionDocument(
  env: Env,
  cfg: EdgeConfig,
  signer: ForwardedSigner,
  request: Request,
): Promise<SessionDocument> {
  const token = request.headers.get("x-edge-session");
  if (!token) throw refused("ERR_DOCUMENT_UNAUTHORIZED", "send the X-Edge-Session header this request got", 401);
  const verified = await signer.verify(token);
  if (!verified.ok) throw refused("ERR_DOCUMENT_UNAUTHORIZED", `X-Edge-Session refused: ${verified.message}`, 401);
  const { sid, ver, oid, jur } = verified.claims;
  // A session that never stored anything has no object: its document is the empty one.
  if (ver === 0) return { sid, ver, data: {} };

  const call = objectCaller(env, cfg, []);
  const start: SessionAt = {
    sid,
    epoch: verified.claims.ep,
    region: verified.claims.reg,
    origin: oid,
    createdSec: 0,
    ...(jur ? { jurisdiction: jur } : {}),
  };
  let stored: StoredSession | undefined;
  try {
    ({ stored } = await inspectAt(start, call));
  } catch (e) {
    if (!(e instanceof ObjectUnavailable) && !(e instanceof EdgeError)) throw e;
    throw new EdgeError("ERR_SESSION_UNAVAILABLE", "the session could not be reached", {
      status: 503,
      cause: e,
      headers: { "retry-after": "1", "cache-control": "no-store" },
    });
  }
  if (stored === undefined || stored.status !== "active")
    throw refused("ERR_SESSION_ENDED", "the session has ended", 410);
  if (stored.version !== ver)
    throw refused("ERR_VERSION_CONFLICT", `the session is at version ${stored.version}, not ${ver}`, 409);
  return {
    sid,
    ver,
    data: stored.data,
    ...(stored.sub !== undefined ? { sub: stored.sub } : {}),
    ...(stored.claims !== undefined ? { claims: stored.claims } : {}),
  };
}
