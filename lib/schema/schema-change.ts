/**
 * Schema evolution: the changes `POST /tables/{name}/schema` takes, checked and applied as a
 * whole to a table's schema (Iceberg's rules: a new schema id; new field ids above the table's
 * `last-column-id`, never reused; only the promotions int → long, float → double and
 * decimal(P,S) → decimal(P',S) with P' > P). Pure: no I/O, nothing changed on a bad request.
 */

import { COLUMN_NAME_PATTERN, MAX_COLUMNS } from './column-name.ts';
import {
  assignFieldIds,
  highestFieldId,
  type IcebergType,
  isPrimitive,
  type NestedField,
  parseType,
  TypeParseError,
  typeName,
} from './iceberg-type.ts';
import type { FormatVersion, TableSchema } from './table-schema.ts';
import { decoderFor, encoderFor, ValueError } from './values.ts';

export type SchemaChange =
  | {
      action: 'add-column';
      name: string;
      type: string;
      nullable?: boolean;
      /** v3 tables: the value rows written before the column existed read as (a JSON scalar). */
      initialDefault?: string | number | boolean;
    }
  | { action: 'drop-column'; name: string }
  | { action: 'rename-column'; name: string; newName: string }
  | { action: 'widen-column'; name: string; type: string }
  | { action: 'make-nullable'; name: string };

import { SchemaChangeError } from './errors.ts';

export { SchemaChangeError };

export interface EvolvedSchema {
  schema: TableSchema;
  /** The table's `last-column-id` after the changes (never goes down). */
  lastColumnId: number;
}

export const MAX_SCHEMA_CHANGES = 100;

const ACTIONS = new Set(['add-column', 'drop-column', 'rename-column', 'widen-column', 'make-nullable']);
const KEYS: Record<string, string[]> = {
  'add-column': ['action', 'name', 'type', 'nullable', 'initialDefault'],
  'drop-column': ['action', 'name'],
  'rename-column': ['action', 'name', 'newName'],
  'widen-column': ['action', 'name', 'type'],
  'make-nullable': ['action', 'name'],
};

/** Checks the shape of a request body `{"changes": [...]}`. Throws {@link SchemaChangeError}. */
export function parseSchemaChanges(body: unknown): SchemaChange[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new SchemaChangeError('the body must be a JSON object {"changes": [...]}', 0);
  for (const k of Object.keys(body))
    if (k !== 'changes')
      throw new SchemaChangeError(`unknown property "${k}"; expected {"changes": [...]}`, 0);
  const changes = (body as { changes?: unknown }).changes;
  if (!Array.isArray(changes) || changes.length === 0)
    throw new SchemaChangeError('"changes" must be a non-empty array', 0);
  if (changes.length > MAX_SCHEMA_CHANGES)
    throw new SchemaChangeError(`too many changes: ${changes.length} > ${MAX_SCHEMA_CHANGES}`, 0);
  return changes.map((c, i) => {
    if (c === null || typeof c !== 'object' || Array.isArray(c))
      throw new SchemaChangeError('expected an object {"action": ..., "name": ...}', i);
    const o = c as Record<string, unknown>;
    if (typeof o.action !== 'string' || !ACTIONS.has(o.action))
      throw new SchemaChangeError(
        `"action" must be one of ${[...ACTIONS].map((a) => `"${a}"`).join(', ')} (got ${JSON.stringify(o.action) ?? 'nothing'})`,
        i,
      );
    for (const k of Object.keys(o))
      if (!KEYS[o.action].includes(k))
        throw new SchemaChangeError(`unknown property "${k}" for ${o.action}`, i);
    if (typeof o.name !== 'string' || o.name === '')
      throw new SchemaChangeError('"name" must be a column name', i);
    if ((o.action === 'add-column' || o.action === 'widen-column') && typeof o.type !== 'string')
      throw new SchemaChangeError('"type" must be a type name such as "long" or "decimal(12,2)"', i);
    if (o.action === 'rename-column' && typeof o.newName !== 'string')
      throw new SchemaChangeError('"newName" must be a column name', i);
    if (o.nullable !== undefined && typeof o.nullable !== 'boolean')
      throw new SchemaChangeError('"nullable" must be true or false', i);
    const d = o.initialDefault;
    if (d !== undefined && typeof d !== 'string' && typeof d !== 'number' && typeof d !== 'boolean')
      throw new SchemaChangeError('"initialDefault" must be a JSON string, number or boolean', i);
    return o as unknown as SchemaChange;
  });
}

