/**
 * Rows of MemSlice columns → a Parquet file (and its column statistics), from copies of the
 * columns ({@link ColumnImage}). It runs in a Parquet worker thread (worker-pool.ts): gathering
 * the rows into Arrow, serializing, encoding and measuring would otherwise take the table's
 * thread about an eighth of its time while rows stream in.
 */
import type * as arrow from 'apache-arrow';
import { arrowSchemaFor, buildRecordBatch, tableToIpc } from '../columns/arrow-convert.ts';
import { type ColumnBuffer, type ColumnImage, columnFromImage } from '../columns/column-buffer.ts';
import { type ColumnStats, columnStats } from '../columns/column-stats.ts';
import { encodeParquetStream } from '../parquet/parquet-codec.mjs';
import type { NestedField } from '../schema/iceberg-type.ts';
import type { PartitionTuple } from '../schema/partition-spec.ts';
import { mostlyDistinctColumns } from './dictionary-choice.ts';
import { IndexRun, type RunParts, runPartsBuffers } from './index-run.ts';
import { hasLayout, layoutRows, type RowLayout } from './row-layout.ts';

export interface ColumnsJob {
  fields: NestedField[];
  images: ColumnImage[];
  /** Rows to write, in order. */
  rows: Uint32Array;
  compression: 'zstd' | 'snappy' | 'lz4' | 'none';
  /**
   * A data file: column statistics too, and a dictionary only for columns that repeat values.
   * Otherwise a tail file: no statistics (neither ours nor Parquet's own min/max, which only
   * row-group pruning would read) and no dictionaries. It lives seconds, is read whole, and
   * writing it plainly costs a third of the time; without Parquet's statistics, 28 % less again.
   */
  withStats: boolean;
  /** Also the file's index run, from its rows' key hashes (sorting them is CPU work too). */
  indexRun?: { fileId: number; his: Uint32Array; los: Uint32Array };
  /** A partitioned or sorted table's layout: one file per partition, rows in sort order. */
  layout?: RowLayout;
}

export interface ColumnsResult {
  bytes: Uint8Array;
  stats: Map<number, ColumnStats> | undefined;
  /** The index run's arrays (IndexRun.fromParts). */
  run?: RunParts;
}

/** The buffers a result can hand over without copying. */
export function resultTransfer(r: ColumnsResult & { groups?: EncodedGroup[] }): ArrayBuffer[] {
  const out = [r.bytes.buffer as ArrayBuffer, ...(r.run ? runPartsBuffers(r.run) : [])];
  for (const g of r.groups ?? []) out.push(...resultTransfer(g), g.rows.buffer as ArrayBuffer);
  return [...new Set(out)];
}

/** An Arrow record batch of the given rows of MemSlice columns, in that order. */
export function recordBatchOf(
  fields: NestedField[],
  columns: ColumnBuffer[],
  rows: ArrayLike<number>,
): arrow.RecordBatch {
  return buildRecordBatch(
    arrowSchemaFor(fields),
    columns.map((c) => c.toData(rows)),
  );
}

/** Rows handed to the Parquet writer at a time: one row group (parquet-codec.mjs's default). */
const CHUNK_ROWS = 122_880;

/** One file of a laid-out flush: its partition and the slice rows it holds, in order. */
export interface EncodedGroup extends ColumnsResult {
  partition: PartitionTuple;
  rows: Uint32Array;
}

/**
 * Encoded a row group at a time (encodeParquetStream), so the worker's WebAssembly memory holds
 * one row group's rows and the file's bytes, not the whole slice in Arrow and in Parquet. With a
 * `layout` (a partitioned or sorted table), the rows become one file per partition, each sorted
 * (row-layout.ts): the result's `groups`, whose runs name file 0 (the caller retargets them).
 */
export async function encodeColumns(job: ColumnsJob): Promise<ColumnsResult & { groups?: EncodedGroup[] }> {
  const columns = job.images.map((image, c) => columnFromImage(job.fields[c].type, image));
  const r = job.indexRun;
  if (!hasLayout(job.layout)) {
    const encoded = await encodeRows(job, columns, job.rows);
    return { ...encoded, run: r ? IndexRun.forFile(r.fileId, r.his, r.los).toParts() : undefined };
  }
  const groups = layoutRows(job.layout, job.fields, job.rows.length, (c, i) => columns[c].get(job.rows[i]));
  const out: EncodedGroup[] = [];
  for (const g of groups) {
    const rows = new Uint32Array(g.rows.length);
    for (let i = 0; i < rows.length; i++) rows[i] = job.rows[g.rows[i]];
    const encoded = await encodeRows(job, columns, rows);
    let run: RunParts | undefined;
    if (r) {
      const his = new Uint32Array(rows.length);
      const los = new Uint32Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        his[i] = r.his[g.rows[i]];
        los[i] = r.los[g.rows[i]];
      }
      run = IndexRun.forFile(0, his, los).toParts();
    }
    out.push({ ...encoded, run, partition: g.partition, rows });
  }
  return { bytes: new Uint8Array(0), stats: undefined, groups: out };
}

async function encodeRows(
  job: ColumnsJob,
  columns: ColumnBuffer[],
  rowsIn: Uint32Array,
): Promise<ColumnsResult> {
  let at = 0;
  const next = (): Uint8Array | undefined => {
    if (at >= rowsIn.length) return undefined;
    const rows = rowsIn.subarray(at, at + CHUNK_ROWS);
    at += rows.length;
    return tableToIpc(recordBatchOf(job.fields, columns, rows));
  };
  const bytes = await encodeParquetStream(next, {
    compression: job.compression,
    rowGroupSize: CHUNK_ROWS,
    ...(job.withStats
      ? {
          plainColumns: mostlyDistinctColumns(job.fields, (c, i) => columns[c].get(rowsIn[i]), rowsIn.length),
        }
      : { dictionary: false, statistics: false }),
  });
  return { bytes, stats: job.withStats ? columnStats(job.fields, columns, rowsIn) : undefined };
}

/** This module as a job of the pool's workers (worker-jobs.ts): a message `{ job }`. */
export const workerJob = {
  run: (message: { job: ColumnsJob }) => encodeColumns(message.job),
  transfer: resultTransfer,
};
