/**
 * Avro schemas of Iceberg manifests (`manifest_entry` with its `data_file`) and manifest lists
 * (`manifest_file`) for format v2 and v3, with the field ids of the Iceberg spec ("Manifests",
 * "Manifest Lists") on every field, list element and map key/value, written the way the Java
 * reference implementation writes them (maps with int keys as arrays of `k<id>_v<id>` records
 * with logical type `map`, optional fields as `["null", T]` unions defaulting to null).
 *
 * The `data_file.partition` struct (field 102) is the manifest's partition type (partition-avro.ts
 * builds its fields; an empty record for an unpartitioned spec), so the schemas are made per
 * format version and partition type. Deprecated fields (block_size_in_bytes, distinct_counts,
 * ...) are omitted.
 */
import type { AvroSchemaJson } from './avro-file.ts';
import type { PartitionFieldSummary } from './partition-avro.ts';

const opt = (type: unknown) => ['null', type];

function intMap(
  name: string,
  fieldId: number,
  keyId: number,
  valueId: number,
  valueType: string,
): Record<string, unknown> {
  return {
    name,
    type: opt({
      type: 'array',
      logicalType: 'map',
      items: {
        type: 'record',
        name: `k${keyId}_v${valueId}`,
        fields: [
          { name: 'key', type: 'int', 'field-id': keyId },
          { name: 'value', type: valueType, 'field-id': valueId },
        ],
      },
    }),
    default: null,
    'field-id': fieldId,
  };
}

function buildDataFileSchema(formatVersion: 2 | 3, partition: Record<string, unknown>[]): AvroSchemaJson {
  const fields: Record<string, unknown>[] = [
    { name: 'content', type: 'int', 'field-id': 134 },
    { name: 'file_path', type: 'string', 'field-id': 100 },
    { name: 'file_format', type: 'string', 'field-id': 101 },
    { name: 'partition', type: { type: 'record', name: 'r102', fields: partition }, 'field-id': 102 },
    { name: 'record_count', type: 'long', 'field-id': 103 },
    { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
    intMap('column_sizes', 108, 117, 118, 'long'),
    intMap('value_counts', 109, 119, 120, 'long'),
    intMap('null_value_counts', 110, 121, 122, 'long'),
    intMap('nan_value_counts', 137, 138, 139, 'long'),
    intMap('lower_bounds', 125, 126, 127, 'bytes'),
    intMap('upper_bounds', 128, 129, 130, 'bytes'),
    { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 131 },
    {
      name: 'split_offsets',
      type: opt({ type: 'array', items: 'long', 'element-id': 133 }),
      default: null,
      'field-id': 132,
    },
    {
      name: 'equality_ids',
      type: opt({ type: 'array', items: 'int', 'element-id': 136 }),
      default: null,
      'field-id': 135,
    },
    { name: 'sort_order_id', type: opt('int'), default: null, 'field-id': 140 },
  ];
  if (formatVersion >= 3)
    fields.push({ name: 'first_row_id', type: opt('long'), default: null, 'field-id': 142 });
  fields.push({ name: 'referenced_data_file', type: opt('string'), default: null, 'field-id': 143 });
  if (formatVersion >= 3) {
    fields.push({ name: 'content_offset', type: opt('long'), default: null, 'field-id': 144 });
    fields.push({ name: 'content_size_in_bytes', type: opt('long'), default: null, 'field-id': 145 });
  }
  return { type: 'record', name: 'r2', fields };
}

function buildManifestEntrySchema(
  formatVersion: 2 | 3,
  partition: Record<string, unknown>[],
): AvroSchemaJson {
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      { name: 'snapshot_id', type: opt('long'), default: null, 'field-id': 1 },
      { name: 'sequence_number', type: opt('long'), default: null, 'field-id': 3 },
      { name: 'file_sequence_number', type: opt('long'), default: null, 'field-id': 4 },
      { name: 'data_file', type: dataFileSchema(formatVersion, partition), 'field-id': 2 },
    ],
  };
}

