/** Table routes: create, list, describe, drop. */

import { lsnToJson, ZERO_LSN } from '../../lib/lsn.ts';
import { parseExactJson } from '../../lib/schema/exact-json.ts';
import { describeColumns, type TableDefinition, validateTableName } from '../../lib/schema/table-schema.ts';
import { definitionFromRequest } from '../../lib/sources/table-definition.ts';
import { createTable, renameTable } from '../../lib/table-admin.ts';
import { badRequest, notFound } from '../api-error.ts';
import { bodyText, type HttpEvent, type HttpResult, json, noContent, tableParam } from '../http.ts';
import type { Services } from '../services.ts';

/** Where a source's credentials are (never the connection itself); an inline password is flagged. */
function credentialsOf(connection: string): Record<string, unknown> {
  if (connection.startsWith('env:')) return { credentials: 'environment' };
  if (connection.startsWith('file:')) return { credentials: 'file' };
  if (connection.startsWith('arn:aws:secretsmanager:')) return { credentials: 'secretsmanager' };
  const inline =
    /^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(connection) || /(^|\s)password\s*=/.test(connection);
  return inline
    ? {
        credentials: 'inline',
        warning:
          'the connection string in the catalog holds a password: attach again with env:NAME or a Secrets Manager ARN (docs/postgres-source.md)',
      }
    : { credentials: 'none' };
}

function summary(def: TableDefinition): Record<string, unknown> {
  return {
    name: def.name,
    columns: describeColumns(def.schema),
    schemaId: def.schema.schemaId,
    primaryKey: def.schema.primaryKey,
    ...(def.schemaEvolution ? { schemaEvolution: def.schemaEvolution } : {}),
    ...(def.partitionBy && def.partitionBy.length > 0 ? { partitionBy: def.partitionBy } : {}),
    ...(def.partitionSpecId ? { partitionSpecId: def.partitionSpecId } : {}),
    ...(def.sortBy && def.sortBy.length > 0 ? { sortBy: def.sortBy } : {}),
    formatVersion: def.formatVersion,
    createdAt: def.createdAt,
    ...(def.source
      ? {
          source: {
            postgres: {
              table: def.source.postgres.table,
              publication: def.source.postgres.publication,
              slot: def.source.postgres.slot,
              ...credentialsOf(def.source.postgres.connection),
            },
          },
        }
      : {}),
  };
}

export async function createTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  // A table definition has no big numbers: middy's JSON body parser has parsed it (api.ts).
  const body: unknown =
    typeof event.body === 'object' && event.body !== null ? event.body : parseExactJson(bodyText(event));
  const source = (body as { source?: unknown; name?: unknown } | null)?.source;
  const name = (body as { name?: unknown } | null)?.name;
  // A source's definition is read where its secret may be read: by the writer, on AWS.
  const def =
    source !== undefined && typeof name === 'string' && s.writer.definitionFromSource
      ? await s.writer.definitionFromSource(validateTableName(name), body)
      : await definitionFromRequest(body);
  const iceberg = await createTable(s.store, s.catalog, def, s.log);
  s.tables.invalidate(def.name);
  await s.writer.tableCreated(def.name);
  return json(201, { ...summary(def), metadataLocation: iceberg.metadataLocation() });
}

export async function listTablesRoute(_event: HttpEvent, s: Services): Promise<HttpResult> {
  const defs = await s.catalog.listTables();
  return json(200, { tables: defs.map(summary) });
}

export async function describeTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const def = await s.catalog.getTable(name);
  if (!def) throw notFound(`table "${name}"`);
  const pointer = await s.catalog.getPointer(name);
  let files = 0;
  let rows = 0;
  let dataFiles: unknown[] = [];
  if (pointer?.snapshotKey) {
    const m = await s.reader.manifest(pointer.snapshotKey);
    for (const f of m.files) {
      if (f.kind === 'data') files++;
      rows += f.rowCount - (f.deletes?.cardinality ?? 0);
    }
    dataFiles = m.files
      .filter((f) => f.kind === 'data')
      .map((f) => ({
        path: s.store.uri(f.path),
        rowCount: f.rowCount,
        sizeBytes: f.sizeBytes,
        deletedRows: f.deletes?.cardinality ?? 0,
      }));
  }
  const writer = (await s.writer.status?.(name).catch(() => undefined)) ?? undefined;
  return json(200, {
    ...summary(def),
    lsn: lsnToJson(pointer?.lsn ?? ZERO_LSN),
    committedLsn: lsnToJson(pointer?.committedLsn ?? ZERO_LSN),
    metadataLocation: pointer?.metadataLocation ?? null,
    files,
    rows,
    dataFiles,
    checkpoints: pointer?.checkpoints ?? {},
    // open | damaged (reads served, writes refused) | failed (could not be opened), with why.
    ...(typeof writer?.state === 'string' ? { state: writer.state } : {}),
    ...(writer?.error ? { problem: writer.error } : {}),
    // Outside catalogs the writer registers the table in (Glue on AWS): synced location, time, last error.
    ...(writer?.catalogs ? { catalogs: writer.catalogs } : {}),
    ...(writer ? { writer } : {}),
  });
}

export async function dropTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const def = await s.catalog.getTable(name);
  if (!def) throw notFound(`table "${name}"`);
  await s.writer.tableDropped(name);
  s.tables.invalidate(name);
  return noContent();
}

/**
 * `POST /tables/{name}/rename` `{"name": "new"}`: the table keeps its data, files and history
 * under the new name (lib/engine/table-rename.ts); the old name is free again at once.
 */
export async function renameTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const def = await s.catalog.getTable(name);
  if (!def) throw notFound(`table "${name}"`);
  const body: unknown =
    typeof event.body === 'object' && event.body !== null ? event.body : parseExactJson(bodyText(event));
  const to = (body as { name?: unknown } | null)?.name;
  if (typeof to !== 'string') throw badRequest('body: {"name": "<new table name>"} is required');
  const renamed = await renameTable(s.catalog, (f, t) => s.writer.renameTable(f, t), name, to);
  s.tables.invalidate(name);
  s.tables.invalidate(renamed.name);
  const pointer = await s.catalog.getPointer(renamed.name);
  return json(200, {
    ...summary(renamed),
    renamedFrom: name,
    metadataLocation: pointer?.metadataLocation ?? null,
  });
}
