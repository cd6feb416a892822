import type { OriginConfig } from "../config/index.ts";

/**
 * Smooth weighted round-robin (nginx's): deterministic, and spreads even a
 * handful of new sessions in proportion to the weights. The state is per
 * isolate; across isolates the spread is still proportional.
 */
export class WeightedRoundRobin {
  readonly #current = new Map<string, number>();

  next(origins: readonly OriginConfig[]): OriginConfig | undefined {
    let best: OriginConfig | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    let total = 0;
    for (const o of origins) {
      if (o.weight <= 0) continue;
      total += o.weight;
      const score = (this.#current.get(o.id) ?? 0) + o.weight;
      this.#current.set(o.id, score);
      if (score > bestScore) {
        best = o;
        bestScore = score;
      }
    }
    if (best) this.#current.set(best.id, bestScore - total);
    return best;
  }
}

/** An existing session keeps its origin while it exists in the pool. */
export function assignedOrigin(origins: readonly OriginConfig[], oid: string): OriginConfig | undefined {
  return origins.find((o) => o.id === oid);
}
