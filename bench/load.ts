/**
 * The load generator: autocannon's programmatic API, a fixed number of
 * keep-alive connections, each sending its next request as soon as the last
 * one is answered (closed loop, no pipelining).
 *
 * Latencies are taken from autocannon's per-response event (sub-millisecond
 * floats) rather than its histogram, which rounds to whole milliseconds.
 */
import autocannon from "autocannon";
import { percentile } from "./figures/stats.ts";

export interface LoadSpec {
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  headers?: Record<string, string>;
  /** Headers for each connection, handed out in order (connection i gets entry i mod length). */
  perConnectionHeaders?: Record<string, string>[];
  /** Headers for each request, in turn across all connections (many sessions over few connections). */
  perRequestHeaders?: Record<string, string>[];
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Microseconds of CPU the serving workerd process spent per request (bench/cpu.ts), when it could be read. */
  cpuUs?: number;
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    let non2xx = 0;
    let next = 0;
    const per = spec.perConnectionHeaders;
    const each = spec.perRequestHeaders;
    let turn = 0;
    const started = performance.now();
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: spec.duration,
        pipelining: 1,
        headers: spec.headers ?? {},
        ...(per?.length
          ? { setupClient: (client) => client.setHeaders({ ...spec.headers, ...per[next++ % per.length] }) }
          : {}),
        ...(each?.length
          ? {
              // Each answer switches the connection to the next session in turn (autocannon sends the
              // next request with the headers set last).
              setupClient: (client) => {
                const next = () => client.setHeaders({ ...spec.headers, ...each[turn++ % each.length] });
                next();
                client.on("response", next);
              },
            }
          : {}),
      },
      (err, result) => {
        if (err) return reject(err);
        const seconds = (performance.now() - started) / 1000;
        resolve({
          requests: latencies.length,
          seconds,
          rps: latencies.length / seconds,
          p50: percentile(latencies, 0.5),
          p90: percentile(latencies, 0.9),
          p99: percentile(latencies, 0.99),
          non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
        });
      },
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime);
      if (statusCode < 200 || statusCode > 299) non2xx++;
    });
  });
}
