/**
 * Rows of MemSlice columns → a Parquet file (and its column statistics), from copies of the
 * columns ({@link ColumnImage}). It runs in a Parquet worker thread (worker-pool.ts): gathering
 * the rows into Arrow, serializing, encoding and measuring would otherwise take the table's
 * thread about an eighth of its time while rows stream in.
 */
import type * as arrow from 'apache-arrow';
import { arrowSchemaFor, buildRecordBatch, tableToIpc } from '../parquet/arrow-convert.ts';
import { encodeParquetStream } from '../parquet/parquet-codec.mjs';
import type { NestedField } from '../schema/iceberg-type.ts';
import { type ColumnBuffer, type ColumnImage, columnFromImage } from './column-buffer.ts';
import { type ColumnStats, columnStats } from './column-stats.ts';
import { mostlyDistinctColumns } from './dictionary-choice.ts';
import { IndexRun, type RunParts, runPartsBuffers } from './index-run.ts';

export interface ColumnsJob {
  fields: NestedField[];
  images: ColumnImage[];
  /** Rows to write, in order. */
  rows: Uint32Array;
  compression: 'zstd' | 'snappy' | 'lz4' | 'none';
  /**
   * A data file: column statistics too, and a dictionary only for columns that repeat values.
   * Otherwise a tail file: no statistics and no dictionaries (it lives seconds; writing it
   * plainly costs a third of the time).
   */
  withStats: boolean;
  /** Also the file's index run, from its rows' key hashes (sorting them is CPU work too). */
  indexRun?: { fileId: number; his: Uint32Array; los: Uint32Array };
}

export interface ColumnsResult {
  bytes: Uint8Array;
  stats: Map<number, ColumnStats> | undefined;
  /** The index run's arrays (IndexRun.fromParts). */
  run?: RunParts;
}

/** The buffers a result can hand over without copying. */
export function resultTransfer(r: ColumnsResult): ArrayBuffer[] {
  return [r.bytes.buffer as ArrayBuffer, ...(r.run ? runPartsBuffers(r.run) : [])];
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

/**
 * Encoded a row group at a time (encodeParquetStream), so the worker's WebAssembly memory holds
 * one row group's rows and the file's bytes, not the whole slice in Arrow and in Parquet.
 */
export async function encodeColumns(job: ColumnsJob): Promise<ColumnsResult> {
  const columns = job.images.map((image, c) => columnFromImage(job.fields[c].type, image));
  let at = 0;
  const next = (): Uint8Array | undefined => {
    if (at >= job.rows.length) return undefined;
    const rows = job.rows.subarray(at, at + CHUNK_ROWS);
    at += rows.length;
    return tableToIpc(recordBatchOf(job.fields, columns, rows));
  };
  const bytes = await encodeParquetStream(next, {
    compression: job.compression,
    rowGroupSize: CHUNK_ROWS,
    ...(job.withStats
      ? {
          plainColumns: mostlyDistinctColumns(
            job.fields,
            (c, i) => columns[c].get(job.rows[i]),
            job.rows.length,
          ),
        }
      : { dictionary: false }),
  });
  const r = job.indexRun;
  return {
    bytes,
    stats: job.withStats ? columnStats(job.fields, columns, job.rows) : undefined,
    run: r ? IndexRun.forFile(r.fileId, r.his, r.los).toParts() : undefined,
  };
}
