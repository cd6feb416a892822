export { assignedOrigin, WeightedRoundRobin } from "./choose.ts";
export { type ClientLocation, locationHintFor } from "./region.ts";
