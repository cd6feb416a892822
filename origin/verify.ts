/**
 * The helpers origins used before the `edge-session-origin` package existed,
 * under their old names, so existing imports keep working. There is one
 * implementation: packages/origin. New code imports "edge-session-origin".
 *
 * @deprecated Import from "edge-session-origin".
 * @module
 */
export {
  createVerifier as createEdgeSessionVerifier,
  EDGE_SESSION_TYP,
  type EdgeSessionClaims as EdgeSession,
  type HeaderValue,
  loginHeaders as login,
  logoutHeaders as logout,
  setSessionHeaders as setSession,
  type Verifier as EdgeSessionVerifier,
  type VerifierOptions as EdgeSessionVerifierOptions,
} from "edge-session-origin";