/** A dotted path's parent field list and last name (`address.zip` → address's fields, "zip"). */
function locate(
  fields: NestedField[],
  path: string,
  i: number,
): { parent: NestedField[]; name: string; topLevel: boolean } {
  const parts = path.split('.');
  let parent = fields;
  for (let k = 0; k < parts.length - 1; k++) {
    const f = parent.find((x) => x.name === parts[k]);
    if (!f) throw new SchemaChangeError(`unknown column "${parts.slice(0, k + 1).join('.')}"`, i);
    if (f.type.kind !== 'struct')
      throw new SchemaChangeError(
        `"${parts.slice(0, k + 1).join('.')}" is a ${typeName(f.type)}, not a struct`,
        i,
      );
    parent = f.type.fields;
  }
  return { parent, name: parts[parts.length - 1], topLevel: parts.length === 1 };
}

function existing(
  fields: NestedField[],
  path: string,
  i: number,
): { parent: NestedField[]; at: number; topLevel: boolean } {
  const { parent, name, topLevel } = locate(fields, path, i);
  const at = parent.findIndex((f) => f.name === name);
  if (at < 0) throw new SchemaChangeError(`unknown column "${path}"`, i);
  return { parent, at, topLevel };
}

function parseTypeAt(text: string, i: number): IcebergType {
  try {
    return parseType(text);
  } catch (e) {
    if (e instanceof TypeParseError) throw new SchemaChangeError(e.message, i);
    throw e;
  }
}

/** Whether Iceberg allows promoting a column of type `from` to `to` (spec: "Schema Evolution"). */
export function isAllowedPromotion(from: IcebergType, to: IcebergType): boolean {
  if (from.kind === 'int' && to.kind === 'long') return true;
  if (from.kind === 'float' && to.kind === 'double') return true;
  return (
    from.kind === 'decimal' &&
    to.kind === 'decimal' &&
    to.scale === from.scale &&
    to.precision > from.precision
  );
}

function deepCopy(fields: NestedField[]): NestedField[] {
  return JSON.parse(JSON.stringify(fields)) as NestedField[];
}

/**
 * Applies `changes` in order to `schema` and returns the new schema (id + 1) and
 * `last-column-id`. All or nothing: throws {@link SchemaChangeError} naming the first bad change.
 */
