import type { IncomingMessage, ServerResponse } from "node:http";
import { isJsonObject } from "./encode.js";
import { EdgeSessionError } from "./errors.js";
import { EdgeSession, type HeaderSink, type SessionDocument } from "./session.js";
import {
  createVerifier,
  type EdgeSessionClaims,
  endpoints,
  type HeaderValue,
  type Verifier,
  type VerifierOptions,
} from "./verify.js";

export interface EdgeSessionOptions extends VerifierOptions {
  /** The layer's MAX_PATCH_BYTES (default 8192): larger changes are refused with ERR_PATCH_TOO_LARGE. */
  maxPatchBytes?: number;
  /** Milliseconds to wait for the layer's document endpoint (default 5000). */
  documentTimeoutMs?: number;
  /** Documents read from the layer, kept by (sid, version), which never change (default 64; 0 turns it off). */
  documentCacheEntries?: number;
  /** The fetch used for the document endpoint (default: the global one). */
  fetch?: typeof fetch;
}

/** Paths that need no session (health checks): a list, or a test. */
export type Exempt = readonly string[] | ((path: string) => boolean);

export interface MiddlewareOptions {
  /** Requests to these paths pass without a session (the layer's health probes carry none). */
  exempt?: Exempt;
}

/** The parts of Hono's Context the middleware uses. */
export interface HonoContextLike {
  req: { raw: Request; path: string; header(name: string): string | undefined };
  header(name: string, value?: string): void;
  res: Response;
  error?: unknown;
}

/** The parts of Fastify's request, reply and instance the plugin uses. */
export interface FastifyRequestLike {
  raw: IncomingMessage;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}
export interface FastifyReplyLike {
  sent: boolean;
  header(name: string, value: string): unknown;
  removeHeader(name: string): unknown;
  code(status: number): FastifyReplyLike;
  type(contentType: string): FastifyReplyLike;
  send(body: string): unknown;
}
export interface FastifyInstanceLike {
  decorateRequest(name: string, value: null): unknown;
  addHook(name: "onRequest", hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>): unknown;
}

const REQUIRED = () =>
  new EdgeSessionError(
    "ERR_EDGE_SESSION_REQUIRED",
    "no valid X-Edge-Session: this origin is reached through the edge-session layer only",
  );
const JSON_TYPE = "application/json; charset=utf-8";

const sessions = new WeakMap<object, EdgeSession>();

/**
 * The session a middleware opened for this request: pass the node:http or
 * Express request, a Fastify request, a Hono context (or its `c.req.raw`).
 * Throws ERR_EDGE_SESSION_REQUIRED when there is none (an exempt path).
 */
export function sessionOf(request: object): EdgeSession {
  const r = request as { raw?: object; req?: { raw?: object } };
  const found = sessions.get(request) ?? (r.raw && sessions.get(r.raw)) ?? (r.req?.raw && sessions.get(r.req.raw));
  if (!found) throw REQUIRED();
  return found;
}

function isExempt(exempt: Exempt | undefined, url: string): boolean {
  if (!exempt) return false;
  const path = url.split("?", 1)[0] ?? url;
  return typeof exempt === "function" ? exempt(path) : exempt.includes(path);
}

function nodeSink(res: ServerResponse): HeaderSink {
  return {
    set(name, value) {
      if (res.headersSent) throw new EdgeSessionError("ERR_HEADERS_SENT", `${name}: the response has already started`);
      res.setHeader(name, value);
    },
    remove(name) {
      if (!res.headersSent) res.removeHeader(name);
    },
  };
}

function sendError(res: ServerResponse, error: EdgeSessionError): void {
  res.writeHead(error.status, { "content-type": JSON_TYPE, "cache-control": "no-store" });
  res.end(JSON.stringify(error.toJSON()));
}

/**
 * One verifier (with its cached key set) and one document cache for the whole
 * origin, and the middleware of each framework built on them. Create it once.
 */
