/**
 * Transactions sent as an Arrow IPC stream (`Content-Type: application/vnd.apache.arrow.stream`):
 * the table's columns by name plus an optional `_op` column (utf8 or dictionary of utf8:
 * `insert`, `upsert`, `delete`; insert when absent or null). One body is one transaction. The
 * log keeps the bytes as they came; this decodes them (on ingest to validate, in the writer to
 * apply) into the same column batch the JSON decoder makes.
 *
 * Accepted Arrow types per Iceberg type (anything else is a 400 naming the column):
 *
 * | Iceberg | Arrow |
 * | --- | --- |
 * | boolean | Bool |
 * | int | Int8, Int16, Int32, Uint8, Uint16 |
 * | long | Int8–Int64, Uint8–Uint32 |
 * | float | Float32 |
 * | double | Float32, Float64 |
 * | decimal(P,S) | Decimal128 with scale S and precision ≤ P |
 * | date | Date32 (days), Date64 (ms, whole days) |
 * | time | Time32/Time64 of any unit (whole microseconds) |
 * | timestamp / timestamptz | Timestamp of any unit, without / with a time zone (whole microseconds) |
 * | string | Utf8, LargeUtf8, Dictionary of Utf8 (valid UTF-8 only) |
 * | uuid | FixedSizeBinary(16) |
 * | binary | Binary, LargeBinary |
 * | fixed[L] | FixedSizeBinary(L) |
 * | list, map, struct | exactly the Arrow type the table's Parquet files use (List, Map, Struct of the above canonical types) |
 */
import { isUtf8 } from 'node:buffer';
import * as arrow from 'apache-arrow';
import { arrowTypeFor, readData } from '../columns/arrow-convert.ts';
import { type ColumnBuffer, TypedColumn, Utf8Column } from '../columns/column-buffer.ts';
import type { IcebergType } from '../schema/iceberg-type.ts';
import { typeName } from '../schema/iceberg-type.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import { canonicalScalar, keyFromParts, type Value } from '../schema/values.ts';
import { OP_DELETE, OP_INSERT, OP_UPSERT, OpBatch } from '../txn/op-batch.ts';
import { InvalidTransactionError, rowCodec } from '../txn/transaction.ts';

export const ARROW_STREAM = 'application/vnd.apache.arrow.stream';
export const OP_COLUMN = '_op';

/** An Arrow IPC stream starts with the continuation marker 0xFFFFFFFF; JSON never does. */
export function isArrowStream(body: Uint8Array): boolean {
  return body.length >= 8 && body[0] === 0xff && body[1] === 0xff && body[2] === 0xff && body[3] === 0xff;
}

const fatal = new TextDecoder('utf-8', { fatal: true });
const utf8d = new TextDecoder();

class ColumnError extends Error {}

function bad(column: string, message: string, row?: number): InvalidTransactionError {
  return new InvalidTransactionError(
    row === undefined ? `column "${column}": ${message}` : `row ${row}, column "${column}": ${message}`,
    row,
  );
}

function chunks(v: arrow.Vector): readonly arrow.Data[] {
  return v.data;
}

/** Per-unit factor to microseconds (a divisor for nanoseconds). */
function toMicros(raw: bigint | number, unit: arrow.TimeUnit, column: string, row: number): bigint {
  const v = BigInt(raw);
  switch (unit) {
    case arrow.TimeUnit.SECOND:
      return v * 1_000_000n;
    case arrow.TimeUnit.MILLISECOND:
      return v * 1000n;
    case arrow.TimeUnit.MICROSECOND:
      return v;
    default:
      if (v % 1000n !== 0n) throw bad(column, `nanosecond value ${v} is not a whole microsecond`, row);
      return v / 1000n;
  }
}

function utf8Of(d: arrow.Data, i: number, column: string, row: number): string {
  const offsets = d.valueOffsets as Int32Array | BigInt64Array;
  const start = Number(offsets[i]);
  const end = Number(offsets[i + 1]);
  try {
    return fatal.decode((d.values as Uint8Array).subarray(start, end));
  } catch {
    throw bad(column, 'is not valid UTF-8', row);
  }
}

