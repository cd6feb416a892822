export { assignedOrigin, WeightedRoundRobin } from "./choose.ts";
export {
  currentPoolView,
  forgetObservedRegions,
  observeRegionDown,
  poolStub,
  poolView,
  refreshPoolView,
  regionsDown,
  reportCounts,
  reportEnded,
} from "./client.ts";
export { OutlierDetector, type OutlierSettings } from "./outlier.ts";
export {
  isRetryable,
  leaveReason,
  mayReturnHome,
  RecentAssignments,
  runtimeOf,
  steer,
  takesSessions,
} from "./policy.ts";
export { PoolObject, type PoolRpc } from "./pool-object.ts";
export { type ClientLocation, locationHintFor } from "./region.ts";
export type {
  DrainState,
  Fault,
  MoveReason,
  OriginConnections,
  OriginRuntime,
  PoolEvent,
  PoolView,
} from "./types.ts";
