/**
 * Iceberg table metadata (`vN.metadata.json`, spec "Table Metadata") for unpartitioned,
 * unsorted tables in format v2 or v3: the types, the first metadata of a new table, and the
 * default name mapping so engines that ignore Parquet field ids still find the columns.
 */
import type { IcebergType, NestedField } from '../schema/iceberg-type.ts';
import { lastColumnId, schemaToIcebergJson, type TableDefinition } from '../schema/table-schema.ts';

export interface SnapshotJson {
  'snapshot-id': number;
  'parent-snapshot-id'?: number;
  'sequence-number': number;
  'timestamp-ms': number;
  'manifest-list': string;
  summary: Record<string, string>;
  'schema-id': number;
  'first-row-id'?: number;
  'added-rows'?: number;
}

export interface TableMetadata {
  'format-version': 2 | 3;
  'table-uuid': string;
  location: string;
  'last-sequence-number': number;
  'last-updated-ms': number;
  'last-column-id': number;
  'current-schema-id': number;
  schemas: Record<string, unknown>[];
  'default-spec-id': number;
  'partition-specs': { 'spec-id': number; fields: unknown[] }[];
  'last-partition-id': number;
  'default-sort-order-id': number;
  'sort-orders': { 'order-id': number; fields: unknown[] }[];
  properties: Record<string, string>;
  'current-snapshot-id'?: number;
  refs: Record<string, { 'snapshot-id': number; type: 'branch' | 'tag' }>;
  snapshots: SnapshotJson[];
  'snapshot-log': { 'timestamp-ms': number; 'snapshot-id': number }[];
  'metadata-log': { 'timestamp-ms': number; 'metadata-file': string }[];
  'next-row-id'?: number;
  statistics: unknown[];
  'partition-statistics': unknown[];
}

interface NameMappingField {
  'field-id': number;
  names: string[];
  fields?: NameMappingField[];
}

function nestedMapping(t: IcebergType): NameMappingField[] | undefined {
  switch (t.kind) {
    case 'struct':
      return t.fields.map(fieldMapping);
    case 'list':
      return [withNested({ 'field-id': t.elementId, names: ['element'] }, t.element)];
    case 'map':
      return [
        withNested({ 'field-id': t.keyId, names: ['key'] }, t.key),
        withNested({ 'field-id': t.valueId, names: ['value'] }, t.value),
      ];
    default:
      return undefined;
  }
}

function withNested(m: NameMappingField, t: IcebergType): NameMappingField {
  const fields = nestedMapping(t);
  return fields ? { ...m, fields } : m;
}

function fieldMapping(f: NestedField): NameMappingField {
  return withNested({ 'field-id': f.id, names: [f.name] }, f.type);
}

export function nameMapping(fields: NestedField[]): string {
  return JSON.stringify(fields.map(fieldMapping));
}

export function initialMetadata(def: TableDefinition, location: string, now = Date.now()): TableMetadata {
  const m: TableMetadata = {
    'format-version': def.formatVersion,
    'table-uuid': def.tableUuid,
    location,
    'last-sequence-number': 0,
    'last-updated-ms': now,
    'last-column-id': lastColumnId(def.schema),
    'current-schema-id': def.schema.schemaId,
    schemas: [schemaToIcebergJson(def.schema)],
    'default-spec-id': 0,
    'partition-specs': [{ 'spec-id': 0, fields: [] }],
    'last-partition-id': 999,
    'default-sort-order-id': 0,
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    properties: {
      'write.format.default': 'parquet',
      'write.parquet.compression-codec': 'zstd',
      'write.delete.mode': 'merge-on-read',
      'write.update.mode': 'merge-on-read',
      'write.metadata.previous-versions-max': '20',
      'schema.name-mapping.default': nameMapping(def.schema.fields),
      'moonlink.table': def.name,
    },
    refs: {},
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
    statistics: [],
    'partition-statistics': [],
  };
  if (def.formatVersion === 2) m['current-snapshot-id'] = -1;
  if (def.formatVersion >= 3) m['next-row-id'] = 0;
  return m;
}

export function currentSnapshotOf(m: TableMetadata): SnapshotJson | undefined {
  const id = m['current-snapshot-id'];
  if (id === undefined || id === -1 || id === null) return undefined;
  return m.snapshots.find((s) => s['snapshot-id'] === id);
}

/** `…/metadata/v12.metadata.json` → 12. */
export function metadataVersion(key: string): number | undefined {
  const m = /\/metadata\/v(\d+)\.metadata\.json$/.exec(key);
  return m ? Number(m[1]) : undefined;
}
