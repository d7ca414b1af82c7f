/**
 * The writer's memory budget (`MOONLINK_MEMORY_BUDGET_BYTES`): one count over every table's
 * buffered rows, frozen slices, index memory and compaction in flight. Past it, writes are
 * refused (503 backpressure), sources stop pulling, and the table holding the most is
 * flushed (one at a time) so the writer catches up by itself; a compaction is capped to what
 * the budget leaves.
 */

import type { Logger } from '../util/logger.ts';
import type { TableHandler } from './table-handler.ts';

export class MemoryGovernor {
  /** The process's resident memory when the writer was made (runtime and code, no tables yet). */
  private readonly startRss = process.memoryUsage.rss();

  constructor(
    private readonly deps: {
      budgetBytes: number;
      tables: () => Iterable<TableHandler>;
      /** What the Parquet workers hold (reported beside the count). */
      workersBytes: () => number;
      closed: () => boolean;
      logger: Logger;
    },
  ) {}

  /** The count as last computed (what a refusal reports). */
  get lastCount(): number {
    return this.usedBytes;
  }

  private usedBytes = 0;
  private usedAt = 0;
  /** A catch-up flush in flight (one at a time). */
  private relieving: Promise<unknown> | undefined;

  /** Memory held over all tables (recomputed at most every 20 ms). */
  memoryInUse(): number {
    const now = Date.now();
    if (now - this.usedAt >= 20) {
      // What the tables hold. The Parquet workers' own memory is not counted (their runtime
      // and WebAssembly memory are about fixed: jobs stream a row group at a time); it is
      // reported beside (memoryStatus), and a compaction also waits for resident memory.
      let bytes = 0;
      for (const o of this.deps.tables()) bytes += o.memoryBytes();
      this.usedBytes = bytes;
      this.usedAt = now;
    }
    return this.usedBytes;
  }

  /**
   * Whether the writer holds more than its memory budget. While it does, the table holding the
   * most is flushed (one at a time), so the writer catches up by itself.
   */
  overBudget(): boolean {
    const over = this.memoryInUse() > this.deps.budgetBytes;
    if (over && !this.relieving && !this.deps.closed()) {
      let biggest: TableHandler | undefined;
      let most = 0;
      for (const o of this.deps.tables()) {
        const b = o.memoryBytes();
        if (b > most && !o.isFenced) [biggest, most] = [o, b];
      }
      if (biggest) {
        this.deps.logger.info('memory budget reached: committing the largest table', {
          table: biggest.name,
          usedBytes: this.usedBytes,
          budgetBytes: this.deps.budgetBytes,
        });
        this.relieving = biggest
          .commit()
          .catch((e) =>
            this.deps.logger.warn('flush for the memory budget failed', { table: biggest.name, error: e }),
          )
          .finally(() => {
            this.relieving = undefined;
            this.usedAt = 0;
          });
      }
    }
    return over;
  }

  /**
   * What a compaction may take: what the budget leaves by the writer's own count, and no more
   * than the process's resident memory leaves of it (its growth since start-up, which also holds
   * what no count sees: the allocator's slack, garbage awaiting collection, the threads) — but
   * always a quarter of the budget if the count leaves that, so compactions never wait for a
   * collection that only their own allocations would bring. Writes are admitted by the count
   * alone (it falls as soon as a flush lands).
   */
  compactionHeadroom(): number {
    const budget = this.deps.budgetBytes;
    const byResident = budget - (process.memoryUsage.rss() - this.startRss);
    return Math.min(budget - this.memoryInUse(), Math.max(byResident, budget / 4));
  }

  /**
   * The budget and what is held, for status; beside it the process's own figures (resident,
   * V8 heap, memory outside the heap) so a gap between the two shows.
   */
  memoryStatus(): {
    usedBytes: number;
    budgetBytes: number;
    workersBytes: number;
    process: { rssBytes: number; startRssBytes: number; heapUsedBytes: number; externalBytes: number };
  } {
    const m = process.memoryUsage();
    return {
      usedBytes: this.memoryInUse(),
      budgetBytes: this.deps.budgetBytes,
      workersBytes: this.deps.workersBytes(),
      process: {
        rssBytes: m.rss,
        startRssBytes: this.startRss,
        heapUsedBytes: m.heapUsed,
        externalBytes: m.external,
      },
    };
  }
}
