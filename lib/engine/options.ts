/** Tuning knobs of the engine, with the defaults a data engineer gets without configuring anything. */

import { defaultMemoryBudgetBytes } from '../util/memory-budget.ts';

export interface EngineOptions {
  /** A MemSlice is flushed to a data file once its estimated in-memory size passes this. */
  memSliceMaxBytes: number;
  /** …or once it holds this many rows. */
  memSliceMaxRows: number;
  /** Read snapshots are published at this interval when anything changed. */
  snapshotIntervalMs: number;
  /** Iceberg commits happen at this interval when anything changed (and on POST /flush). */
  commitIntervalMs: number;
  /** A schema change is committed this soon after it (when no commit comes first). */
  schemaCommitDelayMs: number;
  /** Compaction writes files of about this size and merges files smaller than half of it. */
  targetFileBytes: number;
  /** Files with at least this share of deleted rows are rewritten by compaction. */
  compactDeletedRatio: number;
  /** Compaction runs when at least this many small files exist. */
  compactMinSmallFiles: number;
  /**
   * A partitioned table's small files merge within their partition once there are
   * compactMinSmallFiles of them, or two once the oldest is this old (ms).
   */
  compactSmallFileAgeMs: number;
  /**
   * Timed compaction of small files waits while the event loop was busier than this share of the
   * last interval (writes come first), until 4 × compactMinSmallFiles small files exist. Files
   * with many deleted rows are never kept waiting. 1 never waits.
   */
  compactYieldUtilization: number;
  /** Index entries kept in memory before index runs spill to local disk. */
  indexMemoryBytes: number;
  /** Index runs beyond this count are merged. */
  indexMaxRuns: number;
  /** How long a read lease lasts. */
  leaseTtlMs: number;
  /** Garbage collection interval. */
  gcIntervalMs: number;
  /**
   * A file no snapshot refers to any more is deleted only after this long; readers must take
   * their lease within half of it after reading the pointer (they check).
   */
  candidateGraceMs: number;
  /** Objects younger than this are never treated as orphans. */
  orphanGraceMs: number;
  /** How long an Idempotency-Key is remembered, and how many keys a table keeps at most. */
  idempotencyRetentionMs: number;
  idempotencyMaxKeys: number;
  /** Iceberg snapshots kept (older ones expire, their files become garbage). */
  keepSnapshots: number;
  /** Iceberg snapshots older than this expire too (the current one never does); undefined = no age limit. */
  maxSnapshotAgeMs: number | undefined;
  /** How often the garbage collector also sweeps for orphans (objects nothing refers to). */
  orphanSweepIntervalMs: number;
  /** Compression of data files (tail files are always LZ4: they are short-lived). */
  dataCompression: 'zstd' | 'snappy' | 'lz4' | 'none';
  /** Background compaction on/off. */
  compaction: boolean;
  /**
   * Buffered rows, frozen slices, index memory and compactions in flight, over all tables:
   * past it writes get 503 `backpressure` and sources stop pulling until flushes catch up.
   */
  memoryBudgetBytes: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  memSliceMaxBytes: 64 * 1024 * 1024,
  memSliceMaxRows: 1_000_000,
  snapshotIntervalMs: 1000,
  commitIntervalMs: 30_000,
  schemaCommitDelayMs: 1000,
  targetFileBytes: 128 * 1024 * 1024,
  compactDeletedRatio: 0.2,
  compactMinSmallFiles: 4,
  compactSmallFileAgeMs: 5 * 60_000,
  compactYieldUtilization: 0.6,
  indexMemoryBytes: 256 * 1024 * 1024,
  indexMaxRuns: 8,
  leaseTtlMs: 5 * 60_000,
  gcIntervalMs: 10_000,
  candidateGraceMs: 30_000,
  orphanGraceMs: 60 * 60_000,
  idempotencyRetentionMs: 24 * 60 * 60_000,
  idempotencyMaxKeys: 1_000_000,
  keepSnapshots: 20,
  maxSnapshotAgeMs: undefined,
  orphanSweepIntervalMs: 60 * 60_000,
  dataCompression: 'zstd',
  compaction: true,
  memoryBudgetBytes: defaultMemoryBudgetBytes(),
};

export function engineOptions(partial: Partial<EngineOptions> = {}): EngineOptions {
  return { ...DEFAULT_ENGINE_OPTIONS, ...partial };
}
