/**
 * Values of one schema in another (a schema change between a row's write and its use): fields
 * are matched by Iceberg field id, so a renamed column keeps its value, an added one is null
 * (or its v3 `initial-default`), a dropped one is left out, and a promoted one is converted
 * (int → long; float → double and decimal precision keep their values).
 */
import type { IcebergType, NestedField } from './iceberg-type.ts';
import type { TableSchema } from './table-schema.ts';
import { decoderFor, type Value } from './values.ts';

/** What a row written before field `f` existed reads as in it. */
export function defaultOf(f: NestedField): Value {
  return f.initialDefault === undefined ? null : decoderFor(f.type)(f.initialDefault, f.name);
}

/** A value of type `from` (a file's or an older schema's) in the type `to`. */
export function convertValue(from: IcebergType, to: IcebergType, v: Value): Value {
  if (v === null || v === undefined) return null;
  if (to.kind === 'long' && from.kind === 'int') return BigInt(v as number);
  if (to.kind === 'struct' && from.kind === 'struct') {
    const values = v as Value[];
    return to.fields.map((tf) => {
      const at = from.fields.findIndex((ff) => ff.id === tf.id);
      return at < 0 ? defaultOf(tf) : convertValue(from.fields[at].type, tf.type, values[at]);
    });
  }
  if (to.kind === 'list' && from.kind === 'list')
    return (v as Value[]).map((x) => convertValue(from.element, to.element, x));
  return v;
}

/** Maps a row of `from`'s columns (schema order) to `to`'s. */
export function rowMapper(from: TableSchema, to: TableSchema): (values: Value[]) => Value[] {
  const plan = to.fields.map((tf) => {
    const at = from.fields.findIndex((ff) => ff.id === tf.id);
    return { at, tf, from: at < 0 ? undefined : from.fields[at].type, dflt: at < 0 ? defaultOf(tf) : null };
  });
  return (values) =>
    plan.map((p) => (p.at < 0 ? p.dflt : convertValue(p.from!, p.tf.type, values[p.at] ?? null)));
}
