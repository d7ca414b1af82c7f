/**
 * Partition tuples in manifests: the Avro type of `data_file.partition` (field 102) for a
 * partition type, tuples to and from Avro records, and the manifest list's per-field summaries
 * (`partitions`: contains_null, contains_nan, lower/upper bound) that let engines skip whole
 * manifests. Avro types follow what Java writes (`day` as int/date, timestamps as long with
 * timestamp-micros, uuid as fixed[16], decimals as the fixed width of their precision).
 */
import type { IcebergType, NestedField } from '../schema/iceberg-type.ts';
import type { PartitionTuple } from '../schema/partition-spec.ts';
import { compareScalars, type Value } from '../schema/values.ts';
import { deserializeValue, serializeValue } from './stats.ts';

/** Bytes of a fixed that holds any unscaled value of `precision` digits. */
function decimalWidth(precision: number): number {
  let n = 1;
  while (2 ** (8 * n - 1) <= 10 ** precision) n++;
  return n;
}

function avroType(t: IcebergType, fieldId: number): unknown {
  switch (t.kind) {
    case 'boolean':
    case 'int':
    case 'long':
    case 'float':
    case 'double':
    case 'string':
      return t.kind;
    case 'binary':
      return 'bytes';
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'time':
      return { type: 'long', logicalType: 'time-micros' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false };
    case 'timestamptz':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true };
    case 'uuid':
      return { type: 'fixed', name: `uuid_fixed_${fieldId}`, size: 16, logicalType: 'uuid' };
    case 'fixed':
      return { type: 'fixed', name: `fixed_${fieldId}`, size: t.length };
    case 'decimal':
      return {
        type: 'fixed',
        name: `decimal_${fieldId}`,
        size: decimalWidth(t.precision),
        logicalType: 'decimal',
        precision: t.precision,
        scale: t.scale,
      };
    default:
      throw new TypeError(`a ${t.kind} cannot be a partition value`);
  }
}

/** The Avro fields of `data_file.partition` (record `r102`), one optional field per partition field. */
export function partitionAvroFields(partType: NestedField[]): Record<string, unknown>[] {
  return partType.map((f) => ({
    name: f.name,
    type: ['null', avroType(f.type, f.id)],
    default: null,
    'field-id': f.id,
  }));
}

function toAvro(t: IcebergType, v: Value): unknown {
  if (v === null || v === undefined) return null;
  switch (t.kind) {
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return Number(v as bigint);
    case 'uuid':
    case 'binary':
    case 'fixed':
      return serializeValue(t, v);
    case 'decimal': {
      const size = decimalWidth(t.precision);
      const b = Buffer.alloc(size);
      let x = BigInt.asUintN(8 * size, v as bigint);
      for (let i = size - 1; i >= 0; i--) {
        b[i] = Number(x & 0xffn);
        x >>= 8n;
      }
      return b;
    }
    default:
      return v;
  }
}

function fromAvro(t: IcebergType, v: unknown): Value {
  if (v === null || v === undefined) return null;
  switch (t.kind) {
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return BigInt(v as number);
    case 'uuid':
    case 'binary':
    case 'fixed':
    case 'decimal':
      return deserializeValue(t, v as Uint8Array);
    default:
      return v as Value;
  }
}

/** A tuple as the Avro record of `data_file.partition`. */
export function partitionToAvro(partType: NestedField[], tuple: PartitionTuple): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  partType.forEach((f, i) => {
    r[f.name] = toAvro(f.type, tuple[i]);
  });
  return r;
}

/** The tuple of a decoded `data_file.partition` record (fields matched by name). */
export function partitionFromAvro(partType: NestedField[], record: unknown): PartitionTuple {
  const r = (record ?? {}) as Record<string, unknown>;
  return partType.map((f) => fromAvro(f.type, r[f.name]));
}

export interface PartitionFieldSummary {
  contains_null: boolean;
  contains_nan: boolean | null;
  lower_bound: Buffer | null;
  upper_bound: Buffer | null;
}

/** The manifest list's `partitions` of a manifest whose entries have these tuples. */
export function partitionSummaries(
  partType: NestedField[],
  tuples: readonly PartitionTuple[],
): PartitionFieldSummary[] {
  return partType.map((f, i) => {
    let containsNull = false;
    let containsNan = false;
    let lo: Value;
    let hi: Value;
    const floating = f.type.kind === 'float' || f.type.kind === 'double';
    for (const t of tuples) {
      const v = t[i];
      if (v === null || v === undefined) {
        containsNull = true;
        continue;
      }
      if (floating && Number.isNaN(v)) {
        containsNan = true;
        continue;
      }
      if (lo === undefined || compareScalars(v, lo) < 0) lo = v;
      if (hi === undefined || compareScalars(v, hi) > 0) hi = v;
    }
    return {
      contains_null: containsNull,
      contains_nan: floating ? containsNan : null,
      lower_bound: lo === undefined ? null : (serializeValue(f.type, lo) ?? null),
      upper_bound: hi === undefined ? null : (serializeValue(f.type, hi) ?? null),
    };
  });
}
