/**
 * A table's definition: name, columns with Iceberg types and field ids, primary key, format
 * version. Built from the `POST /tables` body with validation errors a user can act on.
 */
import { z } from 'zod';
import {
  assignFieldIds,
  type IcebergType,
  isPrimitive,
  type NestedField,
  parseType,
  TypeParseError,
  typeName,
} from './iceberg-type.ts';

import { type PartitionByItem, partitionByBody } from './partition-spec.ts';
import { type SortByItem, sortByBody } from './sort-order.ts';
import { canonicalTableName, TABLE_NAME_PATTERN, TableNameError } from './table-name.ts';

export { TABLE_NAME_PATTERN };

import { COLUMN_NAME_PATTERN, MAX_COLUMNS } from './column-name.ts';

export { COLUMN_NAME_PATTERN, MAX_COLUMNS };

export interface TableSchema {
  schemaId: number;
  fields: NestedField[];
  /** Names of the primary-key columns, in key order; empty for an append-only table. */
  primaryKey: string[];
}

export type FormatVersion = 2 | 3;

export interface PostgresSource {
  postgres: { connection: string; table: string; publication?: string; slot?: string };
}

export interface TableDefinition {
  name: string;
  tableUuid: string;
  schema: TableSchema;
  formatVersion: FormatVersion;
  createdAt: string;
  /** Where the rows come from when not written over HTTP/Kinesis. */
  source?: PostgresSource;
  /** Iceberg table properties given at creation (later changes live in the Iceberg metadata). */
  properties?: Record<string, string>;
  /**
   * Where the table's objects live, relative to `tables/` (lib/store/object-keys.ts). Fixed at
   * creation and kept by a rename; absent on tables created before it was stored (derived from
   * the name then).
   */
  location?: string;
  /**
   * The highest field id the table ever used (Iceberg's `last-column-id`): new columns get ids
   * above it, so a dropped column's id is never reused. Absent until the first schema change
   * (the schema's highest id then).
   */
  lastColumnId?: number;
  /**
   * `add-columns`: a write with a top-level field the table does not have adds a nullable
   * column for it (type inferred from the JSON value) instead of being refused.
   */
  schemaEvolution?: SchemaEvolutionMode;
  /**
   * How the table was partitioned at creation (its first spec, 0). Later specs live in the
   * Iceberg metadata; `set-partitioning` also stores the newest here, for `GET /tables`.
   */
  partitionBy?: PartitionByItem[];
  /** The spec `partitionBy` is (0 until partitioning changes). */
  partitionSpecId?: number;
  /** How many times the partitioning changed (the catalog keeps only later definitions). */
  partitionVersion?: number;
  /** The sort order of the table's data files (identity sort fields). */
  sortBy?: SortByItem[];
}

export type SchemaEvolutionMode = 'none' | 'add-columns';

import { SchemaError } from './errors.ts';

export { SchemaError } from './errors.ts';

/** A table name from a request, normalized (`default.x` is `x`). Throws {@link SchemaError}. */
export function validateTableName(name: unknown): string {
  try {
    return canonicalTableName(name);
  } catch (e) {
    if (e instanceof TableNameError) throw new SchemaError(e.message);
    throw e;
  }
}

const columnSchema = z.strictObject({
  name: z.string(),
  type: z.string(),
  nullable: z.boolean().optional(),
});

export const postgresSourceBody = z.strictObject({
  postgres: z
    .strictObject({
      /** `env:NAME`, a Secrets Manager secret ARN, or a libpq connection string. */
      connection: z.string().min(1).optional(),
      /** The same as a `connection` that is a Secrets Manager secret ARN. */
      secretArn: z
        .string()
        .regex(/^arn:aws:secretsmanager:[^:]+:\d{12}:secret:.+$/, 'must be a Secrets Manager secret ARN')
        .optional(),
      table: z.string().min(1),
      publication: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/)
        .optional(),
      slot: z
        .string()
        .regex(/^[a-z0-9_]{1,63}$/)
        .optional(),
    })
    .refine((p) => (p.connection === undefined) !== (p.secretArn === undefined), {
      message: 'give exactly one of "connection" and "secretArn"',
    })
    .transform(({ secretArn, connection, ...rest }) => ({
      ...rest,
      connection: (connection ?? secretArn) as string,
    })),
});

