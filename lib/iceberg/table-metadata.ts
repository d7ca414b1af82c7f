/**
 * Iceberg table metadata (`vN.metadata.json`, spec "Table Metadata" and Appendix C) for
 * tables in format v2 or v3: the JSON types, the first metadata of a new
 * table, parsing with the checks a reader owes the spec, and the default name mapping so engines
 * that ignore Parquet field ids still find the columns.
 */
import type { IcebergType, NestedField } from '../schema/iceberg-type.ts';
import {
  NO_PARTITION_FIELD_ID,
  type PartitionSpecJson,
  parsePartitionBy,
  specToIcebergJson,
} from '../schema/partition-spec.ts';
import { parseSortBy, type SortOrderJson, sortOrderToIcebergJson } from '../schema/sort-order.ts';
import { lastColumnId, schemaToIcebergJson, type TableDefinition } from '../schema/table-schema.ts';

export interface SnapshotJson {
  'snapshot-id': number;
  'parent-snapshot-id'?: number;
  'sequence-number': number;
  'timestamp-ms': number;
  'manifest-list': string;
  summary: Record<string, string>;
  'schema-id': number;
  /** v3: the first row id assigned to rows added by this snapshot (the table's next-row-id then). */
  'first-row-id'?: number;
  /** v3: the row ids this snapshot assigned (next-row-id grows by this much). */
  'added-rows'?: number;
}

export interface SnapshotRefJson {
  'snapshot-id': number;
  type: 'branch' | 'tag';
  'min-snapshots-to-keep'?: number;
  'max-snapshot-age-ms'?: number;
  'max-ref-age-ms'?: number;
}

export type { PartitionSpecJson, SortOrderJson };

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
  'partition-specs': PartitionSpecJson[];
  'last-partition-id': number;
  'default-sort-order-id': number;
  'sort-orders': SortOrderJson[];
  properties: Record<string, string>;
  /** Absent (v3) or -1 (v2, as Java writes it) when the table has no snapshot yet. */
  'current-snapshot-id'?: number | null;
  refs: Record<string, SnapshotRefJson>;
  snapshots: SnapshotJson[];
  'snapshot-log': { 'timestamp-ms': number; 'snapshot-id': number }[];
  'metadata-log': { 'timestamp-ms': number; 'metadata-file': string }[];
  /** v3 row lineage: higher than every assigned row id. */
  'next-row-id'?: number;
  statistics: unknown[];
  'partition-statistics': unknown[];
}

/** Unpartitioned spec and unsorted order (ids 0), as Iceberg creates them. */
export const UNPARTITIONED_SPEC: PartitionSpecJson = { 'spec-id': 0, fields: [] };
export const UNSORTED_ORDER: SortOrderJson = { 'order-id': 0, fields: [] };
export { NO_PARTITION_FIELD_ID };

export class MetadataParseError extends Error {}

// ------------------------------------------------------------------------------ name mapping