/** One column's values in our representation (lib/schema/values.ts). */
function columnValues(t: IcebergType, v: arrow.Vector, column: string): Value[] {
  const a = v.type as arrow.DataType;
  const out: Value[] = [];
  let row = 0;
  const each = (fn: (d: arrow.Data, i: number, row: number) => Value): void => {
    for (const d of chunks(v)) {
      for (let i = 0; i < d.length; i++, row++) out.push(d.getValid(i) ? fn(d, i, row) : null);
    }
  };
  const expect = (): never => {
    throw new ColumnError(`Arrow type ${String(a)} does not fit ${typeName(t)}`);
  };
  switch (t.kind) {
    case 'boolean':
      if (!arrow.DataType.isBool(a)) expect();
      each((d, i) => (d.values[(d.offset + i) >> 3] & (1 << ((d.offset + i) & 7))) !== 0);
      return out;
    case 'int':
    case 'long': {
      if (!arrow.DataType.isInt(a)) expect();
      const int = a as arrow.Int;
      const fits =
        t.kind === 'int'
          ? int.bitWidth < 32 || (int.bitWidth === 32 && int.isSigned)
          : int.bitWidth < 64 || (int.bitWidth === 64 && int.isSigned);
      if (!fits) expect();
      each((d, i) => (t.kind === 'int' ? Number(d.values[i]) : BigInt(d.values[i])));
      return out;
    }
    case 'float':
    case 'double': {
      if (!arrow.DataType.isFloat(a)) expect();
      const p = (a as arrow.Float).precision;
      if (p === arrow.Precision.HALF || (t.kind === 'float' && p !== arrow.Precision.SINGLE)) expect();
      each((d, i) => Number(d.values[i]));
      return out;
    }
    case 'decimal': {
      if (!arrow.DataType.isDecimal(a)) expect();
      const dec = a as arrow.Decimal;
      if (dec.scale !== t.scale || dec.precision > t.precision || dec.bitWidth !== 128) expect();
      const limit = 10n ** BigInt(t.precision);
      for (const d of chunks(v)) {
        const vals = readData(t, d);
        for (const x of vals) {
          if (x !== null && ((x as bigint) >= limit || (x as bigint) <= -limit))
            throw bad(column, `has more than ${t.precision} digits`, row);
          out.push(x);
          row++;
        }
      }
      return out;
    }
    case 'date': {
      if (!arrow.DataType.isDate(a)) expect();
      const unit = (a as arrow.Date_).unit;
      each((d, i, r) => {
        if (unit === arrow.DateUnit.DAY) return Number(d.values[i]);
        const ms = Number(d.values[i]);
        if (ms % 86_400_000 !== 0) throw bad(column, `Date64 value ${ms} is not a whole day`, r);
        return ms / 86_400_000;
      });
      return out;
    }
    case 'time': {
      if (!arrow.DataType.isTime(a)) expect();
      const unit = (a as arrow.Time).unit;
      each((d, i, r) => toMicros(d.values[i], unit, column, r));
      return out;
    }
    case 'timestamp':
    case 'timestamptz': {
      if (!arrow.DataType.isTimestamp(a)) expect();
      const ts = a as arrow.Timestamp;
      if (Boolean(ts.timezone) !== (t.kind === 'timestamptz')) expect();
      each((d, i, r) => toMicros(d.values[i], ts.unit, column, r));
      return out;
    }
    case 'string': {
      if (arrow.DataType.isDictionary(a)) {
        const dict = a as arrow.Dictionary;
        if (!arrow.DataType.isUtf8(dict.dictionary) && !arrow.DataType.isLargeUtf8(dict.dictionary)) expect();
        each((d, i, r) => {
          const dv = d.dictionary!;
          const index = Number(d.values[i]);
          const [chunk, at] = locate(dv, index);
          return utf8Of(chunk, at, column, r);
        });
        return out;
      }
      if (!arrow.DataType.isUtf8(a) && !arrow.DataType.isLargeUtf8(a)) expect();
      each((d, i, r) => utf8Of(d, i, column, r));
      return out;
    }
    case 'binary': {
      if (!arrow.DataType.isBinary(a) && !arrow.DataType.isLargeBinary(a)) expect();
      each((d, i) => {
        const o = d.valueOffsets as Int32Array | BigInt64Array;
        return (d.values as Uint8Array).slice(Number(o[i]), Number(o[i + 1]));
      });
      return out;
    }
    case 'uuid':
    case 'fixed': {
      const width = t.kind === 'fixed' ? (t as { length: number }).length : 16;
      if (!arrow.DataType.isFixedSizeBinary(a) || (a as arrow.FixedSizeBinary).byteWidth !== width) expect();
      for (const d of chunks(v)) for (const x of readData(t, d)) out.push(x);
      return out;
    }
    default: {
      // Nested: exactly the Arrow type our own files use.
      if (String(a) !== String(arrowTypeFor(t))) expect();
      for (const d of chunks(v)) for (const x of readData(t, d)) out.push(x);
      return out;
    }
  }
}