export function applySchemaChanges(
  schema: TableSchema,
  lastColumnId: number,
  changes: SchemaChange[],
  formatVersion: FormatVersion,
): EvolvedSchema {
  const fields = deepCopy(schema.fields);
  let primaryKey = [...schema.primaryKey];
  let nextId = Math.max(lastColumnId, highestFieldId(schema.fields)) + 1;
  changes.forEach((c, i) => {
    switch (c.action) {
      case 'add-column': {
        const { parent, name, topLevel } = locate(fields, c.name, i);
        if (!COLUMN_NAME_PATTERN.test(name))
          throw new SchemaChangeError(
            `invalid column name ${JSON.stringify(name)}: use letters, digits and underscores, not starting with a digit`,
            i,
          );
        if (parent.some((f) => f.name === name))
          throw new SchemaChangeError(`column "${c.name}" already exists`, i);
        if (c.nullable === false)
          throw new SchemaChangeError(
            'a new column must be nullable (rows written before it have no value); leave "nullable" out',
            i,
          );
        const type = parseTypeAt(c.type, i);
        const field: NestedField = { id: 0, name, required: false, type };
        if (c.initialDefault !== undefined) {
          if (formatVersion < 3)
            throw new SchemaChangeError(
              '"initialDefault" needs a format version 3 table (Iceberg v3 defaults)',
              i,
            );
          if (!isPrimitive(type) || type.kind === 'binary' || type.kind === 'fixed')
            throw new SchemaChangeError(
              `"initialDefault" is not supported for a ${typeName(type)} column`,
              i,
            );
          try {
            // The value as a write would give it, stored in the same JSON form.
            const v = decoderFor(type)(c.initialDefault, 'initialDefault');
            field.initialDefault = JSON.parse(encoderFor(type)(v)) as string | number | boolean;
          } catch (e) {
            if (e instanceof ValueError) throw new SchemaChangeError(e.message, i);
            throw e;
          }
        }
        nextId = assignFieldIds([field], nextId);
        if (topLevel && fields.length >= MAX_COLUMNS)
          throw new SchemaChangeError(`a table has at most ${MAX_COLUMNS} columns`, i);
        parent.push(field);
        return;
      }
      case 'drop-column': {
        const { parent, at, topLevel } = existing(fields, c.name, i);
        if (topLevel && primaryKey.includes(c.name))
          throw new SchemaChangeError(`column "${c.name}" is in the primary key and cannot be dropped`, i);
        if (parent.length === 1)
          throw new SchemaChangeError(
            `column "${c.name}" is the last field of its ${topLevel ? 'table' : 'struct'}`,
            i,
          );
        parent.splice(at, 1);
        return;
      }
      case 'rename-column': {
        const { parent, at, topLevel } = existing(fields, c.name, i);
        if (topLevel && primaryKey.includes(c.name))
          throw new SchemaChangeError(`column "${c.name}" is in the primary key and cannot be renamed`, i);
        if (!COLUMN_NAME_PATTERN.test(c.newName))
          throw new SchemaChangeError(
            `invalid column name ${JSON.stringify(c.newName)}: use letters, digits and underscores, not starting with a digit`,
            i,
          );
        if (parent.some((f) => f.name === c.newName))
          throw new SchemaChangeError(`column "${c.newName}" already exists`, i);
        parent[at].name = c.newName;
        return;
      }
      case 'widen-column': {
        const { parent, at } = existing(fields, c.name, i);
        const to = parseTypeAt(c.type, i);
        const from = parent[at].type;
        if (!isAllowedPromotion(from, to))
          throw new SchemaChangeError(
            `cannot change column "${c.name}" from ${typeName(from)} to ${typeName(to)}: Iceberg allows only int → long, float → double and decimal(P,S) → decimal(P',S) with P' > P`,
            i,
          );
        parent[at].type = to;
        return;
      }
      case 'make-nullable': {
        const { parent, at, topLevel } = existing(fields, c.name, i);
        if (topLevel && primaryKey.includes(c.name))
          throw new SchemaChangeError(`column "${c.name}" is in the primary key and must stay required`, i);
        parent[at].required = false;
        return;
      }
    }
  });
  primaryKey = primaryKey.filter((k) => fields.some((f) => f.name === k));
  return {
    schema: { schemaId: schema.schemaId + 1, fields, primaryKey },
    lastColumnId: Math.max(lastColumnId, nextId - 1),
  };
}

/** The changes that make `schema` read as described (used by tests and the Postgres source). */
export function describeChange(c: SchemaChange): string {
  switch (c.action) {
    case 'add-column':
      return `add column ${c.name} ${c.type}`;
    case 'drop-column':
      return `drop column ${c.name}`;
    case 'rename-column':
      return `rename column ${c.name} to ${c.newName}`;
    case 'widen-column':
      return `change column ${c.name} to ${c.type}`;
    case 'make-nullable':
      return `make column ${c.name} nullable`;
  }
}
