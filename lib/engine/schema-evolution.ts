/**
 * Schema changes in the writer. A change is a record in the table's durable log, ordered with
 * the writes: `{"marker":"schema","schema":{Iceberg schema JSON},"lastColumnId":N}`. The
 * writer that owns the table checks the changes against the schema as of the newest record,
 * appends the marker, waits until the table applied it, and then stores the new definition
 * in the catalog (writes are checked against it from then on). Replay after a crash meets the
 * marker at the same place; a definition a crash left behind is brought forward when it is
 * met. Records say which schema they were checked in (their header), so one checked just
 * before a change and logged after it is read in its own schema and carried over by field id.
 */
import type { Catalog } from '../catalog/catalog.ts';
import type { DurableLog, LogEntry } from '../log/durable-log.ts';
import type { Lsn } from '../lsn.ts';
import { SchemaChangeRefusedError } from '../schema/errors.ts';
import { newColumnsOf } from '../schema/infer-columns.ts';
import {
  applySchemaChanges,
  type EvolvedSchema,
  parseSchemaChanges,
  type SchemaChange,
  SchemaChangeError,
} from '../schema/schema-change.ts';
import { schemaFromIcebergJson, schemaToIcebergJson } from '../schema/schema-json.ts';
import { describeColumns, type TableDefinition, type TableSchema } from '../schema/table-schema.ts';
import type { Logger } from '../util/logger.ts';
import { checkLayoutColumns } from './row-layout.ts';
import type { TableHandler } from './table-handler.ts';
import type { TableSink } from './table-sink.ts';

export { parseSchemaChanges, type SchemaChange, SchemaChangeError, SchemaChangeRefusedError };

export interface SchemaChangeResult {
  schemaId: number;
  columns: ReturnType<typeof describeColumns>;
  lsn: Lsn;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function schemaChangeMarker(evolved: EvolvedSchema): Uint8Array {
  return enc.encode(
    JSON.stringify({
      marker: 'schema',
      schema: schemaToIcebergJson(evolved.schema),
      lastColumnId: evolved.lastColumnId,
    }),
  );
}

/** The change a marker record carries, or undefined for another marker. */
export function schemaChangeOf(entry: LogEntry): EvolvedSchema | undefined {
  try {
    const m = JSON.parse(dec.decode(entry.payload)) as {
      marker?: unknown;
      schema?: Record<string, unknown>;
      lastColumnId?: unknown;
    };
    if (m.marker !== 'schema' || !m.schema || typeof m.lastColumnId !== 'number') return undefined;
    return { schema: schemaFromIcebergJson(m.schema), lastColumnId: m.lastColumnId };
  } catch {
    return undefined;
  }
}

/** The definition with the evolved schema. */
export function evolvedDefinition(def: TableDefinition, evolved: EvolvedSchema): TableDefinition {
  return { ...def, schema: evolved.schema, lastColumnId: evolved.lastColumnId };
}

export interface SchemaChangeContext {
  catalog: Catalog;
  log: DurableLog;
  logger: Logger;
}

/**
 * Applies a schema change the log (or a source) delivered to the table, and brings the
 * catalog's definition forward if a crash left it behind (best effort: the next change or
 * restart retries).
 */
export function deliverSchemaChange(
  ctx: Pick<SchemaChangeContext, 'catalog' | 'logger'>,
  def: TableDefinition,
  handler: Pick<TableSink, 'changeSchema'>,
  lsn: Lsn,
  evolved: EvolvedSchema,
  inline = false,
): Promise<void> {
  const applied = handler.changeSchema(lsn, evolved, inline);
  ctx.catalog
    .updateDefinition(evolvedDefinition(def, evolved))
    .catch((e) => ctx.logger.warn('table definition update failed', { table: def.name, error: e }));
  return applied;
}

/**
 * Checks `changes` against the table's newest schema and logs them as one change; resolves once
 * the table applied it and the catalog has the new definition. Calls are serialized per table
 * by the caller. Throws {@link SchemaChangeError} (nothing changed) or
 * {@link SchemaChangeRefusedError}.
 */
export async function changeOwnedSchema(
  ctx: SchemaChangeContext,
  def: TableDefinition,
  handler: TableHandler,
  changes: SchemaChange[],
): Promise<SchemaChangeResult> {
  if (def.source)
    throw new SchemaChangeRefusedError(
      `table "${def.name}" follows its ${Object.keys(def.source)[0]} source's schema: change the source table instead`,
    );
  const evolved = applySchemaChanges(
    handler.latestSchema,
    handler.latestLastColumnId,
    changes,
    def.formatVersion,
  );
  // A column the table is partitioned or sorted by stays (set-partitioning without it first).
  checkLayoutColumns(handler.fileLayout, evolved.schema.fields);
  const lsn = await ctx.log.append(def.name, schemaChangeMarker(evolved));
  await handler.appliedThrough(lsn);
  await ctx.catalog.updateDefinition(evolvedDefinition(def, evolved));
  return { schemaId: evolved.schema.schemaId, columns: describeColumns(evolved.schema), lsn };
}

/**
 * For tables that add columns from records: the schema a record with new fields needs, from the
 * table's newest one (undefined when it has no new fields). Throws InferenceError or
 * {@link SchemaChangeError}.
 */
export function schemaForNewFields(
  def: TableDefinition,
  schema: TableSchema,
  lastColumnId: number,
  text: string,
): EvolvedSchema | undefined {
  if (def.schemaEvolution !== 'add-columns') return undefined;
  const changes = newColumnsOf(schema, text);
  if (changes.length === 0) return undefined;
  return applySchemaChanges(schema, lastColumnId, changes, def.formatVersion);
}