interface Filler {
  valid(row: number): boolean;
  /** Pushes row `row` (valid) into the batch column. */
  push(row: number): void;
  /** The row's key part (key columns only), as keyString makes it. */
  key(row: number): string;
}

/** Arrow's getValid walks type checks per call; this reads the bitmap (or knows there is none). */
function validity(d: arrow.Data): (row: number) => boolean {
  const bitmap = d.nullBitmap;
  if (!bitmap || bitmap.length === 0 || d.nullCount === 0) return () => true;
  const off = d.offset;
  return (row) => (bitmap[(off + row) >> 3] & (1 << ((off + row) & 7))) !== 0;
}

/** One chunk, for the fast paths (tableFromIPC of one body gives one chunk per record batch). */
function single(v: arrow.Vector): arrow.Data | undefined {
  return v.data.length === 1 ? v.data[0] : undefined;
}

/**
 * How a column's rows go into the batch: canonical types are copied as they are (UTF-8 bytes,
 * 64-bit words), without a value object per field; the rest through {@link columnValues}.
 */
function fillerFor(
  t: IcebergType,
  v: arrow.Vector,
  column: string,
  into: ColumnBuffer,
  isKey: boolean,
): Filler {
  const d = single(v);
  const valid = d ? validity(d) : () => true;
  if (d && t.kind === 'string' && arrow.DataType.isUtf8(v.type) && into instanceof Utf8Column) {
    const offsets = d.valueOffsets as Int32Array;
    const bytes = d.values as Uint8Array;
    const all = bytes.subarray(offsets[0], offsets[d.length]);
    // Valid UTF-8 as a whole, and every value starts on a character: so every value is valid.
    let ok = isUtf8(all);
    for (let i = 0; ok && i < d.length; i++) {
      const b = bytes[offsets[i]];
      if (offsets[i] < offsets[i + 1] && (b & 0xc0) === 0x80) ok = false;
    }
    if (!ok) return valuesFiller(t, v, column, into);
    return {
      valid,
      push: (row) => into.pushBytes(bytes, offsets[row], offsets[row + 1]),
      key: (row) => utf8d.decode(bytes.subarray(offsets[row], offsets[row + 1])),
    };
  }
  const wide =
    (t.kind === 'long' &&
      arrow.DataType.isInt(v.type) &&
      (v.type as arrow.Int).bitWidth === 64 &&
      (v.type as arrow.Int).isSigned) ||
    ((t.kind === 'timestamp' || t.kind === 'timestamptz') &&
      arrow.DataType.isTimestamp(v.type) &&
      (v.type as arrow.Timestamp).unit === arrow.TimeUnit.MICROSECOND &&
      Boolean((v.type as arrow.Timestamp).timezone) === (t.kind === 'timestamptz'));
  if (d && wide && into instanceof TypedColumn && into.wide) {
    const values = d.values as BigInt64Array;
    const words = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
    return {
      valid,
      push: (row) => into.pushWords(words, row),
      key: (row) => {
        const hi = words[2 * row + 1];
        const lo = words[2 * row] >>> 0;
        return hi >= -0x200000 && hi < 0x200000 ? String(hi * 4294967296 + lo) : String(values[row]);
      },
    };
  }
  if (
    d &&
    t.kind === 'double' &&
    arrow.DataType.isFloat(v.type) &&
    (v.type as arrow.Float).precision === arrow.Precision.DOUBLE &&
    into instanceof TypedColumn
  ) {
    const values = d.values as Float64Array;
    return { valid, push: (row) => into.pushNumber(values[row]), key: (row) => String(values[row]) };
  }
  return valuesFiller(t, v, column, into, isKey);
}

function valuesFiller(
  t: IcebergType,
  v: arrow.Vector,
  column: string,
  into: ColumnBuffer,
  isKey = true,
): Filler {
  const values = columnValues(t, v, column);
  return {
    valid: (row) => values[row] !== null,
    push: (row) => into.push(values[row]),
    key: (row) => (isKey ? canonicalScalar(values[row]) : ''),
  };
}