export interface NameMappingField {
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

/** `schema.name-mapping.default` (Appendix C, "Name Mapping Serialization"). */
export function nameMapping(fields: NestedField[]): string {
  return JSON.stringify(fields.map(fieldMapping));
}

/**
 * The name mapping of `fields` that also keeps every name the previous mapping gave the same
 * field id (a renamed column answers to its old name too), unless a current field has it.
 */
export function mergedNameMapping(previous: string | undefined, fields: NestedField[]): string {
  let old: NameMappingField[] = [];
  try {
    old = previous ? (JSON.parse(previous) as NameMappingField[]) : [];
  } catch {
    old = [];
  }
  const merge = (now: NameMappingField[], before: NameMappingField[]): NameMappingField[] => {
    const taken = new Set(now.flatMap((m) => m.names));
    return now.map((m) => {
      const b = before.find((x) => x['field-id'] === m['field-id']);
      if (!b) return m;
      const names = [...m.names, ...b.names.filter((n) => !m.names.includes(n) && !taken.has(n))];
      for (const n of names) taken.add(n);
      const nested = m.fields && b.fields ? merge(m.fields, b.fields) : m.fields;
      return nested ? { ...m, names, fields: nested } : { ...m, names };
    });
  };
  return JSON.stringify(merge(fields.map(fieldMapping), old));
}

// ------------------------------------------------------------------------------ creation

export interface InitialMetadataOptions {
  now?: number;
  /** `write.metadata.previous-versions-max`: how many earlier metadata files the log keeps. */
  previousVersionsMax?: number;
}

/** The metadata of a new table: no snapshot; partitioned and sorted as the definition says. */
export function initialMetadata(
  def: TableDefinition,
  location: string,
  options: InitialMetadataOptions = {},
): TableMetadata {
  // A partitioned table's first spec is spec 0 with its fields; a sorted table's order is 1.
  const parsed = parsePartitionBy(def.partitionBy ?? [], def.schema.fields, {
    specId: 0,
    lastPartitionId: NO_PARTITION_FIELD_ID,
  });
  const spec = specToIcebergJson(parsed.spec);
  const lastPartitionId = parsed.lastPartitionId;
  const order = sortOrderToIcebergJson(parseSortBy(def.sortBy ?? [], def.schema.fields));
  const m: TableMetadata = {
    'format-version': def.formatVersion,
    'table-uuid': def.tableUuid,
    location,
    'last-sequence-number': 0,
    'last-updated-ms': options.now ?? Date.now(),
    'last-column-id': lastColumnId(def.schema),
    'current-schema-id': def.schema.schemaId,
    schemas: [schemaToIcebergJson(def.schema)],
    'default-spec-id': spec['spec-id'],
    'partition-specs': [spec],
    'last-partition-id': lastPartitionId,
    'default-sort-order-id': order['order-id'],
    'sort-orders': [order],
    properties: {
      ...def.properties,
      'write.format.default': 'parquet',
      'write.parquet.compression-codec': 'zstd',
      'write.delete.mode': 'merge-on-read',
      'write.update.mode': 'merge-on-read',
      'write.merge.mode': 'merge-on-read',
      'write.metadata.previous-versions-max': String(options.previousVersionsMax ?? 20),
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
  // Java writes -1 for "no current snapshot" up to v2 and omits it from v3 on.
  if (def.formatVersion === 2) m['current-snapshot-id'] = -1;
  if (def.formatVersion >= 3) m['next-row-id'] = 0;
  return m;
}

// ------------------------------------------------------------------------------ reading

export function currentSnapshotId(m: TableMetadata): number | undefined {
  const id = m['current-snapshot-id'];
  return id === undefined || id === null || id === -1 ? undefined : id;
}

export function currentSnapshotOf(m: TableMetadata): SnapshotJson | undefined {
  const id = currentSnapshotId(m);
  return id === undefined ? undefined : m.snapshots.find((s) => s['snapshot-id'] === id);
}

/** The schema JSON the table currently uses. */
export function currentSchemaJson(m: TableMetadata): Record<string, unknown> {
  const s = m.schemas.find((x) => x['schema-id'] === m['current-schema-id']);
  if (!s) throw new MetadataParseError(`current schema ${m['current-schema-id']} is not in the metadata`);
  return s;
}

function need<T>(json: Record<string, unknown>, field: string, type: string, name: string): T {
  const v = json[field];
  const ok = type === 'array' ? Array.isArray(v) : typeof v === type && v !== null;
  if (!ok) throw new MetadataParseError(`${name}: "${field}" is missing or not a ${type}`);
  return v as T;
}

/**
 * Parses a metadata file. Only format v2 and v3 tables are read; fields a v2+ writer must write
 * are checked, optional lists default to empty.
 */
export function parseTableMetadata(text: string, name = 'table metadata'): TableMetadata {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new MetadataParseError(`${name}: not JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new MetadataParseError(`${name}: not a JSON object`);
  }
  const version = json['format-version'];
  if (version !== 2 && version !== 3) {
    throw new MetadataParseError(`${name}: format version ${String(version)} is not supported (2 and 3 are)`);
  }
  need<string>(json, 'table-uuid', 'string', name);
  need<string>(json, 'location', 'string', name);
  for (const f of [
    'last-sequence-number',
    'last-updated-ms',
    'last-column-id',
    'current-schema-id',
    'default-spec-id',
    'last-partition-id',
    'default-sort-order-id',
  ]) {
    need<number>(json, f, 'number', name);
  }
  for (const f of ['schemas', 'partition-specs', 'sort-orders']) need<unknown[]>(json, f, 'array', name);
  if (version === 3) need<number>(json, 'next-row-id', 'number', name);
  const m = json as unknown as TableMetadata;
  m.properties ??= {};
  m.refs ??= {};
  m.snapshots ??= [];
  m['snapshot-log'] ??= [];
  m['metadata-log'] ??= [];
  m.statistics ??= [];
  m['partition-statistics'] ??= [];
  for (const s of m.snapshots) {
    if (typeof s['snapshot-id'] !== 'number' || typeof s['manifest-list'] !== 'string') {
      throw new MetadataParseError(`${name}: a snapshot lacks "snapshot-id" or "manifest-list"`);
    }
    if (version === 3 && (typeof s['first-row-id'] !== 'number' || typeof s['added-rows'] !== 'number')) {
      throw new MetadataParseError(`${name}: v3 snapshot ${s['snapshot-id']} lacks first-row-id/added-rows`);
    }
  }
  const current = currentSnapshotId(m);
  if (current !== undefined && !m.snapshots.some((s) => s['snapshot-id'] === current)) {
    throw new MetadataParseError(`${name}: current snapshot ${current} is not among the snapshots`);
  }
  currentSchemaJson(m);
  return m;
}

export function serializeTableMetadata(m: TableMetadata): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m, null, 1));
}
