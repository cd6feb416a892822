import { applyMergePatch, diffMergePatch, encodeHeaderJson, isJsonObject, type JsonObject } from "./encode.js";
import { EdgeSessionError } from "./errors.js";
import type { EdgeSessionClaims } from "./verify.js";

export const SET_HEADER = "X-Edge-Session-Set";
export const SET_IF_VERSION_HEADER = "X-Edge-Session-Set-If-Version";
export const LOGIN_HEADER = "X-Edge-Session-Login";
export const LOGOUT_HEADER = "X-Edge-Session-Logout";

/** Where a session writes its response headers: one per framework. */
export interface HeaderSink {
  set(name: string, value: string): void;
  remove(name: string): void;
}

/** The whole document behind a header, as the layer's document endpoint gives it. */
export interface SessionDocument {
  sid: string;
  ver: number;
  data: JsonObject;
  sub?: string;
  claims?: JsonObject;
}

export interface SessionLimits {
  /** The layer's MAX_PATCH_BYTES: a larger Set or Login is refused here, not silently by the layer. */
  maxPatchBytes: number;
}

export interface SetOptions {
  /**
   * Compare-and-set (the default): the layer applies this response's changes
   * (all of them, a login included) only if the session is still at the
   * version this request saw. `false` writes unconditionally, for a patch that
   * is right whatever the document holds now (e.g. `{"lastSeen": …}`); one
   * conditional set() makes the whole response conditional.
   */
  ifVersion?: boolean;
}

/**
 * One request's view of its session, and the changes the response will carry.
 * Reading is synchronous; every change is written to the response headers at
 * once (and again, combined, by the next change), so whatever sends the
 * response sends them.
 */
export class EdgeSession {
  /** The verified claims of this request's X-Edge-Session. */
  readonly claimsOfHeader: EdgeSessionClaims;
  /** The raw header: the credential for the layer's document endpoint. Never log it. */
  readonly token: string;
  readonly #sink: HeaderSink;
  readonly #limits: SessionLimits;
  /** The document as the layer holds it at `version`, when known. */
  readonly #seen: JsonObject | undefined;
  readonly #unavailable: EdgeSessionError | undefined;
  #data: JsonObject | undefined;
  #sub: string | undefined;
  #claims: JsonObject | undefined;
  #login: { sub: string; claims?: JsonObject } | undefined;
  /** Whether this response's changes carry Set-If-Version: yes as soon as one set() asks for it (the default). */
  #conditional = false;
  #loggedOut = false;

  constructor(
    claims: EdgeSessionClaims,
    token: string,
    sink: HeaderSink,
    limits: SessionLimits,
    document: SessionDocument | EdgeSessionError | undefined,
  ) {
    this.claimsOfHeader = claims;
    this.token = token;
    this.#sink = sink;
    this.#limits = limits;
    const doc = document instanceof EdgeSessionError ? undefined : document;
    this.#seen = claims.data ?? doc?.data;
    this.#data = this.#seen;
    this.#sub = claims.sub;
    this.#claims = claims.claims ?? doc?.claims;
    this.#unavailable =
      this.#seen === undefined
        ? document instanceof EdgeSessionError
          ? document
          : new EdgeSessionError("ERR_DOCUMENT_UNAVAILABLE", "the session document was not forwarded and not loaded")
        : undefined;
  }

