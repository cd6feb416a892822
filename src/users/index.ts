export {
  afterCommit,
  endAllSessions,
  type Listed,
  liveSessions,
  principalStub,
  type Revoked,
  type UsersScope,
} from "./control.ts";
export type { PrincipalEntry } from "./policy.ts";
export { PrincipalObject, type PrincipalRpc } from "./principal-object.ts";
