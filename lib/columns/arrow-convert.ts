/**
 * Iceberg types ↔ Arrow. Builds Arrow data from in-memory values (see lib/schema/values.ts)
 * and reads Arrow data back into them. Every Arrow field carries `PARQUET:field_id`, so the
 * Parquet files we write carry Iceberg field ids and engines resolve columns by id.
 */
import * as arrow from 'apache-arrow';
import type { FixedType, IcebergType, NestedField } from '../schema/iceberg-type.ts';
import type { Value } from '../schema/values.ts';

export const FIELD_ID = 'PARQUET:field_id';
const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

export function arrowTypeFor(t: IcebergType): arrow.DataType {
  switch (t.kind) {
    case 'boolean':
      return new arrow.Bool();
    case 'int':
      return new arrow.Int32();
    case 'long':
      return new arrow.Int64();
    case 'float':
      return new arrow.Float32();
    case 'double':
      return new arrow.Float64();
    case 'decimal':
      return new arrow.Decimal(t.scale, t.precision, 128);
    case 'date':
      return new arrow.DateDay();
    case 'time':
      return new arrow.TimeMicrosecond();
    case 'timestamp':
      return new arrow.TimestampMicrosecond();
    case 'timestamptz':
      return new arrow.TimestampMicrosecond('UTC');
    case 'string':
      return new arrow.Utf8();
    case 'uuid':
      return new arrow.FixedSizeBinary(16);
    case 'binary':
      return new arrow.Binary();
    case 'fixed':
      return new arrow.FixedSizeBinary(t.length);
    case 'list':
      return new arrow.List(fieldWithId('element', t.elementId, !t.elementRequired, t.element));
    case 'map': {
      const entries = new arrow.Struct([
        fieldWithId('key', t.keyId, false, t.key),
        fieldWithId('value', t.valueId, !t.valueRequired, t.value),
      ]);
      return new arrow.Map_(new arrow.Field('key_value', entries, false));
    }
    case 'struct':
      return new arrow.Struct(t.fields.map(arrowFieldFor));
  }
}

function fieldWithId(name: string, id: number, nullable: boolean, t: IcebergType): arrow.Field {
  return new arrow.Field(name, arrowTypeFor(t), nullable, new Map([[FIELD_ID, String(id)]]));
}

export function arrowFieldFor(f: NestedField): arrow.Field {
  return fieldWithId(f.name, f.id, !f.required, f.type);
}

export function arrowSchemaFor(fields: NestedField[]): arrow.Schema {
  return new arrow.Schema(fields.map(arrowFieldFor));
}

/** Validity bitmap (LSB first) for values where `null`/`undefined` is null; undefined when none are null. */
function validityOf(values: ArrayLike<Value>): { bitmap: Uint8Array | undefined; nullCount: number } {
  let nullCount = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === null || values[i] === undefined) nullCount++;
  if (nullCount === 0) return { bitmap: undefined, nullCount };
  const bitmap = new Uint8Array((values.length + 7) >> 3);
  for (let i = 0; i < values.length; i++) {
    if (values[i] !== null && values[i] !== undefined) bitmap[i >> 3] |= 1 << (i & 7);
  }
  return { bitmap, nullCount };
}

function bytesData(
  type: arrow.Binary,
  values: ArrayLike<Value>,
  toBytesLen: (v: Value) => number,
  write: (v: Value, out: Uint8Array, at: number) => number,
): arrow.Data {
  const n = values.length;
  const { bitmap, nullCount } = validityOf(values);
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v !== null && v !== undefined) total += toBytesLen(v);
  }
  const data = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v !== null && v !== undefined) at += write(v, data, at);
    offsets[i + 1] = at;
  }
  return arrow.makeData({
    type,
    length: n,
    nullCount,
    nullBitmap: bitmap,
    valueOffsets: offsets,
    data: data.subarray(0, at),
  });
}

/** Writes UTF-8 for a string column quickly: encodeInto into one buffer sized for the worst case. */
function utf8Data(values: ArrayLike<Value>): arrow.Data<arrow.Utf8> {
  const n = values.length;
  const { bitmap, nullCount } = validityOf(values);
  const offsets = new Int32Array(n + 1);
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v === 'string') worst += v.length * 3;
  }
  const data = new Uint8Array(worst);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v === 'string') at += utf8.encodeInto(v, data.subarray(at)).written;
    offsets[i + 1] = at;
  }
  return arrow.makeData({
    type: new arrow.Utf8(),
    length: n,
    nullCount,
    nullBitmap: bitmap,
    valueOffsets: offsets,
    data: data.subarray(0, at),
  });
}

