/**
 * The scan endpoint's `filter`: comparisons on columns, joined by commas (all must hold):
 *
 *     filter=placed_at>=2024-05-01T00:00:00Z,region="eu-west",qty<10
 *
 * Operators `=`, `!=`, `<`, `<=`, `>`, `>=`; a value is the column's JSON form without quotes
 * (numbers, `true`, dates and timestamps as ISO text) or a double-quoted JSON string (for text
 * with commas or quotes). A comparison with null is false (SQL's rule), so rows with a null in a
 * filtered column never match. Files whose partition rules a comparison out are skipped
 * unread: the comparison is projected through each partition field's transform
 * (partition-transform.ts's projectPredicate).
 */
import type { IcebergType, NestedField } from '../schema/iceberg-type.ts';
import { type PartitionSpec, partitionValueJson } from '../schema/partition-spec.ts';
import { type ComparisonOp, projectPredicate, resultType } from '../schema/partition-transform.ts';
import { compareScalars, compareUtf8, decoderFor, type Value, ValueError } from '../schema/values.ts';

export interface Comparison {
  column: NestedField;
  /** Top-level column position (filters name top-level columns). */
  index: number;
  op: ComparisonOp;
  value: Value;
}

export class FilterError extends Error {}

const COND = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$/s;

/** Splits on commas outside double-quoted strings. */
function splitConditions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new FilterError('filter: a quoted value is not closed');
  out.push(cur);
  return out;
}

function literalJson(type: IcebergType, text: string): unknown {
  if (text.startsWith('"')) {
    try {
      return JSON.parse(text);
    } catch {
      throw new FilterError(`filter: ${text} is not a JSON string`);
    }
  }
  if (type.kind === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  if ((type.kind === 'float' || type.kind === 'double') && text !== '' && !Number.isNaN(Number(text)))
    return Number(text);
  return text;
}

/** Parses a `filter` against the columns of the snapshot being read. */
export function parseFilter(text: string, fields: NestedField[]): Comparison[] {
  if (text.trim() === '') return [];
  return splitConditions(text).map((part) => {
    const m = COND.exec(part);
    if (!m) throw new FilterError(`filter: "${part.trim()}" is not column<op>value (ops: = != < <= > >=)`);
    const [, name, op, raw] = m;
    const index = fields.findIndex((f) => f.name === name);
    if (index < 0) throw new FilterError(`filter: unknown column "${name}"`);
    const column = fields[index];
    if (['struct', 'list', 'map'].includes(column.type.kind))
      throw new FilterError(`filter: a ${column.type.kind} column cannot be compared`);
    if (raw === '') throw new FilterError(`filter: "${part.trim()}" has no value`);
    let value: Value;
    try {
      value = decoderFor(column.type)(literalJson(column.type, raw), name);
    } catch (e) {
      if (e instanceof ValueError) throw new FilterError(`filter: ${e.message}`);
      throw new FilterError(`filter: ${raw} is not a ${column.type.kind}`);
    }
    return { column, index, op: op as ComparisonOp, value };
  });
}

function holds(op: ComparisonOp, c: number): boolean {
  switch (op) {
    case '=':
      return c === 0;
    case '!=':
      return c !== 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
  }
}

/** Whether a row's value passes one comparison (null never does). */
export function matches(c: Comparison, v: Value): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === 'number' && Number.isNaN(v)) return c.op === '!=';
  return holds(c.op, compareScalars(v, c.value));
}

/** Compares two partition values in their JSON form; undefined when they cannot be ordered here. */
function compareJson(type: IcebergType, a: unknown, b: unknown): number | undefined {
  switch (type.kind) {
    case 'int':
    case 'date':
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const x = BigInt(a as number | string);
      const y = BigInt(b as number | string);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'float':
    case 'double':
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case 'boolean':
      return Number(a) - Number(b);
    case 'string':
    case 'uuid':
      return compareUtf8(a as string, b as string);
    default:
      return a === b ? 0 : undefined;
  }
}

/**
 * Whether a data file with this partition may hold rows matching every comparison; false only
 * when a partition field proves it cannot.
 */
export function partitionMayMatch(
  filter: Comparison[],
  spec: PartitionSpec,
  partition: Record<string, unknown>,
): boolean {
  for (const c of filter) {
    for (const pf of spec.fields) {
      if (pf.sourceId !== c.column.id) continue;
      const projected = projectPredicate(pf.transform, c.column.type, c.op, c.value);
      if (!projected) continue;
      const fileValue = partition[pf.name];
      // A null partition value holds only rows whose source is null: no comparison matches.
      if (fileValue === null || fileValue === undefined) {
        if (pf.transform.kind !== 'void') return false;
        continue;
      }
      const type = resultType(pf.transform, c.column.type);
      const cmp = compareJson(type, fileValue, partitionValueJson(type, projected.value));
      if (cmp !== undefined && !holds(projected.op, cmp)) return false;
    }
  }
  return true;
}
