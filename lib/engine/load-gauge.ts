/**
 * How busy this thread's event loop has been: the share of time since the previous reading spent
 * running code rather than waiting for events. Background work (compaction) yields to writes
 * when it is high.
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
