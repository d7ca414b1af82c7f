/**
 * Partition evolution (`{"action": "set-partitioning", "partitionBy": [...]}` in the schema
 * endpoint, alone or with column changes): a new partition spec with the next spec id (field ids kept for the same source and
 * transform, as Iceberg does). Files written from then on use it; files already written keep
 * their spec until compaction rewrites them into the new one. The spec is committed to the
 * Iceberg metadata before the request is answered, so it is not logged: rows replayed after a
 * crash are flushed under whatever spec is current then, and either is correct for them.
 */

import type { Catalog } from '../catalog/catalog.ts';
import type { Lsn } from '../lsn.ts';
import { SchemaChangeRefusedError, SchemaError } from '../schema/errors.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import {
  describePartitioning,
  type PartitionByItem,
  parsePartitionBy,
  partitionByBody,
} from '../schema/partition-spec.ts';
import {
  applySchemaChanges,
  type EvolvedSchema,
  parseSchemaChanges,
  type SchemaChange,
  SchemaChangeError,
} from '../schema/schema-change.ts';
import { describeColumns, type TableDefinition } from '../schema/table-schema.ts';
import { changeOwnedSchema, type SchemaChangeContext } from './schema-evolution.ts';
import type { TableHandler } from './table-handler.ts';

export interface PartitioningResult {
  schemaId: number;
  columns: ReturnType<typeof describeColumns>;
  lsn: Lsn;
  partitionSpecId: number;
  partitionBy: PartitionByItem[];
}

/** A schema-change body with a set-partitioning in it. */
export interface LayoutChange {
  partitionBy: PartitionByItem[];
  /** Its position in the request (errors name it). */
  index: number;
  /** The request's column changes, in order (without the set-partitioning). */
  others: unknown[];
}

/**
 * The set-partitioning of a schema-change body, with the column changes around it; undefined
 * for a body of column changes only. Throws {@link SchemaChangeError} for a malformed one.
 */
export function partitioningChangeOf(body: unknown): LayoutChange | undefined {
  const changes = (body as { changes?: unknown } | null)?.changes;
  if (!Array.isArray(changes)) return undefined;
  const isSet = (c: unknown) => (c as { action?: unknown } | null)?.action === 'set-partitioning';
  const at = changes.findIndex(isSet);
  if (at < 0) return undefined;
  const again = changes.findIndex((c, i) => i > at && isSet(c));
  if (again >= 0) throw new SchemaChangeError('one set-partitioning per request', again);
  const { action: _a, ...rest } = changes[at] as Record<string, unknown>;
  for (const k of Object.keys(rest))
    if (k !== 'partitionBy') throw new SchemaChangeError(`unknown property "${k}" for set-partitioning`, at);
  const parsed = partitionByBody.safeParse(rest.partitionBy);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SchemaChangeError(
      `partitionBy${issue.path.map((p) => `[${String(p)}]`).join('')}: ${issue.message}`,
      at,
    );
  }
  return { partitionBy: parsed.data, index: at, others: changes.filter((_, i) => i !== at) };
}

/** The spec `items` make over `fields`; throws {@link SchemaChangeError} naming change `index`. */
function specFor(
  handler: TableHandler,
  items: PartitionByItem[],
  fields: NestedField[],
  index: number,
): ReturnType<typeof parsePartitionBy> {
  const specs = handler.partitionSpecs();
  try {
    return parsePartitionBy(items, fields, {
      specId: Math.max(...specs.keys()) + 1,
      lastPartitionId: handler.lastPartitionId,
      previous: [...specs.values()],
    });
  } catch (e) {
    if (e instanceof SchemaError) throw new SchemaChangeError(e.message, index);
    throw e;
  }
}

/** A SchemaChangeError of change k of a sub-list, as change `original(k)` of the request. */
function renumbered(e: unknown, original: (k: number) => number): unknown {
  if (!(e instanceof SchemaChangeError)) return e;
  return new SchemaChangeError(e.message.replace(/^changes\[\d+\]: /, ''), original(e.index));
}

/**
 * A request with a set-partitioning (and maybe column changes), all or nothing: everything is
 * checked first (the column changes against the newest schema, the spec against the schema
 * they make), then the partitioning is set before the column changes when the spec needs none
 * of them (so a column it no longer uses can be dropped in the same request), after them when
 * it partitions by a column they add. Calls serialized per table by the caller.
 */
export async function changeOwnedLayout(
  ctx: SchemaChangeContext,
  def: TableDefinition,
  handler: TableHandler,
  change: LayoutChange,
): Promise<PartitioningResult> {
  if (change.others.length === 0)
    return changeOwnedPartitioning(ctx.catalog, def, handler, change.partitionBy, change.index);
  if (def.source)
    throw new SchemaChangeRefusedError(
      `table "${def.name}" follows its ${Object.keys(def.source)[0]} source's schema: change the source table instead`,
    );
  // Column change k of `others` is change k (or k+1, past the set-partitioning) of the request.
  const original = (k: number) => (k < change.index ? k : k + 1);
  let changes: SchemaChange[];
  let evolved: EvolvedSchema;
  try {
    changes = parseSchemaChanges({ changes: change.others });
    evolved = applySchemaChanges(
      handler.latestSchema,
      handler.latestLastColumnId,
      changes,
      def.formatVersion,
    );
  } catch (e) {
    throw renumbered(e, original);
  }
  // The spec must hold after the column changes.
  specFor(handler, change.partitionBy, evolved.schema.fields, change.index);
  let partitionFirst = true;
  try {
    specFor(handler, change.partitionBy, handler.latestSchema.fields, change.index);
  } catch {
    partitionFirst = false;
  }
  const fresh = async () => (await ctx.catalog.getTable(def.name)) ?? def;
  const columns = async () => {
    try {
      return await changeOwnedSchema(ctx, await fresh(), handler, changes);
    } catch (e) {
      throw renumbered(e, original);
    }
  };
  if (partitionFirst) {
    const set = await changeOwnedPartitioning(ctx.catalog, def, handler, change.partitionBy, change.index);
    const cols = await columns();
    return { ...set, schemaId: cols.schemaId, columns: cols.columns, lsn: cols.lsn };
  }
  await columns();
  return changeOwnedPartitioning(ctx.catalog, await fresh(), handler, change.partitionBy, change.index);
}

/** Sets the owning table's partitioning (calls serialized per table by the caller). */
export async function changeOwnedPartitioning(
  catalog: Catalog,
  def: TableDefinition,
  handler: TableHandler,
  items: PartitionByItem[],
  index = 0,
): Promise<PartitioningResult> {
  const fields = handler.latestSchema.fields;
  const specs = handler.partitionSpecs();
  const parsed = specFor(handler, items, fields, index);
  let spec = parsed.spec;
  // The same fields as a spec the table has: that spec becomes the default again (Iceberg reuses it).
  const same = [...specs.values()].find((s) => JSON.stringify(s.fields) === JSON.stringify(spec.fields));
  if (same) spec = same;
  const current = handler.fileLayout.spec;
  if (spec.specId !== current.specId) await handler.setPartitioning(spec, parsed.lastPartitionId);
  const partitionBy = describePartitioning(spec, fields);
  await catalog.updateDefinition({
    ...def,
    partitionSpecId: spec.specId,
    partitionVersion: (def.partitionVersion ?? 0) + 1,
    partitionBy,
  });
  return {
    schemaId: handler.latestSchema.schemaId,
    columns: describeColumns(handler.latestSchema),
    lsn: handler.lsn,
    partitionSpecId: spec.specId,
    partitionBy,
  };
}
