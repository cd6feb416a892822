import { JURISDICTION_REGIONS } from "../session/migration.ts";

/** Where an evacuated region's sessions go by default: the nearest other location hint. */
const NEIGHBOUR: Record<string, string> = {
  wnam: "enam",
  enam: "wnam",
  sam: "enam",
  weur: "eeur",
  eeur: "weur",
  apac: "oc",
  oc: "apac",
  afr: "weur",
  me: "eeur",
};

export function evacuationTarget(
  from: string,
  requested: string | undefined,
  jur: string | undefined,
): string | undefined {
  const allowed = jur ? (JURISDICTION_REGIONS[jur] ?? []) : undefined;
  const candidates = [requested, NEIGHBOUR[from], ...(allowed ?? [])].filter((r): r is string => !!r && r !== from);
  return candidates.find((r) => !allowed || allowed.includes(r));
}
