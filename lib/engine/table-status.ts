/** A table's figures as the writer reports them (`GET /tables/{name}` under `writer`, metrics). */

import { type Lsn, lsnToJson, ZERO_LSN } from '../lsn.ts';
import type { TableState } from './table-state.ts';

export interface TableStatus {
  lsn: Lsn;
  snapshotLsn: Lsn;
  committedLsn: Lsn;
  dataFiles: number;
  dataFileBytes: number;
  rows: number;
  memRows: number;
  memBytes: number;
  flushing: number;
  indexEntries: number;
  indexRuns: number;
  indexMemoryBytes: number;
  /** What a running compaction is counted at against the memory budget (compactionMemory). */
  compactionMemoryBytes: number;
  pendingDeletes: number;
  compactions: number;
  /** Timed compaction passes that waited because writes kept the loop busy. */
  compactionsDeferred: number;
  /** Compactions that failed (their inputs stay; the next pass tries again). */
  compactionsFailed: number;
  metadataLocation: string | undefined;
  checkpoints: Record<string, string>;
  /** How long the oldest change not in an Iceberg commit has waited (0 when all are committed). */
  commitLagMs: number;
}

/** The writer's figures of a table as `GET /tables/{name}` shows them under `writer`. */
export function writerStatusJson(s: TableStatus): Record<string, unknown> {
  return {
    appliedLsn: lsnToJson(s.lsn),
    memRows: s.memRows,
    memBytes: s.memBytes,
    flushing: s.flushing,
    dataFiles: s.dataFiles,
    indexEntries: s.indexEntries,
    indexRuns: s.indexRuns,
    indexMemoryBytes: s.indexMemoryBytes,
    compactionMemoryBytes: s.compactionMemoryBytes,
    compactions: s.compactions,
    compactionsDeferred: s.compactionsDeferred,
    compactionsFailed: s.compactionsFailed,
    commitLagMs: s.commitLagMs,
  };
}

/** The status of a table from its state and its jobs' figures. */
export function tableStatus(
  s: TableState,
  jobs: {
    snapshotLsn: Lsn | undefined;
    committedLsn: Lsn;
    metadataLocation: string | undefined;
    flushing: number;
    compaction: { memoryBytes: number; passes: number; deferred: number; failed: number };
    now: number;
  },
): TableStatus {
  const c = s.counts();
  return {
    lsn: s.appliedLsn,
    snapshotLsn: jobs.snapshotLsn ?? ZERO_LSN,
    committedLsn: jobs.committedLsn,
    dataFiles: s.files.size,
    dataFileBytes: c.fileBytes,
    rows: c.rows,
    memRows: c.memRows,
    memBytes: c.memBytes,
    flushing: jobs.flushing,
    indexEntries: s.index.entryCount,
    indexRuns: s.index.runCount,
    indexMemoryBytes: s.index.memoryBytes,
    compactionMemoryBytes: jobs.compaction.memoryBytes,
    pendingDeletes: s.pendingDeletes.size,
    compactions: jobs.compaction.passes,
    compactionsDeferred: jobs.compaction.deferred,
    compactionsFailed: jobs.compaction.failed,
    metadataLocation: jobs.metadataLocation,
    checkpoints: { ...s.checkpoints },
    commitLagMs: s.uncommittedSince === undefined ? 0 : jobs.now - s.uncommittedSince,
  };
}
