/**
 * A table schema as Iceberg table metadata writes it (`schemas[]` entries), and back. Kept
 * apart from table-schema.ts (zod, the request checks) so readers load only this.
 */

import { SchemaError } from './errors.ts';
import { fieldFromIcebergJson, fieldToIcebergJson, highestFieldId } from './iceberg-type.ts';
import type { TableSchema } from './table-schema.ts';

export function identifierFieldIds(schema: TableSchema): number[] {
  return schema.primaryKey.map((k) => schema.fields.find((f) => f.name === k)!.id);
}

/** The schema as Iceberg metadata JSON (`schemas[]` entry). */
export function schemaToIcebergJson(schema: TableSchema): Record<string, unknown> {
  const json: Record<string, unknown> = {
    type: 'struct',
    'schema-id': schema.schemaId,
    fields: schema.fields.map(fieldToIcebergJson),
  };
  if (schema.primaryKey.length > 0) json['identifier-field-ids'] = identifierFieldIds(schema);
  return json;
}

export function schemaFromIcebergJson(json: Record<string, unknown>): TableSchema {
  const fields = (json.fields as Record<string, unknown>[]).map(fieldFromIcebergJson);
  const ids = (json['identifier-field-ids'] as number[] | undefined) ?? [];
  return {
    schemaId: (json['schema-id'] as number) ?? 0,
    fields,
    primaryKey: ids.map((id) => {
      const f = fields.find((x) => x.id === id);
      if (!f) throw new SchemaError(`identifier field id ${id} is not a top-level column`);
      return f.name;
    }),
  };
}

export function lastColumnId(schema: TableSchema): number {
  return highestFieldId(schema.fields);
}
