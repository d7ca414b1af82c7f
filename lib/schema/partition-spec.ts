/**
 * Partition specs (spec, "Partitioning"): the `partitionBy` of the API checked against a
 * schema, the Iceberg JSON of a spec, the partition tuple of a row, and its API form. Partition
 * field ids start at 1000; a field with the same source and transform as in an earlier spec
 * keeps that spec's id (as Iceberg's spec evolution does).
 */
import { z } from 'zod';
import { SchemaError } from './errors.ts';
import type { IcebergType, NestedField } from './iceberg-type.ts';
import {
  defaultFieldName,
  parseTransform,
  resultType,
  type Transform,
  transformFunction,
  transformMisfit,
  transformText,
} from './partition-transform.ts';
import { formatDate, formatTimestamp } from './temporal.ts';
import { canonicalScalar, formatDecimal, keyFromParts, type Value } from './values.ts';

export interface PartitionField {
  sourceId: number;
  fieldId: number;
  name: string;
  transform: Transform;
}

export interface PartitionSpec {
  specId: number;
  fields: PartitionField[];
}

export const UNPARTITIONED: PartitionSpec = { specId: 0, fields: [] };
/** Partition field ids start at 1000, so a table that never had one records 999. */
export const NO_PARTITION_FIELD_ID = 999;

/** A partition's values, in the order of its spec's fields. */
export type PartitionTuple = Value[];

export const partitionByBody = z
  .array(
    z.strictObject({
      column: z.string().min(1),
      transform: z.string().optional(),
      name: z.string().min(1).optional(),
    }),
  )
  .max(16);

export type PartitionByItem = z.infer<typeof partitionByBody>[number];

export function isPartitioned(spec: PartitionSpec): boolean {
  return spec.fields.length > 0;
}

/** A column by name, or a nested struct field by dotted path (`address.zip`). */
export function findColumn(fields: NestedField[], path: string): NestedField | undefined {
  let scope = fields;
  let found: NestedField | undefined;
  for (const part of path.split('.')) {
    found = scope.find((f) => f.name === part);
    if (!found) return undefined;
    scope = found.type.kind === 'struct' ? found.type.fields : [];
  }
  return found;
}

/** The dotted path of field `id` (top-level or inside structs), or undefined. */
export function columnPath(fields: NestedField[], id: number): string | undefined {
  for (const f of fields) {
    if (f.id === id) return f.name;
    if (f.type.kind === 'struct') {
      const inner = columnPath(f.type.fields, id);
      if (inner) return `${f.name}.${inner}`;
    }
  }
  return undefined;
}

/**
 * `fields` and, after them, the top-level fields of earlier schemas that are gone from it: an
 * older partition spec may partition by a column dropped since (its files keep their tuples).
 */
export function withDroppedFields(
  fields: NestedField[],
  earlier: Iterable<{ fields: NestedField[] }>,
): NestedField[] {
  const out = [...fields];
  for (const s of earlier) for (const f of s.fields) if (!fieldById(out, f.id)) out.push(f);
  return out;
}

/** The field with id `id` anywhere in structs. */
export function fieldById(fields: NestedField[], id: number): NestedField | undefined {
  for (const f of fields) {
    if (f.id === id) return f;
    if (f.type.kind === 'struct') {
      const inner = fieldById(f.type.fields, id);
      if (inner) return inner;
    }
  }
  return undefined;
}

export interface SpecContext {
  specId: number;
  lastPartitionId: number;
  /** Earlier specs of the table: their field ids are reused for the same source and transform. */
  previous?: PartitionSpec[];
}

/**
 * A spec from the API's `partitionBy` (`[{column, transform, name?}]`, transform default
 * `identity`). Throws {@link SchemaError} (a 400) naming the item at fault.
 */
export function parsePartitionBy(
  items: PartitionByItem[],
  fields: NestedField[],
  ctx: SpecContext,
  where = 'partitionBy',
): { spec: PartitionSpec; lastPartitionId: number } {
  let last = ctx.lastPartitionId;
  const out: PartitionField[] = [];
  const names = new Set<string>();
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const at = `${where}[${i}]`;
    const source = findColumn(fields, item.column);
    if (!source) throw new SchemaError(`${at}: unknown column "${item.column}"`);
    const text = item.transform ?? 'identity';
    const transform = parseTransform(text);
    if (!transform) {
      throw new SchemaError(
        `${at}: unknown transform "${text}" (use identity, year, month, day, hour, bucket[N], truncate[W] or void)`,
      );
    }
    const misfit = transformMisfit(transform, source.type);
    if (misfit) throw new SchemaError(`${at}: ${misfit}`);
    const same = `${source.id}:${transformText(transform)}`;
    if (seen.has(same)) throw new SchemaError(`${at}: "${item.column}" is already partitioned by ${text}`);
    seen.add(same);
    const name = item.name ?? defaultFieldName(item.column.replace(/\./g, '_'), transform);
    if (names.has(name)) throw new SchemaError(`${at}: partition field name "${name}" is used twice`);
    const clash = fields.find((f) => f.name === name);
    if (clash && !(transform.kind === 'identity' && clash.id === source.id)) {
      throw new SchemaError(`${at}: partition field name "${name}" is a column's name; give it a "name"`);
    }
    names.add(name);
    const earlier = ctx.previous
      ?.flatMap((s) => s.fields)
      .find((f) => f.sourceId === source.id && transformText(f.transform) === transformText(transform));
    const fieldId = earlier?.fieldId ?? ++last;
    out.push({ sourceId: source.id, fieldId, name, transform });
  });
  return { spec: { specId: ctx.specId, fields: out }, lastPartitionId: last };
}

