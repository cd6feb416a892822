import { readCacheFor } from "../cache/index.ts";
import type { EdgeConfig, OriginConfig } from "../config/index.ts";
import { EdgeError } from "../errors.ts";
import { log } from "../log.ts";
import { explainRepin, timed } from "../observe/index.ts";
import {
  isRetryable,
  leaveReason,
  type MoveReason,
  mayReturnHome,
  OutlierDetector,
  type PoolView,
  poolStub,
  RecentAssignments,
  reportCounts,
  steer,
  WeightedRoundRobin,
} from "../origins/index.ts";
import { ObjectUnavailable } from "../replication/failover.ts";
import { commitChange, type LiveSession } from "../session/index.ts";
import type { RequestScope } from "./steps.ts";

type WaitUntil = (p: Promise<unknown>) => void;

/** Where this request goes: an origin that keeps the session, or only serves this request (the fallback). */
export type Placement = { origin: OriginConfig; fallback: boolean };

/**
 * Per-isolate routing state (round-robin position, recent assignments for
 * bounded load, passive outlier counts) and the decisions that use it.
 */
export class Router {
  readonly #rr = new WeightedRoundRobin();
  readonly #recent = new RecentAssignments();
  readonly outliers = new OutlierDetector();

  constructor(readonly cfg: EdgeConfig) {}

  #find(oid: string | undefined): OriginConfig | undefined {
    return this.cfg.origins.find((o) => o.id === oid);
  }

  /** An origin for a new or moving session, or undefined when none can take it. */
  pick(view: PoolView | undefined, region: string, exclude?: ReadonlySet<string>): OriginConfig | undefined {
    return steer(
      {
        origins: this.cfg.origins,
        view,
        now: Date.now(),
        region,
        localEjections: this.outliers.ejections,
        boundedLoadFactor: this.cfg.pool.boundedLoadFactor,
        ...(exclude ? { exclude } : {}),
      },
      this.#rr,
      this.#recent,
    );
  }

  /** Whether the session stays where it is, and if not, where it goes and why. */
  decide(
    s: LiveSession,
    view: PoolView | undefined,
    region: string,
  ): { stay: OriginConfig } | { move: MoveReason; to: OriginConfig | undefined } {
    const now = Date.now();
    const reason = leaveReason(this.cfg.origins, view, s.origin, now, this.outliers.ejectedUntil(s.origin));
    const current = this.#find(s.origin);
    if (!reason && current) {
      const home = s.home !== undefined && s.home !== s.origin ? this.#find(s.home) : undefined;
      const afterMs = this.cfg.pool.returnHomeAfter * 1000;
      if (
        home &&
        this.cfg.pool.failover === "temporary" &&
        mayReturnHome(home, view, now, afterMs, this.outliers.ejectedUntil(home.id))
      )
        return { move: "return_home", to: home };
      return { stay: current };
    }
    return { move: reason ?? "removed", to: this.pick(view, region, new Set([s.origin])) };
  }

  /** Counts a response; on a failure that ejects the origin, tells the pool. */
  observe(env: Env, oid: string, ok: boolean, view: PoolView | undefined, waitUntil: WaitUntil): void {
    if (ok) {
      this.outliers.success(oid);
      return;
    }
    const now = Date.now();
    const ejectedNow = this.cfg.origins.filter(
      (o) => (this.outliers.ejectedUntil(o.id) ?? 0) > now || (view?.origins[o.id]?.ejectedUntil ?? 0) > now,
    ).length;
    const until = this.outliers.failure(oid, now, this.cfg.pool.outlier, this.cfg.origins.length, ejectedNow);
    if (until === undefined) return;
    log("warn", "origin_ejected", { oid, until: new Date(until).toISOString(), source: "passive" });
    waitUntil(
      poolStub(env, this.cfg)
        .reportEjection(oid, until)
        .catch(() => {}),
    );
  }
}

/**
 * Re-pins a session to another origin, keeping its data and login. Stored
 * sessions (and any that must remember a home origin) are re-pinned in their
 * object; the new token carries the new origin either way. The forwarded header
 * of this request tells the new origin where the session came from and why.
 */
