/**
 * Delete files for Iceberg: Parquet position-delete files (format v2; columns `file_path` and
 * `pos` with the reserved field ids) and Puffin deletion vectors (format v3), written and read.
 */
import { batchFromValues, readColumn, tableFromIpc, tableToIpc } from '../parquet/arrow-convert.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import { DELETION_VECTOR_BLOB_TYPE, decodeDeletionVector, encodeDeletionVector } from './deletion-vector.ts';
import { type PuffinBlobMeta, writePuffin } from './puffin.ts';
import { RoaringBitmap64 } from './roaring.ts';

export const FILE_PATH_FIELD_ID = 2147483546;
export const POS_FIELD_ID = 2147483545;

export const POSITION_DELETE_FIELDS: NestedField[] = [
  { id: FILE_PATH_FIELD_ID, name: 'file_path', required: true, type: { kind: 'string' } },
  { id: POS_FIELD_ID, name: 'pos', required: true, type: { kind: 'long' } },
];

/** A position-delete Parquet file for one data file (rows sorted by position). */
export async function writePositionDeletes(
  pool: ParquetWorkerPool,
  dataFileUri: string,
  positions: RoaringBitmap64,
): Promise<Uint8Array> {
  const pos = positions.toArray();
  const batch = batchFromValues(POSITION_DELETE_FIELDS, [
    new Array(pos.length).fill(dataFileUri),
    pos.map((p) => BigInt(p)),
  ]);
  return pool.encode(tableToIpc(batch), { compression: 'zstd' });
}

/** Positions per data file location in a position-delete file. */
export async function readPositionDeletes(
  pool: ParquetWorkerPool,
  bytes: Uint8Array,
): Promise<Map<string, RoaringBitmap64>> {
  const table = tableFromIpc(await pool.decode(bytes));
  const paths = readColumn(
    { kind: 'string' },
    table,
    table.schema.fields.findIndex((f) => f.name === 'file_path'),
  );
  const positions = readColumn(
    { kind: 'long' },
    table,
    table.schema.fields.findIndex((f) => f.name === 'pos'),
  );
  const out = new Map<string, RoaringBitmap64>();
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i] as string;
    let bm = out.get(p);
    if (!bm) {
      bm = new RoaringBitmap64();
      out.set(p, bm);
    }
    bm.add(Number(positions[i] as bigint));
  }
  return out;
}

/** One Puffin file holding a deletion vector per data file location. */
export function writeDeletionVectors(vectors: { dataFileUri: string; positions: RoaringBitmap64 }[]): {
  bytes: Uint8Array;
  blobs: PuffinBlobMeta[];
} {
  return writePuffin(
    vectors.map((v) => ({
      type: DELETION_VECTOR_BLOB_TYPE,
      fields: [POS_FIELD_ID],
      snapshotId: -1,
      sequenceNumber: -1,
      properties: { 'referenced-data-file': v.dataFileUri, cardinality: String(v.positions.size) },
      data: encodeDeletionVector(v.positions),
    })),
  );
}

export function readDeletionVectorBlob(bytes: Uint8Array, name: string): RoaringBitmap64 {
  return decodeDeletionVector(bytes, name);
}