export function edgeSession(options: EdgeSessionOptions) {
  const verify: Verifier = createVerifier(options);
  const documentUrl = endpoints(options).document;
  const maxPatchBytes = options.maxPatchBytes ?? 8192;
  const timeoutMs = options.documentTimeoutMs ?? 5000;
  const cacheEntries = options.documentCacheEntries ?? 64;
  const doFetch = options.fetch ?? fetch;
  const cache = new Map<string, SessionDocument>();

  /** The whole document behind a header that left it out, from the layer, or the reason it is not to be had. */
  async function loadDocument(claims: EdgeSessionClaims, token: string): Promise<SessionDocument | EdgeSessionError> {
    const key = `${claims.sid}\u0000${claims.ver}`;
    const hit = cache.get(key);
    if (hit) return structuredClone(hit);
    let res: Response;
    try {
      res = await doFetch(documentUrl, {
        headers: { "x-edge-session": token, accept: "application/json" },
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "error",
      });
    } catch (e) {
      return new EdgeSessionError("ERR_DOCUMENT_UNAVAILABLE", `the layer's document endpoint: ${String(e)}`, {
        cause: e,
      });
    }
    const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (res.status === 409)
      return new EdgeSessionError("ERR_DOCUMENT_STALE", "the session changed since this request's header was signed");
    const doc = body as SessionDocument | undefined;
    if (!res.ok || !doc || doc.sid !== claims.sid || doc.ver !== claims.ver || !isJsonObject(doc.data)) {
      const why = isJsonObject(body?.error) ? String(body.error.code) : `HTTP ${res.status}`;
      return new EdgeSessionError("ERR_DOCUMENT_UNAVAILABLE", `the layer's document endpoint refused (${why})`);
    }
    if (cacheEntries > 0) {
      if (cache.size >= cacheEntries) cache.delete(cache.keys().next().value as string);
      cache.set(key, structuredClone(doc));
    }
    return doc;
  }

  /**
   * Verifies the header and, when it left the document (or the login claims)
   * out, reads them from the layer. Null without a valid header. The session
   * writes its changes through `sink`.
   */
  async function open(headerValue: HeaderValue, sink: HeaderSink): Promise<EdgeSession | null> {
    const claims = await verify(headerValue);
    if (!claims || typeof headerValue !== "string") return null;
    const document = claims.data_omitted || claims.claims_omitted ? await loadDocument(claims, headerValue) : undefined;
    return new EdgeSession(claims, headerValue, sink, { maxPatchBytes }, document);
  }

  /** node:http: the request's session, or null after answering 401 itself. */
  async function node(req: IncomingMessage, res: ServerResponse): Promise<EdgeSession | null> {
    const session = await open(req.headers["x-edge-session"], nodeSink(res));
    if (!session) {
      sendError(res, REQUIRED());
      return null;
    }
    sessions.set(req, session);
    return session;
  }

  return {
    verify,
    open,
    node,

    /**
     * A whole node:http request listener: 401 without a valid header, the
     * typed status and JSON body for an EdgeSessionError the handler throws.
     */
    handler(
      fn: (req: IncomingMessage, res: ServerResponse, session: EdgeSession) => unknown,
      opts: MiddlewareOptions & { onExempt?: (req: IncomingMessage, res: ServerResponse) => unknown } = {},
    ) {
      return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
        try {
          if (isExempt(opts.exempt, req.url ?? "/")) {
            if (opts.onExempt) await opts.onExempt(req, res);
            else res.writeHead(200, { "content-type": JSON_TYPE }).end('{"ok":true}');
            return;
          }
          const session = await node(req, res);
          if (session) await fn(req, res, session);
        } catch (e) {
          if (res.headersSent) res.destroy(e as Error);
          else if (e instanceof EdgeSessionError) sendError(res, e);
          else {
            res.writeHead(500, { "content-type": JSON_TYPE });
            res.end(JSON.stringify({ error: { code: "ERR_INTERNAL", message: "internal error" } }));
          }
        }
      };
    },

    /** Express (4 and 5): sets `req.edgeSession`; 401 without a valid header; EdgeSessionErrors carry `status`. */
    express(opts: MiddlewareOptions = {}) {
      return (
        req: IncomingMessage & { edgeSession?: EdgeSession },
        res: ServerResponse,
        next: (e?: unknown) => void,
      ) => {
        if (isExempt(opts.exempt, req.url ?? "/")) return next();
        node(req, res).then((session) => {
          if (!session) return;
          req.edgeSession = session;
          next();
        }, next);
      };
    },

    /**
     * Express error middleware, after the routes: answers an EdgeSessionError with its status and
     * `{"error":{"code","message"}}`, and passes anything else on.
     */
    expressErrors() {
      return (err: unknown, _req: IncomingMessage, res: ServerResponse, next: (e?: unknown) => void): void => {
        if (err instanceof EdgeSessionError && !res.headersSent) sendError(res, err);
        else next(err);
      };
    },

    /** Hono: `sessionOf(c)` (and `c.get("edgeSession")`); 401 without a valid header; EdgeSessionErrors answered as JSON. */
    hono(opts: MiddlewareOptions = {}) {
      return async (c: HonoContextLike, next: () => Promise<void>): Promise<Response | undefined> => {
        if (isExempt(opts.exempt, c.req.path)) {
          await next();
          return undefined;
        }
        const session = await open(c.req.header("x-edge-session"), {
          set: (name, value) => c.header(name, value),
          remove: (name) => c.header(name, undefined),
        });
        if (!session)
          return new Response(JSON.stringify(REQUIRED().toJSON()), {
            status: 401,
            headers: { "content-type": JSON_TYPE },
          });
        sessions.set(c.req.raw, session);
        (c as unknown as { set?: (k: string, v: unknown) => void }).set?.("edgeSession", session);
        await next();
        if (c.error instanceof EdgeSessionError)
          c.res = new Response(JSON.stringify(c.error.toJSON()), {
            status: c.error.status,
            headers: { "content-type": JSON_TYPE },
          });
        return undefined;
      };
    },

    /** Fastify (4 and 5): `app.register(edge.fastify())`; sets `request.edgeSession`; 401 without a valid header. */
    fastify(opts: MiddlewareOptions = {}) {
      const plugin = (instance: FastifyInstanceLike, _opts: unknown, done: (err?: Error) => void) => {
        instance.decorateRequest("edgeSession", null);
        instance.addHook("onRequest", async (request, reply) => {
          if (isExempt(opts.exempt, request.url)) return;
          const session = await open(request.headers["x-edge-session"], {
            set(name, value) {
              if (reply.sent) throw new EdgeSessionError("ERR_HEADERS_SENT", `${name}: the reply has been sent`);
              reply.header(name, value);
            },
            remove: (name) => reply.removeHeader(name),
          });
          if (!session) {
            const error = REQUIRED();
            await reply.code(error.status).type(JSON_TYPE).send(JSON.stringify(error.toJSON()));
            return reply;
          }
          sessions.set(request.raw, session);
          (request as FastifyRequestLike & { edgeSession?: EdgeSession }).edgeSession = session;
          return undefined;
        });
        done();
      };
      // What fastify-plugin does: hooks registered here apply to the whole application, not a child context.
      Object.assign(plugin, {
        [Symbol.for("skip-override")]: true,
        [Symbol.for("fastify.display-name")]: "edge-session-origin",
      });
      return plugin;
    },
  };
}

export type EdgeSessionOrigin = ReturnType<typeof edgeSession>;