/** The chunk of a (dictionary) vector holding element `index`, and its position there. */
function locate(v: arrow.Vector, index: number): [arrow.Data, number] {
  let at = index;
  for (const d of v.data) {
    if (at < d.length) return [d, at];
    at -= d.length;
  }
  throw new InvalidTransactionError(`dictionary index ${index} is out of range`);
}

function opKinds(v: arrow.Vector | null, rows: number, hasKey: boolean): Uint8Array {
  const kinds = new Uint8Array(rows);
  if (!v) return kinds;
  let values: Value[];
  try {
    values = columnValues({ kind: 'string' }, v, OP_COLUMN);
  } catch (e) {
    if (e instanceof ColumnError) throw bad(OP_COLUMN, `${e.message}; expected utf8 or a dictionary of utf8`);
    throw e;
  }
  for (let i = 0; i < rows; i++) {
    const op = values[i];
    if (op === null || op === 'insert') kinds[i] = OP_INSERT;
    else if (op === 'upsert') kinds[i] = OP_UPSERT;
    else if (op === 'delete') kinds[i] = OP_DELETE;
    else throw bad(OP_COLUMN, `expected "insert", "upsert" or "delete", got ${JSON.stringify(op)}`, i);
    if (!hasKey && kinds[i] !== OP_INSERT)
      throw bad(OP_COLUMN, `table has no primary key, so only "insert" is allowed (got "${op}")`, i);
  }
  return kinds;
}

/** Decodes and validates an Arrow IPC stream body. Throws {@link InvalidTransactionError}. */
export function decodeArrowRequest(schema: TableSchema, body: Uint8Array, maxOps: number): OpBatch {
  let table: arrow.Table;
  try {
    table = arrow.tableFromIPC(body);
  } catch (e) {
    throw new InvalidTransactionError(`body is not a valid Arrow IPC stream: ${(e as Error).message}`);
  }
  if (table.schema.fields.length === 0) throw new InvalidTransactionError('the Arrow stream has no columns');
  const rows = table.numRows;
  if (rows === 0) throw new InvalidTransactionError('the Arrow stream has no rows');
  if (rows > maxOps) throw new InvalidTransactionError(`too many operations: ${rows} > ${maxOps}`);
  const codec = rowCodec(schema);
  const seen = new Set<string>();
  for (const f of table.schema.fields) {
    if (seen.has(f.name)) throw bad(f.name, 'appears twice in the Arrow schema');
    seen.add(f.name);
    if (f.name !== OP_COLUMN && !codec.columnIndex.has(f.name)) throw bad(f.name, 'unknown column');
  }
  const kinds = opKinds(table.getChild(OP_COLUMN), rows, codec.keyColumns.length > 0);
  const keyColumns = new Set(codec.keyColumns);
  const batch = new OpBatch(schema);
  const fillers = schema.fields.map((field, c) => {
    const v = table.getChild(field.name);
    if (!v) {
      if (field.required && kinds.some((k) => k !== OP_DELETE || keyColumns.has(c)))
        throw bad(field.name, 'is not nullable and missing from the Arrow stream');
      return undefined;
    }
    try {
      return fillerFor(field.type, v, field.name, batch.columns[c], keyColumns.has(c));
    } catch (e) {
      if (e instanceof ColumnError) throw bad(field.name, e.message);
      throw e;
    }
  });
  const keyParts: string[] = new Array(codec.keyColumns.length);
  for (let i = 0; i < rows; i++) {
    const del = kinds[i] === OP_DELETE;
    for (let c = 0; c < fillers.length; c++) {
      const f = fillers[c];
      const inKey = keyColumns.has(c);
      const field = schema.fields[c];
      if (!f || (del && !inKey) || !f.valid(i)) {
        if (inKey || (!del && field.required))
          throw bad(field.name, inKey ? 'is part of the primary key and is required' : 'is not nullable', i);
        batch.columns[c].push(null);
        continue;
      }
      f.push(i);
    }
    for (let k = 0; k < keyParts.length; k++) keyParts[k] = fillers[codec.keyColumns[k]]!.key(i);
    batch.addOp(kinds[i], keyParts.length === 0 ? undefined : keyFromParts(keyParts));
  }
  return batch;
}
