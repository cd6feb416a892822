import type { LocationHint } from "../config/index.ts";

/** The parts of `request.cf` we read; all optional because local requests carry none. */
export interface ClientLocation {
  continent?: string;
  country?: string;
  longitude?: string | number;
}

const MIDDLE_EAST = new Set(["AE", "BH", "IL", "IQ", "IR", "JO", "KW", "LB", "OM", "PS", "QA", "SA", "SY", "YE"]);
const EASTERN_EUROPE = new Set([
  "BG",
  "BY",
  "CZ",
  "EE",
  "GR",
  "HU",
  "LT",
  "LV",
  "MD",
  "PL",
  "RO",
  "RU",
  "SK",
  "UA",
  "RS",
  "BA",
  "ME",
  "MK",
  "AL",
  "XK",
  "CY",
  "TR",
]);

/**
 * Maps a client's location to the Durable Object location hint nearest it.
 * North America splits at 100°W (wnam / enam), Europe by country (eeur / weur).
 */
export function locationHintFor(loc: ClientLocation | undefined, fallback: LocationHint): LocationHint {
  if (!loc?.continent) return fallback;
  const country = (loc.country ?? "").toUpperCase();
  switch (loc.continent.toUpperCase()) {
    case "NA": {
      const lon = Number(loc.longitude);
      return Number.isFinite(lon) && lon < -100 ? "wnam" : "enam";
    }
    case "SA":
      return "sam";
    case "EU":
      return EASTERN_EUROPE.has(country) ? "eeur" : "weur";
    case "AF":
      return "afr";
    case "OC":
      return "oc";
    case "AS":
      return MIDDLE_EAST.has(country) ? "me" : "apac";
    default:
      return fallback;
  }
}
