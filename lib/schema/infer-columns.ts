/**
 * Columns for new fields in records (tables created with `"schemaEvolution": "add-columns"`,
 * as Firehose's automatic schema evolution): each top-level field a row names that the table
 * does not have becomes a nullable column, its type inferred from the JSON values: a string is
 * `string`, an integer `long`, any other number `double`, true/false `boolean`, an object a
 * `struct` of its fields, an array a `list` of its elements' type. Only the field's first
 * non-null value decides; later values must fit it (or the write is refused as usual).
 */
import { isInteger, parse } from 'lossless-json';
import { COLUMN_NAME_PATTERN } from './column-name.ts';
import type { SchemaChange } from './schema-change.ts';
import type { TableSchema } from './table-schema.ts';

/** A number as its text says: integer or not (1.0 is a double). */
class NumberText {
  constructor(readonly integer: boolean) {}
}

import { InferenceError } from './errors.ts';

export { InferenceError };

const MAX_DEPTH = 16;

function typeOf(v: unknown, field: string, depth: number): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (depth > MAX_DEPTH) throw new InferenceError(`field "${field}" nests too deeply to infer its type`);
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (v instanceof NumberText) return v.integer ? 'long' : 'double';
  if (Array.isArray(v)) {
    for (const x of v) {
      const t = typeOf(x, field, depth + 1);
      if (t) return `list<${t}>`;
    }
    return undefined;
  }
  if (typeof v === 'object') {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (!COLUMN_NAME_PATTERN.test(k))
        throw new InferenceError(`field "${field}.${k}": not a usable column name`);
      const t = typeOf(x, `${field}.${k}`, depth + 1);
      if (t) parts.push(`${k}:${t}`);
    }
    return parts.length > 0 ? `struct<${parts.join(',')}>` : undefined;
  }
  return undefined;
}

/**
 * The add-column changes a JSON write body (`{"ops":[{"op","row"}...]}`) needs: one per new
 * top-level field, in order of first appearance. Throws {@link InferenceError} for a new field
 * whose type cannot be told (only nulls, empty objects or arrays) or whose name is not usable.
 */
export function newColumnsOf(schema: TableSchema, text: string): SchemaChange[] {
  let body: unknown;
  try {
    body = parse(text, null, (t) => new NumberText(isInteger(t)));
  } catch {
    return []; // not JSON: the decoder reports it
  }
  const ops = (body as { ops?: unknown } | null)?.ops;
  if (!Array.isArray(ops)) return [];
  const known = new Set(schema.fields.map((f) => f.name));
  const found = new Map<string, string | undefined>();
  for (const o of ops) {
    const row = (o as { row?: unknown } | null)?.row;
    if (row === null || typeof row !== 'object' || Array.isArray(row)) continue;
    for (const [k, v] of Object.entries(row as Record<string, unknown>)) {
      if (known.has(k) || found.get(k) !== undefined) continue;
      if (!COLUMN_NAME_PATTERN.test(k))
        throw new InferenceError(`field "${k}" is not a usable column name (letters, digits, underscores)`);
      found.set(k, typeOf(v, k, 0));
    }
  }
  const changes: SchemaChange[] = [];
  for (const [name, type] of found) {
    if (type === undefined)
      throw new InferenceError(
        `field "${name}" is new and its type cannot be inferred from its values (null, or empty); add the column first (POST /tables/{name}/schema)`,
      );
    changes.push({ action: 'add-column', name, type });
  }
  return changes;
}