  /** Session id (changes on login). */
  get sid(): string {
    return this.claimsOfHeader.sid;
  }
  /** The version of the session this request saw; changes are made against it. */
  get version(): number {
    return this.claimsOfHeader.ver;
  }
  /** The logged-in user, as of this request (or as login() set it in this response). */
  get sub(): string | undefined {
    return this.#loggedOut ? undefined : this.#sub;
  }
  /** Login claims. Throws ERR_DOCUMENT_UNAVAILABLE when the header left them out and the layer could not give them. */
  get claims(): Readonly<JsonObject> | undefined {
    if (this.claimsOfHeader.claims_omitted && this.#claims === undefined && this.#unavailable) throw this.#unavailable;
    return this.#loggedOut ? undefined : this.#claims;
  }
  /** False when the document could not be read (then `data` and `set` throw). */
  get dataAvailable(): boolean {
    return this.#data !== undefined;
  }
  /**
   * The session document, with this response's set() calls applied. Throws
   * ERR_DOCUMENT_UNAVAILABLE (or ERR_DOCUMENT_STALE) when the header left it
   * out and the layer's document endpoint could not give it.
   */
  get data(): Readonly<JsonObject> {
    if (this.#data === undefined) throw this.#unavailable;
    return this.#data;
  }

  /**
   * Changes the document with an RFC 7396 merge patch (null deletes a key,
   * arrays are replaced whole). By default conditional on `version`. Refuses
   * (ERR_DOCUMENT_UNAVAILABLE) when the document could not be seen: a patch
   * built without it would write over data nobody read.
   */
  set(patch: Record<string, unknown>, options: SetOptions = {}): void {
    if (this.#loggedOut) throw new EdgeSessionError("ERR_LOGGED_OUT", "set() after logout()");
    if (this.#data === undefined || this.#seen === undefined) throw this.#unavailable;
    if (!isJsonObject(patch)) throw new EdgeSessionError("ERR_PATCH_INVALID", "a merge patch is a JSON object");
    let plain: JsonObject;
    try {
      plain = JSON.parse(JSON.stringify(patch)) as JsonObject;
    } catch (e) {
      throw new EdgeSessionError("ERR_PATCH_INVALID", `not JSON: ${(e as Error).message}`, { cause: e });
    }
    const next = applyMergePatch(this.#data, plain) as JsonObject;
    const value = encodeHeaderJson(diffMergePatch(this.#seen, next));
    this.#checkSize(SET_HEADER, value);
    this.#data = next;
    if (options.ifVersion !== false) this.#conditional = true;
    this.#sink.set(SET_HEADER, value);
    this.#writeCondition();
  }

  /**
   * Logs the session in as `sub`: the layer rotates the session id (and the
   * client's token) and keeps the data. `claims` travel in every later
   * X-Edge-Session, so keep them small (the layer's LOGIN_CLAIMS_MAX_BYTES).
   */
  login(sub: string, claims?: Record<string, unknown>): void {
    if (this.#loggedOut) throw new EdgeSessionError("ERR_LOGGED_OUT", "login() after logout()");
    if (typeof sub !== "string" || sub.length < 1 || sub.length > 256)
      throw new EdgeSessionError("ERR_PATCH_INVALID", "sub is 1-256 characters");
    if (claims !== undefined && !isJsonObject(claims))
      throw new EdgeSessionError("ERR_PATCH_INVALID", "claims are a JSON object");
    const login = claims === undefined ? { sub } : { sub, claims: JSON.parse(JSON.stringify(claims)) as JsonObject };
    const value = encodeHeaderJson(login);
    this.#checkSize(LOGIN_HEADER, value);
    this.#login = login;
    this.#sub = sub;
    if (login.claims) this.#claims = login.claims;
    this.#sink.set(LOGIN_HEADER, value);
    this.#writeCondition();
  }

  /** Ends the session on the layer (its data is deleted) and clears the client's cookie or token. Always applied. */
  logout(): void {
    this.#loggedOut = true;
    for (const name of [SET_HEADER, SET_IF_VERSION_HEADER, LOGIN_HEADER]) this.#sink.remove(name);
    this.#sink.set(LOGOUT_HEADER, "1");
  }

  get loggedOut(): boolean {
    return this.#loggedOut;
  }

  /** The response headers this session has asked for so far. */
  headers(): Record<string, string> {
    if (this.#loggedOut) return { [LOGOUT_HEADER]: "1" };
    const out: Record<string, string> = {};
    if (this.#seen && this.#data && this.#data !== this.#seen)
      out[SET_HEADER] = encodeHeaderJson(diffMergePatch(this.#seen, this.#data));
    if (this.#login) out[LOGIN_HEADER] = encodeHeaderJson(this.#login);
    if (this.#conditional && (out[SET_HEADER] || out[LOGIN_HEADER])) out[SET_IF_VERSION_HEADER] = String(this.version);
    return out;
  }

  /** What a JSON view of the session shows (no token). */
  toJSON(): Record<string, unknown> {
    const { iss: _iss, aud: _aud, ...rest } = this.claimsOfHeader;
    return { ...rest, ...(this.#data ? { data: this.#data } : {}), ...(this.#claims ? { claims: this.#claims } : {}) };
  }

  #writeCondition(): void {
    if (this.#conditional) this.#sink.set(SET_IF_VERSION_HEADER, String(this.version));
    else this.#sink.remove(SET_IF_VERSION_HEADER);
  }

  #checkSize(name: string, value: string): void {
    if (value.length > this.#limits.maxPatchBytes)
      throw new EdgeSessionError(
        "ERR_PATCH_TOO_LARGE",
        `${name} would be ${value.length} bytes; the layer accepts ${this.#limits.maxPatchBytes} (MAX_PATCH_BYTES)`,
      );
  }
}

/**
 * Low level, for a framework without middleware here: the response headers for
 * one merge patch, optionally conditional on a version. Prefer the session
 * object, which conditions on the version it read and refuses to write blind.
 */
export function setSessionHeaders(patch: Record<string, unknown>, options: { ifVersion?: number } = {}) {
  const headers: Record<string, string> = { [SET_HEADER]: encodeHeaderJson(patch) };
  if (options.ifVersion !== undefined) headers[SET_IF_VERSION_HEADER] = String(options.ifVersion);
  return headers;
}

/** Low level: the response header that logs the session in as `sub`. */
export function loginHeaders(sub: string, claims?: Record<string, unknown>): Record<string, string> {
  return { [LOGIN_HEADER]: encodeHeaderJson(claims === undefined ? { sub } : { sub, claims }) };
}

/** Low level: the response header that ends the session. */
export function logoutHeaders(): Record<string, string> {
  return { [LOGOUT_HEADER]: "1" };
}
