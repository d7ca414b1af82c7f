/**
 * Partition evolution (`{"action": "set-partitioning", "partitionBy": [...]}` in the schema
 * endpoint): a new partition spec with the next spec id (field ids kept for the same source and
 * transform, as Iceberg does). Files written from then on use it; files already written keep
 * their spec until compaction rewrites them into the new one. The spec is committed to the
 * Iceberg metadata before the request is answered, so it is not logged: rows replayed after a
 * crash are flushed under whatever spec is current then, and either is correct for them.
 *
 * Also the check that a schema change keeps the columns the current spec and sort order read.
 */

import type { Catalog } from '../catalog/catalog.ts';
import type { Lsn } from '../lsn.ts';
import { SchemaError } from '../schema/errors.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import {
  describePartitioning,
  fieldById,
  type PartitionByItem,
  parsePartitionBy,
  partitionByBody,
} from '../schema/partition-spec.ts';
import { SchemaChangeError } from '../schema/schema-change.ts';
import { describeColumns, type TableDefinition } from '../schema/table-schema.ts';
import type { RowLayout } from './row-layout.ts';
import type { TableHandler } from './table-handler.ts';

export interface PartitioningResult {
  schemaId: number;
  columns: ReturnType<typeof describeColumns>;
  lsn: Lsn;
  partitionSpecId: number;
  partitionBy: PartitionByItem[];
}

/**
 * The `partitionBy` of a schema-change body that sets partitioning; undefined for a body of
 * column changes. Throws {@link SchemaChangeError} when set-partitioning is not alone or malformed.
 */
export function partitioningChangeOf(body: unknown): PartitionByItem[] | undefined {
  const changes = (body as { changes?: unknown } | null)?.changes;
  if (!Array.isArray(changes)) return undefined;
  const at = changes.findIndex((c) => (c as { action?: unknown } | null)?.action === 'set-partitioning');
  if (at < 0) return undefined;
  if (changes.length > 1)
    throw new SchemaChangeError('set-partitioning goes alone in its request (change the columns first)', at);
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
  return parsed.data;
}

/** Throws {@link SchemaChangeError} when `fields` lack a column the layout partitions or sorts by. */
export function checkLayoutColumns(layout: RowLayout, fields: NestedField[]): void {
  for (const p of layout.spec.fields)
    if (!fieldById(fields, p.sourceId))
      throw new SchemaChangeError(
        `the table is partitioned by the column with field id ${p.sourceId} ("${p.name}"): set-partitioning without it first`,
        0,
      );
  for (const s of layout.order.fields)
    if (!fieldById(fields, s.sourceId))
      throw new SchemaChangeError(
        `the table's files are sorted by the column with field id ${s.sourceId}`,
        0,
      );
}

/** Sets the owning table's partitioning (calls serialized per table by the caller). */
export async function changeOwnedPartitioning(
  catalog: Catalog,
  def: TableDefinition,
  handler: TableHandler,
  items: PartitionByItem[],
): Promise<PartitioningResult> {
  const fields = handler.latestSchema.fields;
  const specs = handler.partitionSpecs();
  let parsed: ReturnType<typeof parsePartitionBy>;
  try {
    parsed = parsePartitionBy(items, fields, {
      specId: Math.max(...specs.keys()) + 1,
      lastPartitionId: handler.lastPartitionId,
      previous: [...specs.values()],
    });
  } catch (e) {
    if (e instanceof SchemaError)
      throw new SchemaChangeError(e.message.replace(/^partitionBy/, 'partitionBy'), 0);
    throw e;
  }
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
    ...(partitionBy.length > 0 ? { partitionBy } : { partitionBy: [] }),
  });
  return {
    schemaId: handler.latestSchema.schemaId,
    columns: describeColumns(handler.latestSchema),
    lsn: handler.lsn,
    partitionSpecId: spec.specId,
    partitionBy,
  };
}
