/**
 * How long the process's main thread keeps timers waiting: `perf_hooks.monitorEventLoopDelay`,
 * read as milliseconds. `sinceStart` covers the process's life; `window` since the last call
 * of `window` (the bench and the AWS writer's metrics read it once per interval).
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface DelaySummary {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function summary(h: IntervalHistogram): DelaySummary {
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return h.count === 0
    ? { p50Ms: 0, p99Ms: 0, maxMs: 0 }
    : { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
}

export class EventLoopDelay {
  private readonly total = monitorEventLoopDelay({ resolution: 10 });
  private readonly recent = monitorEventLoopDelay({ resolution: 10 });

  constructor() {
    this.total.enable();
    this.recent.enable();
  }

  sinceStart(): DelaySummary {
    return summary(this.total);
  }

  /** Since the previous call (then starts a new window). */
  window(): DelaySummary {
    const s = summary(this.recent);
    this.recent.reset();
    return s;
  }

  stop(): void {
    this.total.disable();
    this.recent.disable();
  }
}