export async function repin(
  x: RequestScope,
  s: LiveSession,
  to: OriginConfig,
  reason: MoveReason,
): Promise<LiveSession> {
  const { env, cfg, waitUntil, call } = x;
  const home = cfg.pool.failover === "temporary" && reason !== "return_home" ? (s.home ?? s.origin) : undefined;
  let next: LiveSession = { ...s, origin: to.id, moved: { from: s.origin, reason } };
  if (home !== undefined) next.home = home;
  else delete next.home;
  if (s.version > 0 || home !== undefined || s.home !== undefined) {
    const askedAt = Date.now();
    try {
      const outcome = await timed(x.trace, "session", () =>
        commitChange(cfg, s, { assign: { oid: to.id, home: home ?? null, reason } }, call),
      );
      // The isolate that re-pins sees the new origin at once (the others within READ_CACHE_SECONDS).
      readCacheFor(cfg).afterCommit(s, outcome, askedAt);
      if (outcome.kind === "updated") {
        next = { ...outcome.session, moved: { from: s.origin, reason } };
        waitUntil(reportCounts(env, cfg.pool.name, outcome.counts));
      }
    } catch (e) {
      if (!(e instanceof ObjectUnavailable) && !(e instanceof EdgeError)) throw e;
      readCacheFor(cfg).evict(s.sid);
      // This request goes to the new origin all the same (its token says so); the object learns of the
      // move on a later request. Refusing it would fail a request that the new origin can serve.
      log("warn", "session_repin_not_stored", { sid: s.sid, to: to.id, reason, message: e.message });
    }
  }
  // The pool keeps recent re-pins for the operator's timeline.
  waitUntil(
    poolStub(env, cfg)
      .recordEvent("session_repinned", s.origin, `${s.sid} → ${to.id} (${reason})`)
      .catch(() => {}),
  );
  explainRepin(env, x.trace, s, to.id, reason);
  log("info", "session_repinned", { sid: s.sid, from: s.origin, to: to.id, reason, policy: cfg.pool.failover });
  return next;
}

/**
 * Reads at most `max` bytes. If the body is larger, what was read is put back
 * in front of the rest, so the body still streams through whole and unbuffered.
 */
async function readUpTo(
  stream: ReadableStream<Uint8Array>,
  max: number,
): Promise<ArrayBuffer | ReadableStream<Uint8Array>> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > max) {
      const head = chunks;
      return new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          const next = head.shift();
          if (next) return controller.enqueue(next);
          const { done: end, value: more } = await reader.read();
          if (end) controller.close();
          else controller.enqueue(more);
        },
        cancel: (reason) => reader.cancel(reason),
      });
    }
  }
  const whole = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    whole.set(c, at);
    at += c.byteLength;
  }
  return whole.buffer;
}

/** The request body, buffered (up to RETRY_BODY_MAX_BYTES) only when a retry may need to send it again. */
export async function retryableBody(
  request: Request,
  cfg: EdgeConfig,
): Promise<{ body: ReadableStream | ArrayBuffer | null; retryable: boolean }> {
  const retryable = isRetryable(request.method, request.headers) && cfg.pool.maxRetries > 0;
  if (request.body === null || request.method === "GET" || request.method === "HEAD") return { body: null, retryable };
  if (!retryable) return { body: request.body, retryable };
  const length = Number(request.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(length) && length > cfg.pool.retryBodyMaxBytes) return { body: request.body, retryable: false };
  const body = await readUpTo(request.body, cfg.pool.retryBodyMaxBytes);
  return { body, retryable: body instanceof ArrayBuffer };
}

export function noOriginError(cause?: EdgeError): EdgeError {
  const why = cause ? ` (last: ${cause.message})` : "";
  return new EdgeError("ERR_NO_ORIGIN", `no origin is available to serve this session; try again shortly${why}`, {
    status: 503,
    headers: { "retry-after": "5" },
    ...(cause ? { cause } : {}),
  });
}
