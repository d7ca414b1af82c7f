/**
 * Creating and dropping tables, shared by the embedded service and the Lambda functions.
 * Creation writes the table definition, the first Iceberg metadata file, and the catalog pointer
 * to it (epoch 0: no writer yet); the writer then takes the table with a new epoch.
 */

import { randomUUID } from 'node:crypto';
import { type Catalog, TableExistsError } from './catalog/catalog.ts';
import { IcebergTable } from './iceberg/iceberg-table.ts';
import type { DurableLog } from './log/durable-log.ts';
import { ZERO_LSN } from './lsn.ts';
import { ensureNamespaceOf, NoSuchNamespaceError } from './namespace-admin.ts';
import { describePartitioning, NO_PARTITION_FIELD_ID, parsePartitionBy } from './schema/partition-spec.ts';
import { describeSortOrder, parseSortBy } from './schema/sort-order.ts';
import { DEFAULT_NAMESPACE, namespaceOf } from './schema/table-name.ts';
import {
  buildSchema,
  type CreateTableBody,
  createTableBody,
  SchemaError,
  type TableDefinition,
  validateTableName,
} from './schema/table-schema.ts';
import { deletePrefix } from './store/delete-prefix.ts';
import { ephemeralRootOf, locationForNew, tableRootOf } from './store/object-keys.ts';
import type { ObjectStore } from './store/object-store.ts';

export { deletePrefix };

/** A `POST /tables` body, checked (a SchemaError naming the field at fault otherwise). */
export function parseCreateBody(body: unknown): CreateTableBody {
  const parsed = createTableBody.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length > 0 ? issue.path.join('.') : 'body';
    throw new SchemaError(`${where}: ${issue.message}`);
  }
  return parsed.data;
}

/** A table definition from a `POST /tables` body with its columns (no source). */
export function definitionFromBody(body: unknown): TableDefinition {
  const b = parseCreateBody(body);
  if (b.source) throw new SchemaError('source: use definitionFromRequest for tables with a source');
  const name = validateTableName(b.name);
  return withLayout(
    {
      name,
      tableUuid: randomUUID(),
      schema: buildSchema(b.columns ?? [], b.primaryKey ?? []),
      formatVersion: b.formatVersion ?? 2,
      createdAt: new Date().toISOString(),
      ...(b.schemaEvolution && b.schemaEvolution !== 'none' ? { schemaEvolution: b.schemaEvolution } : {}),
    },
    b,
  );
}

/**
 * The body's `partitionBy` and `sortBy`, checked against the table's columns (400s naming the
 * item) and stored in their full form (every partition field named).
 */
export function withLayout(def: TableDefinition, b: CreateTableBody): TableDefinition {
  if (b.partitionBy && b.partitionBy.length > 0) {
    const { spec } = parsePartitionBy(b.partitionBy, def.schema.fields, {
      specId: 0,
      lastPartitionId: NO_PARTITION_FIELD_ID,
    });
    def.partitionBy = describePartitioning(spec, def.schema.fields);
  }
  if (b.sortBy && b.sortBy.length > 0)
    def.sortBy = describeSortOrder(parseSortBy(b.sortBy, def.schema.fields), def.schema.fields);
  return def;
}

/**
 * Fills in the definition's `location` (see lib/store/object-keys.ts) and creates the table: the catalog
 * entry, the first Iceberg metadata file, the pointer.
 */
export async function createTable(
  store: ObjectStore,
  catalog: Catalog,
  def: TableDefinition,
  log?: DurableLog,
): Promise<IcebergTable> {
  await ensureNamespaceOf(catalog, def.name);
  // A table renamed away from this name left the log sealed against late writes to it.
  log?.seal?.(def.name, undefined);
  // Where its objects go (kept on a rename); not where a renamed table still keeps its own.
  def.location ??= locationForNew(def.name, def.tableUuid, await catalog.listTables());
  await catalog.createTable(def);
  try {
    const root = tableRootOf(def);
    // A dropped table of the same name may have left files behind: start clean.
    await deletePrefix(store, `${root}/`);
    await deletePrefix(store, `${ephemeralRootOf(def)}/`);
    const iceberg = await IcebergTable.create(store, root, def);
    // The table starts after everything already in the log: on a shared stream, records of a
    // dropped table of the same name must not replay into this one.
    const start =
      log && !def.source
        ? log.barrier
          ? await log.barrier(def.name)
          : await log.lastLsn(def.name)
        : ZERO_LSN;
    await catalog.updatePointer(def.name, 0, 0, {
      lsn: start,
      committedLsn: start,
      metadataKey: iceberg.metadataKey,
      metadataLocation: iceberg.metadataLocation(),
    });
    return iceberg;
  } catch (e) {
    await catalog.dropTable(def.name).catch(() => undefined);
    throw e;
  }
}

/**
 * Renames a table (`POST /tables/{name}/rename`, the REST catalog's rename). The new name is
 * checked here — valid, not taken, not the name of a namespace; its namespace is created on
 * demand as a create does, unless `existingNamespace` (the REST catalog: 404 instead) — and the
 * writer that owns the table renames it (lib/engine/table-rename.ts).
 */
export async function renameTable(
  catalog: Catalog,
  rename: (from: string, to: string) => Promise<TableDefinition>,
  from: string,
  newName: unknown,
  options: { existingNamespace?: boolean } = {},
): Promise<TableDefinition> {
  const to = validateTableName(newName);
  if (to === from || (await catalog.getTable(to))) throw new TableExistsError(to);
  const ns = namespaceOf(to);
  if (options.existingNamespace && ns !== DEFAULT_NAMESPACE && !(await catalog.getNamespace(ns)))
    throw new NoSuchNamespaceError(ns);
  await ensureNamespaceOf(catalog, to);
  return rename(from, to);
}
