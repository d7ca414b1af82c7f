/**
 * How busy this thread's event loop has been: the share of time since the previous reading spent
 * running code rather than waiting for events. Background work (compaction) yields to writes
 * when it is high. Under `--cpu-prof` the reading is near 1 even when idle (measured 0.97 here:
 * the profiler's sampling wakes the loop), so profiled runs defer merges to their hard limit.
 */
import { type EventLoopUtilization, performance } from 'node:perf_hooks';

export class LoadGauge {
  private last: EventLoopUtilization = performance.eventLoopUtilization();

  /** Utilization (0…1) since the previous call (or since the gauge was made). */
  read(): number {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, this.last).utilization;
    this.last = now;
    return u;
  }
}
