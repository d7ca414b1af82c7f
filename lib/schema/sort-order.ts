/**
 * Sort orders (spec, "Sorting"): the API's `sortBy` checked against a schema, the Iceberg JSON
 * of an order, and the row comparison it defines. Only identity sort fields are written; order
 * id 0 is "unsorted", a table's declared order is 1 (and above, if it ever changes).
 */
import { z } from 'zod';
import { SchemaError } from './errors.ts';
import { isPrimitive, type NestedField } from './iceberg-type.ts';
import { columnPath, fieldById, findColumn } from './partition-spec.ts';
import { compareScalars, type Value } from './values.ts';

export interface SortField {
  sourceId: number;
  direction: 'asc' | 'desc';
  nullOrder: 'nulls-first' | 'nulls-last';
}

export interface SortOrder {
  orderId: number;
  fields: SortField[];
}

export const UNSORTED: SortOrder = { orderId: 0, fields: [] };

export const sortByBody = z
  .array(
    z.strictObject({
      column: z.string().min(1),
      direction: z.enum(['asc', 'desc']).optional(),
      nulls: z.enum(['first', 'last']).optional(),
    }),
  )
  .max(16);

export type SortByItem = z.infer<typeof sortByBody>[number];

export function isSorted(order: SortOrder): boolean {
  return order.fields.length > 0;
}

/** An order from `sortBy` (direction default asc; nulls default first for asc, last for desc). */
export function parseSortBy(items: SortByItem[], fields: NestedField[], orderId = 1): SortOrder {
  const seen = new Set<number>();
  const out = items.map((item, i): SortField => {
    const at = `sortBy[${i}]`;
    const f = findColumn(fields, item.column);
    if (!f) throw new SchemaError(`${at}: unknown column "${item.column}"`);
    if (!isPrimitive(f.type)) throw new SchemaError(`${at}: a ${f.type.kind} column cannot be sorted by`);
    if (seen.has(f.id)) throw new SchemaError(`${at}: "${item.column}" is listed twice`);
    seen.add(f.id);
    const direction = item.direction ?? 'asc';
    const nulls = item.nulls ?? (direction === 'asc' ? 'first' : 'last');
    return { sourceId: f.id, direction, nullOrder: nulls === 'first' ? 'nulls-first' : 'nulls-last' };
  });
  return out.length === 0 ? UNSORTED : { orderId, fields: out };
}

export function describeSortOrder(order: SortOrder, fields: NestedField[]): SortByItem[] {
  return order.fields.map((f) => ({
    column: columnPath(fields, f.sourceId) ?? `#${f.sourceId}`,
    direction: f.direction,
    nulls: f.nullOrder === 'nulls-first' ? 'first' : 'last',
  }));
}

export interface SortOrderJson {
  'order-id': number;
  fields: { transform: string; 'source-id': number; direction: string; 'null-order': string }[];
}

export function sortOrderToIcebergJson(order: SortOrder): SortOrderJson {
  return {
    'order-id': order.orderId,
    fields: order.fields.map((f) => ({
      transform: 'identity',
      'source-id': f.sourceId,
      direction: f.direction,
      'null-order': f.nullOrder,
    })),
  };
}

export function sortOrderFromIcebergJson(json: unknown): SortOrder {
  const j = json as { 'order-id'?: unknown; fields?: unknown };
  if (typeof j?.['order-id'] !== 'number' || !Array.isArray(j.fields))
    throw new SchemaError('a sort order needs an order-id and fields');
  return {
    orderId: j['order-id'],
    fields: j.fields.map((raw, i) => {
      const f = raw as Record<string, unknown>;
      const sourceId = f['source-id'] ?? (Array.isArray(f['source-ids']) ? f['source-ids'][0] : undefined);
      if (f.transform !== 'identity' || typeof sourceId !== 'number')
        throw new SchemaError(
          `sort order ${j['order-id']}: field ${i} is not an identity sort this service can write`,
        );
      return {
        sourceId,
        direction: f.direction === 'desc' ? 'desc' : 'asc',
        nullOrder: f['null-order'] === 'nulls-last' ? 'nulls-last' : 'nulls-first',
      };
    }),
  };
}

/**
 * Compares rows a and b by the order, given each sort field's column of values
 * (`columns[k][row]`); ties keep their order when used with a stable sort.
 */
export function rowComparator(order: SortOrder, columns: Value[][]): (a: number, b: number) => number {
  const dirs = order.fields.map((f) => (f.direction === 'asc' ? 1 : -1));
  const nullsFirst = order.fields.map((f) => f.nullOrder === 'nulls-first');
  return (a, b) => {
    for (let k = 0; k < columns.length; k++) {
      const x = columns[k][a];
      const y = columns[k][b];
      const xn = x === null || x === undefined;
      const yn = y === null || y === undefined;
      if (xn || yn) {
        if (xn && yn) continue;
        return xn === nullsFirst[k] ? -1 : 1;
      }
      const c = compareScalars(x, y);
      if (c !== 0) return c * dirs[k];
    }
    return 0;
  };
}

/** The sort fields' source fields (their types, for reading values). */
export function sortSources(order: SortOrder, fields: NestedField[]): NestedField[] {
  return order.fields.map((f) => {
    const source = fieldById(fields, f.sourceId);
    if (!source) throw new SchemaError(`sort field ${f.sourceId}: the column is gone`);
    return source;
  });
}
