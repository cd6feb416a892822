export {
  type CommitOutcome,
  commitChange,
  type LiveSession,
  type ObjectCall,
  resumeSession,
  sessionMeta,
  sessionStub,
  startSession,
} from "./client.ts";
export { applyMergePatch, isJsonObject, type Json, type JsonObject, jsonDepth } from "./merge-patch.ts";
export { SessionObject } from "./object.ts";
export type {
  EndReason,
  LoginDirective,
  ReadResult,
  SessionChange,
  SessionMeta,
  SessionRecord,
  SessionRpc,
  WriteResult,
} from "./record.ts";
