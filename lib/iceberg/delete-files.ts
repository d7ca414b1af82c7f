/**
 * Delete files, written and read:
 * - format v2: Parquet position-delete files (`file_path` string, field id 2147483546, and
 *   `pos` long, field id 2147483545, both required, rows sorted by file_path then pos). This
 *   module writes one per data file, so every row has the same file_path.
 * - format v3: Puffin files holding one `deletion-vector-v1` blob per data file, with the blob
 *   properties the Puffin spec requires (`referenced-data-file`, `cardinality`) and snapshot id
 *   and sequence number -1 (they are inherited from the manifest entry).
 */
import { batchFromValues, readColumn, tableFromIpc, tableToIpc } from '../columns/arrow-convert.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import { DELETION_VECTOR_BLOB_TYPE, decodeDeletionVector, encodeDeletionVector } from './deletion-vector.ts';
import { type PuffinBlobInput, type PuffinBlobMeta, writePuffin } from './puffin.ts';
import { RoaringBitmap64 } from './roaring.ts';
import { lowerBound, upperBound } from './stats.ts';

/** Reserved field ids of position-delete files (spec "Reserved Field IDs"). */
export const FILE_PATH_FIELD_ID = 2147483546;
export const POS_FIELD_ID = 2147483545;
/** `_pos`, the row-position metadata column a deletion vector is computed on (as Java records it). */
export const ROW_POSITION_FIELD_ID = 2147483645;

export const POSITION_DELETE_FIELDS: NestedField[] = [
  { id: FILE_PATH_FIELD_ID, name: 'file_path', required: true, type: { kind: 'string' } },
  { id: POS_FIELD_ID, name: 'pos', required: true, type: { kind: 'long' } },
];

/** A position-delete Parquet file (zstd) holding `positions` of one data file, in order. */
export async function writePositionDeletes(
  pool: ParquetWorkerPool,
  dataFileUri: string,
  positions: RoaringBitmap64,
): Promise<Uint8Array> {
  const pos = positions.toArray();
  const batch = batchFromValues(POSITION_DELETE_FIELDS, [
    new Array<string>(pos.length).fill(dataFileUri),
    pos.map((p) => BigInt(p)),
  ]);
  return pool.encode(tableToIpc(batch), { compression: 'zstd' });
}

/**
 * Manifest metrics of a single-data-file position-delete file: counts and bounds for both
 * columns (the file_path bounds are the full location, never truncated, as Iceberg keeps them).
 */
export function positionDeleteMetrics(
  dataFileUri: string,
  positions: RoaringBitmap64,
): {
  valueCounts: { key: number; value: number }[];
  nullValueCounts: { key: number; value: number }[];
  lowerBounds: { key: number; value: Buffer }[];
  upperBounds: { key: number; value: Buffer }[];
} {
  const n = positions.size;
  let first = -1;
  let last = -1;
  for (const p of positions) {
    if (first < 0) first = p;
    last = p;
  }
  const path = Buffer.from(dataFileUri, 'utf8');
  return {
    valueCounts: [
      { key: FILE_PATH_FIELD_ID, value: n },
      { key: POS_FIELD_ID, value: n },
    ],
    nullValueCounts: [
      { key: FILE_PATH_FIELD_ID, value: 0 },
      { key: POS_FIELD_ID, value: 0 },
    ],
    lowerBounds: [
      { key: FILE_PATH_FIELD_ID, value: path },
      { key: POS_FIELD_ID, value: lowerBound({ kind: 'long' }, BigInt(first))! },
    ],
    upperBounds: [
      { key: FILE_PATH_FIELD_ID, value: path },
      { key: POS_FIELD_ID, value: upperBound({ kind: 'long' }, BigInt(last))! },
    ],
  };
}

/** Positions per data file location in a position-delete file. */
export async function readPositionDeletes(
  pool: ParquetWorkerPool,
  bytes: Uint8Array,
  name = 'position delete file',
): Promise<Map<string, RoaringBitmap64>> {
  const table = tableFromIpc(await pool.decode(bytes));
  const pathIndex = table.schema.fields.findIndex((f) => f.name === 'file_path');
  const posIndex = table.schema.fields.findIndex((f) => f.name === 'pos');
  if (pathIndex < 0 || posIndex < 0) throw new Error(`${name}: no file_path/pos columns`);
  const paths = readColumn({ kind: 'string' }, table, pathIndex);
  const positions = readColumn({ kind: 'long' }, table, posIndex);
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

/** One Puffin file holding a deletion vector per data file location (blob i ↔ vectors[i]). */
/** The Puffin blob of one deletion vector, already encoded (`deletion-vector-v1`). */
export function deletionVectorBlob(
  dataFileUri: string,
  encoded: Uint8Array,
  cardinality: number,
): PuffinBlobInput {
  return {
    type: DELETION_VECTOR_BLOB_TYPE,
    fields: [ROW_POSITION_FIELD_ID],
    snapshotId: -1,
    sequenceNumber: -1,
    properties: { 'referenced-data-file': dataFileUri, cardinality: String(cardinality) },
    data: encoded,
  };
}

export function writeDeletionVectors(vectors: { dataFileUri: string; positions: RoaringBitmap64 }[]): {
  bytes: Uint8Array;
  blobs: PuffinBlobMeta[];
} {
  return writePuffin(
    vectors.map((v) =>
      deletionVectorBlob(v.dataFileUri, encodeDeletionVector(v.positions), v.positions.size),
    ),
  );
}

/** Decodes one deletion-vector blob read at the manifest entry's content_offset/size. */
export function readDeletionVectorBlob(bytes: Uint8Array, name: string): RoaringBitmap64 {
  return decodeDeletionVector(bytes, name);
}