/** The API form of a spec (what `GET /tables/{name}` shows and `partitionBy` takes). */
export function describePartitioning(spec: PartitionSpec, fields: NestedField[]): PartitionByItem[] {
  return spec.fields.map((f) => ({
    column: columnPath(fields, f.sourceId) ?? `#${f.sourceId}`,
    transform: transformText(f.transform),
    name: f.name,
  }));
}

export interface PartitionSpecJson {
  'spec-id': number;
  fields: { name: string; transform: string; 'source-id': number; 'field-id': number }[];
}

export function specToIcebergJson(spec: PartitionSpec): PartitionSpecJson {
  return {
    'spec-id': spec.specId,
    fields: spec.fields.map((f) => ({
      name: f.name,
      transform: transformText(f.transform),
      'source-id': f.sourceId,
      'field-id': f.fieldId,
    })),
  };
}

export function specFromIcebergJson(json: unknown): PartitionSpec {
  const j = json as { 'spec-id'?: unknown; fields?: unknown };
  if (typeof j?.['spec-id'] !== 'number' || !Array.isArray(j.fields))
    throw new SchemaError('a partition spec needs a spec-id and fields');
  return {
    specId: j['spec-id'],
    fields: j.fields.map((raw, i) => {
      const f = raw as Record<string, unknown>;
      const transform = typeof f.transform === 'string' ? parseTransform(f.transform) : undefined;
      const sourceId = f['source-id'] ?? (Array.isArray(f['source-ids']) ? f['source-ids'][0] : undefined);
      if (
        !transform ||
        typeof sourceId !== 'number' ||
        typeof f['field-id'] !== 'number' ||
        typeof f.name !== 'string'
      )
        throw new SchemaError(`partition spec ${j['spec-id']}: field ${i} is not one this service can write`);
      return { sourceId, fieldId: f['field-id'], name: f.name, transform };
    }),
  };
}

/** The partition type: one optional field per partition field, with its result type. */
export function partitionType(spec: PartitionSpec, fields: NestedField[]): NestedField[] {
  return spec.fields.map((p) => {
    const source = fieldById(fields, p.sourceId);
    if (!source)
      throw new SchemaError(`partition field "${p.name}": its source column ${p.sourceId} is gone`);
    return { id: p.fieldId, name: p.name, required: false, type: resultType(p.transform, source.type) };
  });
}

/**
 * What computes a row's partition tuple: each partition field's transform, over the value of
 * its source column (`valueOf(sourceId)` hands a getter for a row's value of that column).
 */
export function partitioner(
  spec: PartitionSpec,
  fields: NestedField[],
): {
  sources: number[];
  /** Per partition field, its transform (of the source value). */
  transforms: ((v: Value) => Value)[];
  apply: (sourceValues: Value[]) => PartitionTuple;
} {
  const fns = spec.fields.map((p) => {
    const source = fieldById(fields, p.sourceId);
    if (!source)
      throw new SchemaError(`partition field "${p.name}": its source column ${p.sourceId} is gone`);
    return transformFunction(p.transform, source.type);
  });
  return {
    sources: spec.fields.map((p) => p.sourceId),
    transforms: fns,
    apply: (values) => fns.map((f, i) => f(values[i])),
  };
}

/** A string that is the same exactly for equal tuples (grouping rows by partition). */
export function tupleKey(t: PartitionTuple): string {
  return keyFromParts(t.map((v) => (v === null || v === undefined ? '\u0000' : `=${canonicalScalar(v)}`)));
}

/** A partition value as JSON (the snapshot API's `partition`): Iceberg's value, readable. */
export function partitionValueJson(type: IcebergType, v: Value): unknown {
  if (v === null || v === undefined) return null;
  switch (type.kind) {
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const n = v as bigint;
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(n)
        : String(n);
    }
    case 'decimal':
      return formatDecimal(v as bigint, type.scale);
    case 'binary':
    case 'fixed':
      return Buffer.from(v as Uint8Array).toString('base64');
    default:
      return v;
  }
}

/** `{"placed_at_day": 19844, "id_bucket": 3}`: a tuple by partition field name. */
export function partitionRecord(
  spec: PartitionSpec,
  fields: NestedField[],
  tuple: PartitionTuple,
): Record<string, unknown> {
  const types = partitionType(spec, fields);
  const out: Record<string, unknown> = {};
  types.forEach((t, i) => {
    out[t.name] = partitionValueJson(t.type, tuple[i]);
  });
  return out;
}

/** A readable form of a tuple for logs and errors (`placed_at_day=2024-05-01/id_bucket=3`). */
export function partitionPath(spec: PartitionSpec, fields: NestedField[], tuple: PartitionTuple): string {
  const types = partitionType(spec, fields);
  return types
    .map((t, i) => {
      const v = tuple[i];
      if (v === null || v === undefined) return `${t.name}=null`;
      if (t.type.kind === 'date') return `${t.name}=${formatDate(v as number)}`;
      if (t.type.kind === 'timestamp' || t.type.kind === 'timestamptz')
        return `${t.name}=${formatTimestamp(v as bigint, t.type.kind === 'timestamptz')}`;
      return `${t.name}=${String(partitionValueJson(t.type, v))}`;
    })
    .join('/');
}
