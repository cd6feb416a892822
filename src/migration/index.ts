export { type EvacuationLine, evacuateRegion } from "./evacuate.ts";
export { type Located, locateSession } from "./locate.ts";
export { evacuationTarget } from "./targets.ts";