function buildManifestFileSchema(formatVersion: 2 | 3): AvroSchemaJson {
  const fields: Record<string, unknown>[] = [
    { name: 'manifest_path', type: 'string', 'field-id': 500 },
    { name: 'manifest_length', type: 'long', 'field-id': 501 },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502 },
    { name: 'content', type: 'int', 'field-id': 517 },
    { name: 'sequence_number', type: 'long', 'field-id': 515 },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516 },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503 },
    { name: 'added_files_count', type: 'int', 'field-id': 504 },
    { name: 'existing_files_count', type: 'int', 'field-id': 505 },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506 },
    { name: 'added_rows_count', type: 'long', 'field-id': 512 },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513 },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514 },
    {
      name: 'partitions',
      type: opt({
        type: 'array',
        'element-id': 508,
        items: {
          type: 'record',
          name: 'r508',
          fields: [
            { name: 'contains_null', type: 'boolean', 'field-id': 509 },
            { name: 'contains_nan', type: opt('boolean'), default: null, 'field-id': 518 },
            { name: 'lower_bound', type: opt('bytes'), default: null, 'field-id': 510 },
            { name: 'upper_bound', type: opt('bytes'), default: null, 'field-id': 511 },
          ],
        },
      }),
      default: null,
      'field-id': 507,
    },
    { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 519 },
  ];
  if (formatVersion >= 3)
    fields.push({ name: 'first_row_id', type: opt('long'), default: null, 'field-id': 520 });
  return { type: 'record', name: 'manifest_file', fields };
}

type PartitionFields = Record<string, unknown>[];
const NO_PARTITION: PartitionFields = [];

function memo(
  build: (v: 2 | 3, partition: PartitionFields) => AvroSchemaJson,
): (v: 2 | 3, partition?: PartitionFields) => AvroSchemaJson {
  const byKey = new Map<string, AvroSchemaJson>();
  return (v, partition = NO_PARTITION) => {
    const key = partition.length === 0 ? String(v) : `${v}:${JSON.stringify(partition)}`;
    let s = byKey.get(key);
    if (!s) {
      s = build(v, partition);
      if (byKey.size > 256) byKey.clear();
      byKey.set(key, s);
    }
    return s;
  };
}

/**
 * The `data_file` struct (field 2 of a manifest entry) for a format version and the Avro fields
 * of the partition type; one object per both, never mutate.
 */
export const dataFileSchema = memo(buildDataFileSchema);
/** `manifest_entry`, the record of a manifest file. */
export const manifestEntrySchema = memo(buildManifestEntrySchema);
/** `manifest_file`, the record of a manifest list. */
export const manifestFileSchema = memo((v) => buildManifestFileSchema(v));

export const MANIFEST_STATUS = { EXISTING: 0, ADDED: 1, DELETED: 2 } as const;
export const CONTENT = { DATA: 0, POSITION_DELETES: 1, EQUALITY_DELETES: 2 } as const;

export interface AvroDataFile {
  content: number;
  file_path: string;
  file_format: string;
  /** The partition tuple as an Avro record (partition-avro.ts); `{}` when unpartitioned. */
  partition: Record<string, unknown>;
  record_count: number;
  file_size_in_bytes: number;
  column_sizes: { key: number; value: number }[] | null;
  value_counts: { key: number; value: number }[] | null;
  null_value_counts: { key: number; value: number }[] | null;
  nan_value_counts: { key: number; value: number }[] | null;
  lower_bounds: { key: number; value: Buffer }[] | null;
  upper_bounds: { key: number; value: Buffer }[] | null;
  key_metadata: Buffer | null;
  split_offsets: number[] | null;
  equality_ids: number[] | null;
  sort_order_id: number | null;
  first_row_id?: number | null;
  referenced_data_file: string | null;
  content_offset?: number | null;
  content_size_in_bytes?: number | null;
}

export interface AvroManifestEntry {
  status: number;
  snapshot_id: number | null;
  sequence_number: number | null;
  file_sequence_number: number | null;
  data_file: AvroDataFile;
}

export interface AvroManifestFile {
  manifest_path: string;
  manifest_length: number;
  partition_spec_id: number;
  content: number;
  sequence_number: number;
  min_sequence_number: number;
  added_snapshot_id: number;
  added_files_count: number;
  existing_files_count: number;
  deleted_files_count: number;
  added_rows_count: number;
  existing_rows_count: number;
  deleted_rows_count: number;
  partitions: PartitionFieldSummary[] | null;
  key_metadata: Uint8Array | null;
  first_row_id?: number | null;
}
