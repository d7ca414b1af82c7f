/**
 * The read snapshot: a consistent view of a table at one LSN, as a JSON object in the store that
 * the catalog pointer names. Readers (the snapshot and scan endpoints) load it; the writer
 * never shares memory with them.
 */
import type { PartitionSpecJson } from '../schema/partition-spec.ts';
import { schemaFromIcebergJson } from '../schema/schema-json.ts';
import type { TableDefinition, TableSchema } from '../schema/table-schema.ts';
import type { DeletionVectorRef } from './mem-slice.ts';

export const SNAPSHOT_FORMAT = 'moonlink-snapshot/1';

export interface SnapshotFile {
  /** Object-store key of a Parquet file. */
  path: string;
  /** `data`: a durable data file; `tail`: rows still in the writer's memory at snapshot time. */
  kind: 'data' | 'tail';
  rowCount: number;
  sizeBytes: number;
  /** Deleted row positions: a `deletion-vector-v1` blob inside a Puffin file. */
  deletes?: DeletionVectorRef;
  /**
   * A data file of a partitioned spec: the spec's id and the file's partition, by partition
   * field name, values as Iceberg's partition values (`{"placed_at_day": 19844, "id_bucket": 3}`).
   */
  specId?: number;
  partition?: Record<string, unknown>;
}

export interface SnapshotManifest {
  format: typeof SNAPSHOT_FORMAT;
  table: string;
  /** Decimal string (LSNs can exceed 2^53). */
  lsn: string;
  seq: number;
  createdAt: string;
  schemaId: number;
  /** The schema (Iceberg JSON) when the table's schema changed since its creation. */
  schema?: Record<string, unknown>;
  files: SnapshotFile[];
  /** The partition specs of its partitioned files (Iceberg JSON), for readers that prune. */
  partitionSpecs?: PartitionSpecJson[];
}

/**
 * The schema a snapshot shows: its own when it names one, else the table's (a table whose
 * schema never changed, or a snapshot written before snapshots named theirs).
 */
export function snapshotSchema(m: SnapshotManifest, def: TableDefinition): TableSchema {
  if (!m.schema) return def.schema;
  let cached = schemas.get(m);
  if (!cached) {
    cached = schemaFromIcebergJson(m.schema);
    schemas.set(m, cached);
  }
  return cached;
}

const schemas = new WeakMap<SnapshotManifest, TableSchema>();

/** Every object key a snapshot needs: its files and their deletion-vector Puffin files. */
export function snapshotObjectKeys(m: SnapshotManifest): string[] {
  const keys = new Set<string>();
  for (const f of m.files) {
    keys.add(f.path);
    if (f.deletes) keys.add(f.deletes.key);
  }
  return [...keys];
}

export function parseSnapshotManifest(bytes: Uint8Array, key: string): SnapshotManifest {
  const m = JSON.parse(new TextDecoder().decode(bytes)) as SnapshotManifest;
  if (m.format !== SNAPSHOT_FORMAT)
    throw new Error(`${key}: not a snapshot manifest (format ${String(m.format)})`);
  return m;
}
