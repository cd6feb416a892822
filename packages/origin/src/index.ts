/**
 * edge-session-origin: the origin's side of edge-session.
 *
 * Verifies `X-Edge-Session` against the layer's JWKS, reads the session
 * document (from the layer when the header had to leave it out), and writes
 * changes back as the response headers the layer applies. Middleware for
 * node:http, Express, Hono and Fastify; no dependency but jose.
 *
 * @module
 */
export { applyMergePatch, diffMergePatch, encodeHeaderJson, type Json, type JsonObject } from "./encode.js";
export { EdgeSessionError, type EdgeSessionErrorCode } from "./errors.js";
export {
  type EdgeSessionOptions,
  type EdgeSessionOrigin,
  type Exempt,
  edgeSession,
  type FastifyInstanceLike,
  type FastifyReplyLike,
  type FastifyRequestLike,
  type HonoContextLike,
  type MiddlewareOptions,
  sessionOf,
} from "./origin.js";
export { isHealthProbe, PROBE_HEADER, PROBE_USER_AGENT_PREFIX } from "./probe.js";
export {
  EdgeSession,
  type HeaderSink,
  LOGIN_HEADER,
  LOGOUT_HEADER,
  loginHeaders,
  logoutHeaders,
  SET_HEADER,
  SET_IF_VERSION_HEADER,
  type SessionDocument,
  type SetOptions,
  setSessionHeaders,
} from "./session.js";
export {
  ALGORITHMS,
  createVerifier,
  EDGE_SESSION_TYP,
  type EdgeSessionClaims,
  type HeaderValue,
  type Verifier,
  type VerifierOptions,
} from "./verify.js";

declare global {
  namespace Express {
    interface Request {
      /** Set by `edgeSession(...).express()`. */
      edgeSession: import("./session.js").EdgeSession;
    }
  }
}
