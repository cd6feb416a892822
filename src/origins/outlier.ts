/**
 * Passive outlier detection from real traffic, per isolate (as Envoy does per
 * proxy): N consecutive connection failures or 5xx answers from an origin eject
 * it for a back-off that doubles with each ejection, never ejecting more than a
 * share of the pool. Ejections are also reported to the pool object so that
 * other isolates learn of them on their next view refresh.
 */
export interface OutlierSettings {
  consecutiveFailures: number;
  baseEjectionSeconds: number;
  maxEjectionPercent: number;
}

const MAX_BACKOFF_FACTOR = 16;

export class OutlierDetector {
  readonly #consecutive = new Map<string, number>();
  readonly #ejectedUntil = new Map<string, number>();
  readonly #ejections = new Map<string, number>();

  get ejections(): ReadonlyMap<string, number> {
    return this.#ejectedUntil;
  }

  success(oid: string): void {
    this.#consecutive.set(oid, 0);
  }

  /** Returns the ejection deadline when this failure ejects the origin. */
  failure(oid: string, now: number, s: OutlierSettings, poolSize: number, alreadyEjected: number): number | undefined {
    const n = (this.#consecutive.get(oid) ?? 0) + 1;
    this.#consecutive.set(oid, n);
    if (n < s.consecutiveFailures || (this.#ejectedUntil.get(oid) ?? 0) > now) return undefined;
    const allowed = s.maxEjectionPercent <= 0 ? 0 : Math.max(1, Math.floor((poolSize * s.maxEjectionPercent) / 100));
    if (alreadyEjected >= allowed) return undefined;
    const count = (this.#ejections.get(oid) ?? 0) + 1;
    this.#ejections.set(oid, count);
    const until = now + s.baseEjectionSeconds * 1000 * Math.min(2 ** (count - 1), MAX_BACKOFF_FACTOR);
    this.#ejectedUntil.set(oid, until);
    this.#consecutive.set(oid, 0);
    return until;
  }

  ejectedUntil(oid: string): number | undefined {
    return this.#ejectedUntil.get(oid);
  }
}