function uuidBytes(s: string, out: Uint8Array, at: number): void {
  const hex = s.replace(/-/g, '');
  for (let i = 0; i < 16; i++) out[at + i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
}

function uuidString(b: Uint8Array, at: number): string {
  let h = '';
  for (let i = 0; i < 16; i++) h += b[at + i].toString(16).padStart(2, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Writes a signed 128-bit two's complement integer as four little-endian 32-bit words. */
export function writeInt128(v: bigint, out: Uint32Array, at: number): void {
  let x = BigInt.asUintN(128, v);
  for (let w = 0; w < 4; w++) {
    out[at + w] = Number(x & 0xffffffffn);
    x >>= 32n;
  }
}

export function readInt128(words: Uint32Array, at: number): bigint {
  let x = 0n;
  for (let w = 3; w >= 0; w--) x = (x << 32n) | BigInt(words[at + w]);
  return BigInt.asIntN(128, x);
}

/** Arrow data for an Iceberg type from in-memory values. */
export function buildData(t: IcebergType, values: ArrayLike<Value>): arrow.Data {
  const n = values.length;
  const type = arrowTypeFor(t);
  switch (t.kind) {
    case 'boolean': {
      const { bitmap, nullCount } = validityOf(values);
      const bits = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) if (values[i] === true) bits[i >> 3] |= 1 << (i & 7);
      return arrow.makeData({
        type: type as arrow.Bool,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        data: bits,
      });
    }
    case 'int':
    case 'date': {
      const { bitmap, nullCount } = validityOf(values);
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = (values[i] as number) ?? 0;
      return arrow.makeData({ type: type as arrow.Int32, length: n, nullCount, nullBitmap: bitmap, data: a });
    }
    case 'float':
    case 'double': {
      const { bitmap, nullCount } = validityOf(values);
      const a = t.kind === 'float' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = (values[i] as number) ?? 0;
      return arrow.makeData({
        type: type as arrow.Float64,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        data: a,
      });
    }
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const { bitmap, nullCount } = validityOf(values);
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = (values[i] as bigint) ?? 0n;
      return arrow.makeData({ type: type as arrow.Int64, length: n, nullCount, nullBitmap: bitmap, data: a });
    }
    case 'decimal': {
      const { bitmap, nullCount } = validityOf(values);
      const words = new Uint32Array(n * 4);
      for (let i = 0; i < n; i++)
        if (values[i] !== null && values[i] !== undefined) writeInt128(values[i] as bigint, words, i * 4);
      return arrow.makeData({
        type: type as arrow.Decimal,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        data: words,
      });
    }
    case 'string':
      return utf8Data(values);
    case 'binary':
      return bytesData(
        type as arrow.Binary,
        values,
        (v) => (v as Uint8Array).length,
        (v, out, at) => {
          out.set(v as Uint8Array, at);
          return (v as Uint8Array).length;
        },
      );
    case 'uuid':
    case 'fixed': {
      const width = t.kind === 'uuid' ? 16 : (t as FixedType).length;
      const { bitmap, nullCount } = validityOf(values);
      const data = new Uint8Array(n * width);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) continue;
        if (t.kind === 'uuid') uuidBytes(v as string, data, i * width);
        else data.set(v as Uint8Array, i * width);
      }
      return arrow.makeData({
        type: type as arrow.FixedSizeBinary,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        data,
      });
    }
    case 'list': {
      const { bitmap, nullCount } = validityOf(values);
      const offsets = new Int32Array(n + 1);
      const flat: Value[] = [];
      for (let i = 0; i < n; i++) {
        const v = values[i] as Value[] | null;
        if (v) for (const x of v) flat.push(x);
        offsets[i + 1] = flat.length;
      }
      const child = buildData(t.element, flat);
      return arrow.makeData({
        type: type as arrow.List,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        valueOffsets: offsets,
        child,
      });
    }
    case 'map': {
      const { bitmap, nullCount } = validityOf(values);
      const offsets = new Int32Array(n + 1);
      const keys: Value[] = [];
      const vals: Value[] = [];
      for (let i = 0; i < n; i++) {
        const v = values[i] as [Value, Value][] | null;
        if (v) {
          for (const [k, x] of v) {
            keys.push(k);
            vals.push(x);
          }
        }
        offsets[i + 1] = keys.length;
      }
      const mapType = type as arrow.Map_;
      const entriesType = mapType.children[0].type as arrow.Struct;
      const entries = arrow.makeData({
        type: entriesType,
        length: keys.length,
        nullCount: 0,
        children: [buildData(t.key, keys), buildData(t.value, vals)],
      });
      return arrow.makeData({
        type: mapType,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        valueOffsets: offsets,
        child: entries,
      });
    }
    case 'struct': {
      const { bitmap, nullCount } = validityOf(values);
      const children = t.fields.map((f, j) => {
        const col: Value[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const v = values[i] as Value[] | null;
          col[i] = v ? v[j] : null;
        }
        return buildData(f.type, col);
      });
      return arrow.makeData({
        type: type as arrow.Struct,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        children,
      });
    }
  }
}

