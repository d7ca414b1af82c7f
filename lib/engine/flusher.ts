/**
 * Flush: the live rows of a frozen MemSlice become one Parquet data file. Everything here runs
 * off the table's event loop: Arrow building and statistics on the main thread between
 * events, Parquet encoding in a worker thread, the upload as async I/O. The result (file,
 * stats, index run for its keys) returns to the loop as a `flush-done` event.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { tableToIpc } from '../parquet/arrow-convert.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { type ColumnStats, columnStats } from './column-stats.ts';
import { IndexRun } from './index-run.ts';
import { hashHi, hashKey, hashLo } from './key-hash.ts';
import type { MemSlice } from './mem-slice.ts';

export interface FlushJob {
  slice: MemSlice;
  /** Slice rows to write, in order; row i of the file is slice row rows[i]. */
  rows: Uint32Array;
  fileId: number;
  key: string;
  compression: 'zstd' | 'snappy' | 'lz4' | 'none';
}

export interface FlushResult {
  key: string;
  sizeBytes: number;
  rowCount: number;
  stats: Map<number, ColumnStats>;
  /** Index entries for the file's keys (primary-key tables). */
  run: IndexRun | undefined;
}

export async function writeSliceToFile(
  job: FlushJob,
  store: ObjectStore,
  pool: ParquetWorkerPool,
): Promise<FlushResult> {
  const { slice, rows } = job;
  await yieldToLoop();
  const ipc = tableToIpc(slice.batch(rows));
  const encoded = pool.encode(ipc, { compression: job.compression });
  await yieldToLoop();
  const stats = columnStats(slice.fields, slice.columns, rows);
  await yieldToLoop();
  let run: IndexRun | undefined;
  if (slice.rowKeys.length > 0) {
    const { his, los } = slice.hashesOf(rows);
    run = IndexRun.forFile(job.fileId, his, los);
  }
  const bytes = await encoded;
  await store.put(job.key, bytes);
  return { key: job.key, sizeBytes: bytes.length, rowCount: rows.length, stats, run };
}

/** An index run mapping the key of each file row i (given by `keyAt`) to (fileId, i). */
export function indexRunFor(fileId: number, count: number, keyAt: (i: number) => string): IndexRun {
  const his = new Uint32Array(count);
  const los = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    hashKey(keyAt(i));
    his[i] = hashHi();
    los[i] = hashLo();
  }
  return IndexRun.forFile(fileId, his, los);
}
