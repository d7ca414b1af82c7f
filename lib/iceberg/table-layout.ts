/**
 * A table's layout in its metadata: partition specs (`partition-specs`, `default-spec-id`,
 * `last-partition-id`) and sort orders (`sort-orders`, `default-sort-order-id`), read as typed
 * specs and orders, and the metadata fields that add a new default of either.
 */
import type { NestedField } from '../schema/iceberg-type.ts';
import {
  fieldById,
  type PartitionSpec,
  partitionType,
  specFromIcebergJson,
  specToIcebergJson,
  UNPARTITIONED,
  withDroppedFields,
} from '../schema/partition-spec.ts';
import { schemaFromIcebergJson } from '../schema/schema-json.ts';
import {
  type SortOrder,
  sortOrderFromIcebergJson,
  sortOrderToIcebergJson,
  UNSORTED,
} from '../schema/sort-order.ts';
import { type ManifestSpec, manifestSpec } from './manifest-io.ts';
import type { TableMetadata } from './table-metadata.ts';

const specCache = new WeakMap<object, PartitionSpec>();
const orderCache = new WeakMap<object, SortOrder>();

/** Every partition spec of the table, by id. */
export function specsOf(meta: TableMetadata): Map<number, PartitionSpec> {
  const out = new Map<number, PartitionSpec>();
  for (const j of meta['partition-specs']) {
    let s = specCache.get(j);
    if (!s) {
      s = specFromIcebergJson(j);
      specCache.set(j, s);
    }
    out.set(s.specId, s);
  }
  return out;
}

/** The spec new data files are written with. */
export function defaultSpecOf(meta: TableMetadata): PartitionSpec {
  return specsOf(meta).get(meta['default-spec-id']) ?? UNPARTITIONED;
}

/** The order new data files are sorted by. */
export function defaultSortOrderOf(meta: TableMetadata): SortOrder {
  const j = meta['sort-orders'].find((o) => o['order-id'] === meta['default-sort-order-id']);
  if (!j) return UNSORTED;
  let o = orderCache.get(j);
  if (!o) {
    o = sortOrderFromIcebergJson(j);
    orderCache.set(j, o);
  }
  return o;
}

/** A spec as manifests record it, with the partition type over `fields` (the current schema). */
export function manifestSpecOf(meta: TableMetadata, specId: number, fields: NestedField[]): ManifestSpec {
  const spec = specsOf(meta).get(specId);
  if (!spec) throw new Error(`partition spec ${specId} is not in the table metadata`);
  // A spec of earlier files may partition by a column dropped since: its type is the old one.
  const all = spec.fields.every((p) => fieldById(fields, p.sourceId))
    ? fields
    : withDroppedFields(fields, meta.schemas.map(schemaFromIcebergJson));
  return manifestSpec(specId, specToIcebergJson(spec).fields, partitionType(spec, all));
}

/** The metadata fields that make `spec` the default (added unless an equal spec is there). */
export function withDefaultSpec(
  prev: TableMetadata,
  spec: PartitionSpec,
  lastPartitionId: number,
): Partial<TableMetadata> {
  const json = specToIcebergJson(spec);
  const same = prev['partition-specs'].find((s) => JSON.stringify(s.fields) === JSON.stringify(json.fields));
  return {
    'partition-specs': same ? prev['partition-specs'] : [...prev['partition-specs'], json],
    'default-spec-id': same ? same['spec-id'] : spec.specId,
    'last-partition-id': Math.max(prev['last-partition-id'], lastPartitionId),
  };
}

/** The metadata fields that make `order` the default sort order. */
export function withDefaultSortOrder(prev: TableMetadata, order: SortOrder): Partial<TableMetadata> {
  const json = sortOrderToIcebergJson(order);
  const same = prev['sort-orders'].find((o) => JSON.stringify(o.fields) === JSON.stringify(json.fields));
  return {
    'sort-orders': same ? prev['sort-orders'] : [...prev['sort-orders'], json],
    'default-sort-order-id': same ? same['order-id'] : order.orderId,
  };
}