/** One record batch from columns of values (all the same length). */
export function buildRecordBatch(schema: arrow.Schema, columns: arrow.Data[]): arrow.RecordBatch {
  const length = columns.length > 0 ? columns[0].length : 0;
  const data = arrow.makeData({
    type: new arrow.Struct(schema.fields),
    length,
    nullCount: 0,
    children: columns,
  });
  return new arrow.RecordBatch(schema, data);
}

export function batchFromValues(fields: NestedField[], columns: ArrayLike<Value>[]): arrow.RecordBatch {
  const schema = arrowSchemaFor(fields);
  return buildRecordBatch(
    schema,
    fields.map((f, i) => buildData(f.type, columns[i])),
  );
}

function isValid(d: arrow.Data, i: number): boolean {
  const bm = d.nullBitmap;
  if (!bm || bm.length === 0 || d.nullCount === 0) return true;
  const j = d.offset + i;
  return (bm[j >> 3] & (1 << (j & 7))) !== 0;
}

/** In-memory values from Arrow data of an Iceberg type (the inverse of {@link buildData}). */
export function readData(t: IcebergType, d: arrow.Data): Value[] {
  const n = d.length;
  const out: Value[] = new Array(n);
  // Arrow slices fixed-width value buffers and offset buffers with the data (`values[i]` is
  // element i); only validity bitmaps and boolean bits are addressed from `d.offset`.
  const off = d.offset;
  switch (t.kind) {
    case 'boolean': {
      const bits = d.values as Uint8Array;
      for (let i = 0; i < n; i++) {
        const j = off + i;
        out[i] = isValid(d, i) ? (bits[j >> 3] & (1 << (j & 7))) !== 0 : null;
      }
      return out;
    }
    case 'int':
    case 'date':
    case 'float':
    case 'double':
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const v = d.values as Int32Array | Float64Array | BigInt64Array;
      for (let i = 0; i < n; i++) out[i] = isValid(d, i) ? v[i] : null;
      return out;
    }
    case 'decimal': {
      const w = d.values as Uint32Array;
      for (let i = 0; i < n; i++) out[i] = isValid(d, i) ? readInt128(w, i * 4) : null;
      return out;
    }
    case 'string': {
      const offsets = d.valueOffsets as Int32Array;
      const bytes = d.values as Uint8Array;
      for (let i = 0; i < n; i++) {
        out[i] = isValid(d, i) ? utf8d.decode(bytes.subarray(offsets[i], offsets[i + 1])) : null;
      }
      return out;
    }
    case 'binary': {
      const offsets = d.valueOffsets as Int32Array;
      const bytes = d.values as Uint8Array;
      for (let i = 0; i < n; i++) {
        out[i] = isValid(d, i) ? bytes.slice(offsets[i], offsets[i + 1]) : null;
      }
      return out;
    }
    case 'uuid':
    case 'fixed': {
      const width = t.kind === 'uuid' ? 16 : (t as FixedType).length;
      const bytes = d.values as Uint8Array;
      for (let i = 0; i < n; i++) {
        if (!isValid(d, i)) out[i] = null;
        else if (t.kind === 'uuid') out[i] = uuidString(bytes, i * width);
        else out[i] = bytes.slice(i * width, (i + 1) * width);
      }
      return out;
    }
    case 'list': {
      if (n === 0) return out;
      const offsets = d.valueOffsets as Int32Array;
      const child = readData(t.element, d.children[0]);
      for (let i = 0; i < n; i++) out[i] = isValid(d, i) ? child.slice(offsets[i], offsets[i + 1]) : null;
      return out;
    }
    case 'map': {
      if (n === 0) return out;
      const offsets = d.valueOffsets as Int32Array;
      const entries = d.children[0];
      const keys = readData(t.key, entries.children[0]);
      const vals = readData(t.value, entries.children[1]);
      for (let i = 0; i < n; i++) {
        if (!isValid(d, i)) {
          out[i] = null;
          continue;
        }
        const pairs: [Value, Value][] = [];
        for (let j = offsets[i]; j < offsets[i + 1]; j++) pairs.push([keys[j], vals[j]]);
        out[i] = pairs;
      }
      return out;
    }
    case 'struct': {
      const children = t.fields.map((f, j) => readData(f.type, d.children[j]));
      for (let i = 0; i < n; i++) out[i] = isValid(d, i) ? children.map((c) => c[i]) : null;
      return out;
    }
  }
}

/** Reads one column of a table (all its batches) into values. */
export function readColumn(t: IcebergType, table: arrow.Table, index: number): Value[] {
  const out: Value[] = [];
  for (const batch of table.batches) {
    const d = batch.data.children[index];
    for (const v of readData(t, d)) out.push(v);
  }
  return out;
}

