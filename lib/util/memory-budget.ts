/**
 * The writer's memory budget: buffered rows, frozen slices waiting to flush, index runs in
 * memory and compactions in flight, across all tables. Past it, writes are refused with 503
 * `backpressure` (and a Retry-After) until the writer has flushed enough; sources stop pulling.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Writes are refused while the writer holds more than its budget. */
export class BackpressureError extends Error {
  readonly code = 'backpressure';
  constructor(
    readonly usedBytes: number,
    readonly budgetBytes: number,
  ) {
    super(
      `the writer holds ${Math.round(usedBytes / 2 ** 20)} MiB of its ${Math.round(budgetBytes / 2 ** 20)} MiB memory budget; it is flushing, retry after the Retry-After seconds`,
    );
  }
}

/** The memory this process may use: the cgroup limit (a container's) when set, else the machine's. */
export function memoryLimitBytes(): number {
  const total = os.totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = Number(readFileSync(file, 'utf8').trim());
      if (Number.isFinite(v) && v > 0 && v < total) return v;
    } catch {
      // not in a cgroup with a limit
    }
  }
  return total;
}

/**
 * The default budget: 40 % of the memory limit. What the budget counts is the writer's own data;
 * the rest is headroom for V8's heap overhead, Parquet workers and compaction output buffers.
 */
export function defaultMemoryBudgetBytes(): number {
  return Math.floor(memoryLimitBytes() * 0.4);
}
