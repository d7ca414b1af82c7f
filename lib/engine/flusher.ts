/**
 * Flush: the live rows of a frozen MemSlice become one Parquet data file (one per partition of
 * a partitioned table, rows in the table's sort order). Everything here runs
 * off the table's event loop: copies of the columns go to a worker thread, which builds Arrow,
 * encodes Parquet and computes the statistics (column-encoder.ts); the index run for the keys
 * is sorted here between events; the upload is async I/O. The result (file,
 * stats, index run for its keys) returns to the loop as a `flush-done` event.
 */

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ColumnStats } from '../columns/column-stats.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import { KeyHasher } from '../schema/key-hash.ts';
import type { PartitionTuple } from '../schema/partition-spec.ts';
import type { FileId, ObjectKey } from '../store/object-keys.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { IndexRun, runForFile } from './index-run.ts';
import type { MemSlice } from './mem-slice.ts';
import { hasLayout, type RowLayout } from './row-layout.ts';
import { encodeColumnsIn } from './worker-jobs.ts';

export interface FlushJob {
  slice: MemSlice;
  /** Slice rows to write, in order; row i of the file is slice row rows[i]. */
  rows: Uint32Array;
  fileId: FileId;
  objectKey: ObjectKey;
  compression: 'zstd' | 'snappy' | 'lz4' | 'none';
  /**
   * A partitioned or sorted table: one file per partition (the first takes `fileId`/`key`, the
   * others `allocate()`'s), rows in the sort order.
   */
  layout?: RowLayout;
  allocate?: () => { fileId: FileId; objectKey: ObjectKey };
}

/** A data file a flush wrote. */
export interface FlushedFile {
  fileId: FileId;
  objectKey: ObjectKey;
  sizeBytes: number;
  rowCount: number;
  stats: Map<number, ColumnStats>;
  /** Index entries for the file's keys (primary-key tables). */
  run: IndexRun | undefined;
  /** Slice rows the file holds, in order (row i of the file is slice row rows[i]). */
  rows: Uint32Array;
  specId: number;
  partition: PartitionTuple;
  sortOrderId: number;
}

export interface FlushResult {
  files: FlushedFile[];
}

export async function writeSliceToFile(
  job: FlushJob,
  store: ObjectStore,
  pool: ParquetWorkerPool,
): Promise<FlushResult> {
  const { slice, rows } = job;
  await yieldToLoop();
  const layout = hasLayout(job.layout) ? job.layout : undefined;
  const encoded = encodeColumnsIn(pool, {
    fields: slice.fields,
    images: slice.columns.map((c) => c.image()),
    rows,
    compression: job.compression,
    withStats: true,
    // The worker sorts the rows' key hashes into the file's index run.
    indexRun: slice.keyed && slice.rowCount > 0 ? { fileId: job.fileId, ...slice.hashesOf(rows) } : undefined,
    layout,
  });
  const { bytes, stats, run, groups } = await encoded;
  if (!layout || !groups) {
    await store.put(job.objectKey, bytes);
    return {
      files: [
        {
          fileId: job.fileId,
          objectKey: job.objectKey,
          sizeBytes: bytes.length,
          rowCount: rows.length,
          stats: stats!,
          run: run ? IndexRun.fromParts(run) : undefined,
          rows,
          specId: job.layout?.spec.specId ?? 0,
          partition: [],
          sortOrderId: job.layout?.order.orderId ?? 0,
        },
      ],
    };
  }
  const files: FlushedFile[] = [];
  for (const [i, g] of groups.entries()) {
    if (i > 0 && !job.allocate) throw new Error('a partitioned flush needs allocate() for its files');
    const { fileId, objectKey } = i === 0 ? job : job.allocate!();
    await store.put(objectKey, g.bytes);
    files.push({
      fileId,
      objectKey,
      sizeBytes: g.bytes.length,
      rowCount: g.rows.length,
      stats: g.stats!,
      run: g.run ? runForFile(g.run, fileId) : undefined,
      rows: g.rows,
      specId: layout.spec.specId,
      partition: g.partition,
      sortOrderId: layout.order.orderId,
    });
  }
  return { files };
}

/** An index run mapping the key of each file row i (given by `keyAt`) to (fileId, i). */
export function indexRunFor(fileId: number, count: number, keyAt: (i: number) => string): IndexRun {
  const his = new Uint32Array(count);
  const los = new Uint32Array(count);
  const hasher = new KeyHasher();
  for (let i = 0; i < count; i++) {
    hasher.hash(keyAt(i));
    his[i] = hasher.hi;
    los[i] = hasher.lo;
  }
  return IndexRun.forFile(fileId, his, los);
}