export const createTableBody = z
  .strictObject({
    name: z.string(),
    /** Required unless `source` is given (a source's columns come from it). */
    columns: z.array(columnSchema).min(1).max(MAX_COLUMNS).optional(),
    primaryKey: z.array(z.string()).max(16).optional(),
    formatVersion: z.union([z.literal(2), z.literal(3)]).optional(),
    source: postgresSourceBody.optional(),
    schemaEvolution: z.enum(['none', 'add-columns']).optional(),
    partitionBy: partitionByBody.optional(),
    sortBy: sortByBody.optional(),
  })
  .refine((b) => b.columns !== undefined || b.source !== undefined, {
    message: 'is required (or give a "source" to read the columns from)',
    path: ['columns'],
  })
  .refine((b) => b.columns === undefined || b.source === undefined, {
    message: 'must be left out when a "source" is given: the columns are read from the source',
    path: ['columns'],
  });

export type CreateTableBody = z.infer<typeof createTableBody>;

/** Builds a schema from API columns, assigning field ids. Throws {@link SchemaError}. */
export function buildSchema(
  columns: { name: string; type: string; nullable?: boolean }[],
  primaryKey: string[] = [],
): TableSchema {
  const seen = new Set<string>();
  const fields: NestedField[] = columns.map((c, i) => {
    if (!COLUMN_NAME_PATTERN.test(c.name)) {
      throw new SchemaError(
        `columns[${i}]: invalid column name ${JSON.stringify(c.name)}: use letters, digits and underscores, not starting with a digit`,
      );
    }
    if (seen.has(c.name)) throw new SchemaError(`columns[${i}]: duplicate column "${c.name}"`);
    seen.add(c.name);
    let type: IcebergType;
    try {
      type = parseType(c.type);
    } catch (e) {
      if (e instanceof TypeParseError) throw new SchemaError(`column "${c.name}": ${e.message}`);
      throw e;
    }
    const inKey = primaryKey.includes(c.name);
    if (inKey && c.nullable === true) {
      throw new SchemaError(`column "${c.name}" is in the primary key and cannot be nullable`);
    }
    return { id: 0, name: c.name, required: inKey || c.nullable === false, type };
  });
  const keySeen = new Set<string>();
  for (const k of primaryKey) {
    const f = fields.find((x) => x.name === k);
    if (!f) throw new SchemaError(`primary key column "${k}" is not a column`);
    if (keySeen.has(k)) throw new SchemaError(`primary key column "${k}" is listed twice`);
    keySeen.add(k);
    if (!isPrimitive(f.type) || f.type.kind === 'float' || f.type.kind === 'double') {
      throw new SchemaError(
        `primary key column "${k}" has type ${typeName(f.type)}; keys must be primitive and not float/double`,
      );
    }
  }
  assignFieldIds(fields);
  return { schemaId: 0, fields, primaryKey: [...primaryKey] };
}

export {
  identifierFieldIds,
  lastColumnId,
  schemaFromIcebergJson,
  schemaToIcebergJson,
} from './schema-json.ts';

import { lastColumnId } from './schema-json.ts';

/** The table's `last-column-id`: stored once the schema changed, else the schema's highest id. */
export function lastColumnIdOf(def: TableDefinition): number {
  return Math.max(def.lastColumnId ?? 0, lastColumnId(def.schema));
}

/** The API form of the columns (what `GET /tables/{name}` shows). */
export function describeColumns(schema: TableSchema): { name: string; type: string; nullable: boolean }[] {
  return schema.fields.map((f) => ({ name: f.name, type: typeName(f.type), nullable: !f.required }));
}