export function tableToIpc(batch: arrow.RecordBatch | arrow.Table): Uint8Array {
  const table = batch instanceof arrow.Table ? batch : new arrow.Table([batch]);
  return arrow.tableToIPC(table, 'stream');
}

export function tableFromIpc(bytes: Uint8Array): arrow.Table {
  return arrow.tableFromIPC(bytes);
}

function takeValidity(
  d: arrow.Data,
  indices: ArrayLike<number>,
): { bitmap: Uint8Array | undefined; nullCount: number } {
  if (d.nullCount === 0 || !d.nullBitmap || d.nullBitmap.length === 0)
    return { bitmap: undefined, nullCount: 0 };
  const n = indices.length;
  const bitmap = new Uint8Array((n + 7) >> 3);
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    if (isValid(d, indices[i])) bitmap[i >> 3] |= 1 << (i & 7);
    else nullCount++;
  }
  return { bitmap: nullCount > 0 ? bitmap : undefined, nullCount };
}

/**
 * The rows `indices` of Arrow data, as new Arrow data, without turning values into JavaScript
 * objects (compaction rewrites whole files this way).
 */
export function takeData(t: IcebergType, d: arrow.Data, indices: ArrayLike<number>): arrow.Data {
  const n = indices.length;
  // As in readData: values by element index, boolean bits from `d.offset`.
  const off = d.offset;
  const { bitmap, nullCount } = takeValidity(d, indices);
  switch (t.kind) {
    case 'boolean': {
      const src = d.values as Uint8Array;
      const bits = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) {
        const j = off + indices[i];
        if (src[j >> 3] & (1 << (j & 7))) bits[i >> 3] |= 1 << (i & 7);
      }
      return arrow.makeData({
        type: d.type as arrow.Bool,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        data: bits,
      });
    }
    case 'int':
    case 'date':
    case 'float':
    case 'double':
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const src = d.values as Int32Array;
      const out = new (src.constructor as { new (n: number): Int32Array })(n);
      for (let i = 0; i < n; i++) out[i] = src[indices[i]];
      return arrow.makeData({
        type: d.type as arrow.Int32,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        data: out,
      });
    }
    case 'decimal':
    case 'uuid':
    case 'fixed': {
      const width = t.kind === 'decimal' ? 4 : t.kind === 'uuid' ? 16 : (t as FixedType).length;
      const src = d.values as Uint8Array | Uint32Array;
      const out = new (src.constructor as { new (n: number): Uint8Array })(n * width);
      for (let i = 0; i < n; i++) {
        const from = indices[i] * width;
        out.set(src.subarray(from, from + width), i * width);
      }
      return arrow.makeData({
        type: d.type as arrow.FixedSizeBinary,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        data: out as Uint8Array,
      });
    }
    case 'string':
    case 'binary': {
      const offsets = d.valueOffsets as Int32Array;
      const src = d.values as Uint8Array;
      const outOffsets = new Int32Array(n + 1);
      let total = 0;
      for (let i = 0; i < n; i++) {
        const j = indices[i];
        total += offsets[j + 1] - offsets[j];
        outOffsets[i + 1] = total;
      }
      const out = new Uint8Array(total);
      for (let i = 0; i < n; i++) {
        const j = indices[i];
        out.set(src.subarray(offsets[j], offsets[j + 1]), outOffsets[i]);
      }
      return arrow.makeData({
        type: d.type as arrow.Binary,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        valueOffsets: outOffsets,
        data: out,
      });
    }
    case 'list':
    case 'map': {
      const offsets = d.valueOffsets as Int32Array;
      const outOffsets = new Int32Array(n + 1);
      const childIdx: number[] = [];
      for (let i = 0; i < n; i++) {
        const j = indices[i];
        for (let k = offsets[j]; k < offsets[j + 1]; k++) childIdx.push(k);
        outOffsets[i + 1] = childIdx.length;
      }
      const child = d.children[0];
      let taken: arrow.Data;
      if (t.kind === 'list') taken = takeData(t.element, child, childIdx);
      else {
        taken = arrow.makeData({
          type: child.type as arrow.Struct,
          length: childIdx.length,
          nullCount: 0,
          children: [
            takeData(t.key, child.children[0], childIdx),
            takeData(t.value, child.children[1], childIdx),
          ],
        });
      }
      return arrow.makeData({
        type: d.type as arrow.List,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        valueOffsets: outOffsets,
        child: taken,
      });
    }
    case 'struct':
      // Children are positioned like their struct (Arrow slices them together).
      return arrow.makeData({
        type: d.type as arrow.Struct,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        children: t.fields.map((f, c) => takeData(f.type, d.children[c], indices)),
      });
  }
}
