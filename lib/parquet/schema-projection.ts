/**
 * Reading a file in the table's current schema. Columns are matched by Iceberg field id (every
 * file we write carries `PARQUET:field_id`), never by name or position, so a file written
 * before a schema change reads correctly after it: an added column reads as null (or its v3
 * `initial-default`), a renamed one keeps its values, a dropped one is left out, a promoted one
 * (int → long, float → double, decimal precision up) is converted. A file already in the
 * current schema is passed through as it is (the common case costs a comparison per column).
 */
import * as arrow from 'apache-arrow';
import { buildData, FIELD_ID, readData } from '../columns/arrow-convert.ts';
import { convertValue as convert, defaultOf } from '../schema/evolve-values.ts';
import type { IcebergType, NestedField } from '../schema/iceberg-type.ts';
import type { Value } from '../schema/values.ts';

function idOf(f: arrow.Field): number | undefined {
  const v = f.metadata.get(FIELD_ID);
  return v === undefined ? undefined : Number(v);
}

/**
 * The Iceberg type of a file's column, as the target type reads it: the same kind unless the
 * file holds the type the target was promoted from; struct fields as the file has them.
 */
function fileTypeOf(target: IcebergType, f: arrow.Field): IcebergType {
  const t = f.type;
  switch (target.kind) {
    case 'long':
      return t.typeId === arrow.Type.Int && (t as arrow.Int).bitWidth === 32 ? { kind: 'int' } : target;
    case 'double':
      return t.typeId === arrow.Type.Float && (t as arrow.Float).precision !== arrow.Precision.DOUBLE
        ? { kind: 'float' }
        : target;
    case 'decimal': {
      const p = (t as arrow.Decimal).precision;
      return typeof p === 'number' && p !== target.precision ? { ...target, precision: p } : target;
    }
    case 'struct': {
      const fields = (t as arrow.Struct).children.map((c): NestedField => {
        const id = idOf(c) ?? -1;
        const match = target.fields.find((x) => x.id === id);
        return {
          id,
          name: c.name,
          required: !c.nullable,
          type: match ? fileTypeOf(match.type, c) : standaloneType(c),
        };
      });
      return { kind: 'struct', fields };
    }
    case 'list': {
      const child = (t as arrow.List).children[0];
      return child ? { ...target, element: fileTypeOf(target.element, child) } : target;
    }
    default:
      return target;
  }
}

/** The Iceberg type of a file's column the target schema does not have (read, then dropped). */
function standaloneType(f: arrow.Field): IcebergType {
  const t = f.type;
  switch (t.typeId) {
    case arrow.Type.Bool:
      return { kind: 'boolean' };
    case arrow.Type.Int:
      return { kind: (t as arrow.Int).bitWidth === 32 ? 'int' : 'long' };
    case arrow.Type.Float:
      return { kind: (t as arrow.Float).precision === arrow.Precision.DOUBLE ? 'double' : 'float' };
    case arrow.Type.Struct:
      return {
        kind: 'struct',
        fields: (t as arrow.Struct).children.map((c) => ({
          id: idOf(c) ?? -1,
          name: c.name,
          required: !c.nullable,
          type: standaloneType(c),
        })),
      };
    default:
      // Only its position matters (a struct's dropped field is skipped); strings read as bytes.
      return { kind: 'binary' };
  }
}

function sameType(a: IcebergType, b: IcebergType): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'decimal':
      return a.precision === (b as typeof a).precision && a.scale === (b as typeof a).scale;
    case 'struct': {
      const bf = (b as typeof a).fields;
      return (
        a.fields.length === bf.length &&
        a.fields.every((f, i) => f.id === bf[i].id && f.name === bf[i].name && sameType(f.type, bf[i].type))
      );
    }
    case 'list':
      return sameType(a.element, (b as typeof a).element);
    default:
      return true;
  }
}

function constantData(f: NestedField, n: number): arrow.Data {
  return buildData(f.type, new Array<Value>(n).fill(defaultOf(f)));
}

/**
 * A record batch's columns in the order and types of `fields` (see the file comment). The
 * batch's own data where nothing changed.
 */
export function projectBatch(batch: arrow.RecordBatch, fields: NestedField[]): arrow.Data[] {
  const fileFields = batch.schema.fields;
  const children = batch.data.children;
  const byId = new Map<number, number>();
  fileFields.forEach((f, i) => {
    const id = idOf(f);
    if (id !== undefined) byId.set(id, i);
  });
  // A file written without field ids (not by us) is matched by name, as Iceberg's name mapping does.
  const byName = byId.size === 0 ? new Map(fileFields.map((f, i) => [f.name, i])) : undefined;
  return fields.map((target) => {
    const at = byName ? byName.get(target.name) : byId.get(target.id);
    if (at === undefined) return constantData(target, batch.numRows);
    const d = children[at];
    const fileType = fileTypeOf(target.type, fileFields[at]);
    if (sameType(fileType, target.type)) return d;
    const values = readData(fileType, d);
    return buildData(
      target.type,
      values.map((v) => convert(fileType, target.type, v)),
    );
  });
}

/** Whether `projectBatch` would pass every column through (the file is in the schema). */
export function inSchema(batch: arrow.RecordBatch, fields: NestedField[]): boolean {
  const fileFields = batch.schema.fields;
  if (fileFields.length !== fields.length) return false;
  return fields.every((f, i) => {
    const id = idOf(fileFields[i]);
    const same = id === undefined ? fileFields[i].name === f.name : id === f.id;
    return same && sameType(fileTypeOf(f.type, fileFields[i]), f.type);
  });
}
