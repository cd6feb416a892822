export {
  type CommitOutcome,
  commitChange,
  following,
  inspectAt,
  type LiveSession,
  type ObjectCall,
  type Resumed,
  ROTATION_GRACE_MS,
  readAt,
  resumeSession,
  type SessionAt,
  sessionMeta,
  sessionStub,
  startSession,
} from "./client.ts";
export { applyMergePatch, isJsonObject, type Json, type JsonObject, jsonDepth } from "./merge-patch.ts";
export { SessionObject } from "./object.ts";
export type {
  CountDelta,
  EndReason,
  LoginDirective,
  ReadResult,
  SessionChange,
  SessionMeta,
  SessionRecord,
  SessionRpc,
  WriteResult,
} from "./record.ts";
