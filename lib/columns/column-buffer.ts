/**
 * Growable in-memory columns for the MemSlice. Fixed-width types live in typed arrays (8 bytes
 * per long, no boxing); strings, binary, decimals and nested values in plain arrays. A column
 * turns any subset of its rows into Arrow data for a tail or data file.
 */
import os from 'node:os';
import * as arrow from 'apache-arrow';
import type { IcebergType } from '../schema/iceberg-type.ts';
import { isPrimitive } from '../schema/iceberg-type.ts';
import type { Value } from '../schema/values.ts';
import { compareScalars } from '../schema/values.ts';
import { arrowTypeFor, buildData } from './arrow-convert.ts';
import { type ColumnStats, int64Stats, numericStats } from './column-stats.ts';

export interface ColumnBuffer {
  readonly length: number;
  push(v: Value): void;
  /** Pushes value i of `src`, a column of the same type (a decoded request's, see op-batch.ts). */
  pushFrom(src: ColumnBuffer, i: number): void;
  /** Pushes values [from, to) of `src`, a column of the same type, as {@link pushFrom} each would. */
  pushRange(src: ColumnBuffer, from: number, to: number): void;
  get(i: number): Value;
  /** Arrow data for the given rows, in that order. */
  toData(rows: ArrayLike<number>): arrow.Data;
  /** Approximate bytes held. */
  readonly byteSize: number;
  /** Value/null/NaN counts and bounds over the given rows (bounds only for primitive types). */
  stats(rows: ArrayLike<number>): ColumnStats;
  /**
   * Rows [start, end), to rebuild as a column in a worker thread ({@link columnFromImage}): a
   * copy, or for a column in shared memory a view of it (valid while the column lives; its rows
   * never change).
   */
  image(start?: number, end?: number): ColumnImage;
}

/**
 * A column's contents as plain data (typed arrays it owns or shares, or values), for
 * postMessage. A `utf8` image's offsets are positions in its bytes (not necessarily from 0).
 */
export type ColumnImage =
  | { kind: 'typed'; values: Typed; flags: Uint8Array | undefined; length: number }
  | { kind: 'utf8'; bytes: Uint8Array; offsets: Int32Array; flags: Uint8Array | undefined; length: number }
  | { kind: 'array'; values: Value[] };

/** The buffers of an image, to transfer rather than copy (shared memory is not transferred). */
export function imageBuffers(image: ColumnImage): ArrayBuffer[] {
  const all: ArrayBufferLike[] = [];
  if (image.kind === 'array') return [];
  if (image.kind === 'typed') all.push(image.values.buffer);
  else all.push(image.bytes.buffer, image.offsets.buffer);
  if (image.flags) all.push(image.flags.buffer);
  return all.filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
}

/** The column an image was taken of (read-only use: toData, stats, get). */
export function columnFromImage(type: IcebergType, image: ColumnImage): ColumnBuffer {
  const column = columnBufferFor(type, 0);
  if (image.kind === 'typed' && column instanceof TypedColumn) column.adopt(image);
  else if (image.kind === 'utf8' && column instanceof Utf8Column) column.adopt(image);
  else if (image.kind === 'array' && column instanceof ArrayColumn)
    for (const v of image.values) column.push(v);
  else throw new Error(`a ${image.kind} column image does not fit a ${type.kind} column`);
  return column;
}

/** A column's null flags (1 = value present), made on its first null; none means no nulls. */
class NullMask {
  flags: Uint8Array | undefined;

  /** Bytes held for `length` rows. */
  bytes(length: number): number {
    return this.flags ? length : 0;
  }

  /** Keeps room for `capacity` rows (call when the column's own arrays grow). */
  grow(capacity: number): void {
    if (!this.flags || this.flags.length >= capacity) return;
    const next = new Uint8Array(capacity);
    next.set(this.flags);
    this.flags = next;
  }

  /** Records row `row` (the next one) as null or not; `capacity` sizes the flags when first made. */
  set(row: number, isNull: boolean, capacity: number): void {
    if (isNull) {
      if (!this.flags) {
        this.flags = new Uint8Array(capacity);
        this.flags.fill(1, 0, row);
      }
    } else if (this.flags) this.flags[row] = 1;
  }

  isNull(row: number): boolean {
    return this.flags !== undefined && this.flags[row] === 0;
  }

  /** The Arrow validity bitmap of the given rows, in that order (undefined when none is null). */
  bitmap(rows: ArrayLike<number>): { bitmap: Uint8Array | undefined; nullCount: number } {
    const flags = this.flags;
    if (!flags) return { bitmap: undefined, nullCount: 0 };
    const n = rows.length;
    const bitmap = new Uint8Array((n + 7) >> 3);
    let nullCount = 0;
    for (let i = 0; i < n; i++) {
      if (flags[rows[i]]) bitmap[i >> 3] |= 1 << (i & 7);
      else nullCount++;
    }
    return { bitmap: nullCount === 0 ? undefined : bitmap, nullCount };
  }
}

/** The first row when `rows` are consecutive (r, r + 1, …), else -1 (and 0 for no rows). */
function runStart(rows: ArrayLike<number>): number {
  const n = rows.length;
  if (n === 0) return 0;
  const first = rows[0];
  if (rows[n - 1] !== first + n - 1) return -1;
  for (let i = 1; i < n; i++) if (rows[i] !== first + i) return -1;
  return first;
}

type Typed = Int32Array | Float32Array | Float64Array | BigInt64Array | Uint8Array;
type TypedCtor = {
  new (n: number): Typed;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): Typed;
  readonly BYTES_PER_ELEMENT: number;
};

/**
 * `n` zeroed elements; `shared`: in a SharedArrayBuffer, which a worker thread reads in place
 * (a MemSlice's columns: rows below a column's length never change, so an image of them can
 * be a view instead of a copy).
 */
function typedArray(ctor: TypedCtor, n: number, shared: boolean): Typed {
  return shared ? new ctor(new SharedArrayBuffer(n * ctor.BYTES_PER_ELEMENT)) : new ctor(n);
}

function wordsOf(values: Typed): Int32Array | undefined {
  return values instanceof BigInt64Array
    ? new Int32Array(values.buffer, values.byteOffset, values.length * 2)
    : undefined;
}

if (os.endianness() !== 'LE') throw new Error('moonlink needs a little-endian machine');

export class TypedColumn implements ColumnBuffer {
  private values: Typed;
  /** 64-bit columns: the same memory as 32-bit words, to move values without a bigint each. */
  private words: Int32Array | undefined;
  private readonly nulls = new NullMask();
  length = 0;
  private readonly arrowType: arrow.DataType;

  constructor(
    private readonly type: IcebergType,
    private readonly ctor: TypedCtor,
    private readonly zero: number | bigint,
    capacity: number,
    private readonly shared = false,
  ) {
    this.values = typedArray(ctor, capacity, shared);
    this.words = wordsOf(this.values);
    this.arrowType = arrowTypeFor(type);
  }

  image(start = 0, end = this.length): ColumnImage {
    return {
      kind: 'typed',
      // Shared memory is lent as it is (rows below the length never change); else a copy.
      values: this.shared ? this.values.subarray(start, end) : this.values.slice(start, end),
      flags: this.nulls.flags?.slice(start, end),
      length: end - start,
    };
  }

  adopt(image: Extract<ColumnImage, { kind: 'typed' }>): void {
    this.values = image.values;
    this.words = wordsOf(image.values);
    this.nulls.flags = image.flags;
    this.length = image.length;
  }

  private grow(): void {
    const next = typedArray(this.ctor, Math.max(1024, this.values.length * 2), this.shared);
    next.set(this.values as never);
    this.values = next;
    this.words = wordsOf(next);
    this.nulls.grow(next.length);
  }

  /** A non-null number: for 64-bit columns a safe integer, stored without making a bigint. */
  pushNumber(n: number): void {
    if (this.length === this.values.length) this.grow();
    const row = this.length++;
    this.nulls.set(row, false, this.values.length);
    const words = this.words;
    if (words === undefined) {
      this.values[row] = n as never;
      return;
    }
    const hi = Math.floor(n / 4294967296);
    words[2 * row] = (n - hi * 4294967296) | 0;
    words[2 * row + 1] = hi;
  }

  /** A non-null 64-bit value given as the two 32-bit words at `2i`, `2i + 1` of `from`. */
  pushWords(from: Int32Array, i: number): void {
    if (this.length === this.values.length) this.grow();
    const row = this.length++;
    this.nulls.set(row, false, this.values.length);
    const words = this.words!;
    words[2 * row] = from[2 * i];
    words[2 * row + 1] = from[2 * i + 1];
  }

  /** Whether values are 64-bit (moved as words) rather than numbers. */
  get wide(): boolean {
    return this.words !== undefined;
  }

  pushFrom(src: ColumnBuffer, i: number): void {
    if (!(src instanceof TypedColumn) || src.ctor !== this.ctor) return this.push(src.get(i));
    if (this.length === this.values.length) this.grow();
    const row = this.length++;
    const isNull = src.nulls.isNull(i);
    this.nulls.set(row, isNull, this.values.length);
    const words = this.words;
    if (words === undefined) {
      this.values[row] = src.values[i];
      return;
    }
    const from = src.words!;
    words[2 * row] = from[2 * i];
    words[2 * row + 1] = from[2 * i + 1];
  }

  pushRange(src: ColumnBuffer, from: number, to: number): void {
    if (!(src instanceof TypedColumn) || src.ctor !== this.ctor) {
      for (let i = from; i < to; i++) this.pushFrom(src, i);
      return;
    }
    const n = to - from;
    while (this.length + n > this.values.length) this.grow();
    const at = this.length;
    this.values.set(src.values.subarray(from, to) as never, at);
    this.length += n;
    if (src.nulls.flags || this.nulls.flags)
      for (let i = 0; i < n; i++) this.nulls.set(at + i, src.nulls.isNull(from + i), this.values.length);
  }

  get byteSize(): number {
    return this.length * this.values.BYTES_PER_ELEMENT + this.nulls.bytes(this.length);
  }

  push(v: Value): void {
    if (this.length === this.values.length) this.grow();
    const isNull = v === null || v === undefined;
    this.nulls.set(this.length, isNull, this.values.length);
    if (isNull) this.values[this.length] = this.zero as never;
    else this.values[this.length] = (this.type.kind === 'boolean' ? (v ? 1 : 0) : v) as never;
    this.length++;
  }

  get(i: number): Value {
    if (this.nulls.isNull(i)) return null;
    const v = this.values[i];
    return this.type.kind === 'boolean' ? v === 1 : v;
  }

  stats(rows: ArrayLike<number>): ColumnStats {
    const v = this.values;
    const nulls = this.nulls;
    if (v instanceof BigInt64Array)
      return int64Stats(
        v,
        rows.length,
        (i) => rows[i],
        nulls.flags ? (i) => nulls.isNull(rows[i]) : undefined,
      );
    const s = numericStats(rows.length, this.type.kind === 'float' || this.type.kind === 'double', (i) => {
      const r = rows[i];
      return nulls.isNull(r) ? null : v[r];
    });
    if (this.type.kind === 'boolean' && s.lower !== undefined) {
      s.lower = s.lower === 1;
      s.upper = s.upper === 1;
    }
    return s;
  }

  toData(rows: ArrayLike<number>): arrow.Data {
    const n = rows.length;
    const { bitmap, nullCount } = this.nulls.bitmap(rows);
    if (this.type.kind === 'boolean') {
      const bits = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) if (this.values[rows[i]]) bits[i >> 3] |= 1 << (i & 7);
      return arrow.makeData({
        type: this.arrowType as arrow.Bool,
        length: n,
        nullCount,
        nullBitmap: bitmap,
        data: bits,
      });
    }
    const start = runStart(rows);
    let out: Typed;
    if (start >= 0) out = this.values.slice(start, start + n);
    else {
      out = new this.ctor(n);
      const words = this.words;
      if (words) {
        // 64-bit values as word pairs: reading a BigInt64Array element makes a bigint.
        const to = new Int32Array(out.buffer, 0, 2 * n);
        for (let i = 0; i < n; i++) {
          const r = rows[i];
          to[2 * i] = words[2 * r];
          to[2 * i + 1] = words[2 * r + 1];
        }
      } else {
        const src = this.values;
        for (let i = 0; i < n; i++) out[i] = src[rows[i]];
      }
    }
    return arrow.makeData({
      type: this.arrowType as arrow.Int32,
      length: n,
      nullCount,
      nullBitmap: bitmap,
      data: out as Int32Array,
    });
  }
}

class ArrayColumn implements ColumnBuffer {
  private readonly values: Value[] = [];
  private bytes = 0;

  constructor(private readonly type: IcebergType) {}

  get length(): number {
    return this.values.length;
  }

  get byteSize(): number {
    return this.bytes + this.values.length * 8;
  }

  push(v: Value): void {
    this.values.push(v);
    if (typeof v === 'string') this.bytes += v.length + 16;
    else if (v instanceof Uint8Array) this.bytes += v.length + 64;
    else if (v !== null) this.bytes += 32;
  }

  pushFrom(src: ColumnBuffer, i: number): void {
    this.push(src.get(i));
  }

  pushRange(src: ColumnBuffer, from: number, to: number): void {
    for (let i = from; i < to; i++) this.push(src.get(i));
  }

  image(start = 0, end = this.length): ColumnImage {
    return { kind: 'array', values: this.values.slice(start, end) };
  }

  get(i: number): Value {
    return this.values[i];
  }

  stats(rows: ArrayLike<number>): ColumnStats {
    const n = rows.length;
    let nullCount = 0;
    let lo: Value;
    let hi: Value;
    const primitive = isPrimitive(this.type);
    for (let i = 0; i < n; i++) {
      const x = this.values[rows[i]];
      if (x === null || x === undefined) {
        nullCount++;
        continue;
      }
      if (!primitive) continue;
      if (lo === undefined || compareScalars(x, lo) < 0) lo = x;
      if (hi === undefined || compareScalars(x, hi) > 0) hi = x;
    }
    const s: ColumnStats = { valueCount: n, nullCount };
    if (lo !== undefined) {
      s.lower = lo;
      s.upper = hi;
    }
    return s;
  }

  toData(rows: ArrayLike<number>): arrow.Data {
    const n = rows.length;
    const picked: Value[] = new Array(n);
    for (let i = 0; i < n; i++) picked[i] = this.values[rows[i]];
    return buildData(this.type, picked);
  }
}

/**
 * Strings as UTF-8 bytes and offsets, encoded once when pushed: tail files and the data file
 * take the bytes as they are, bounds compare bytes (UTF-8 order is Iceberg's), and the heap holds
 * two buffers instead of a string object per row.
 */
export class Utf8Column implements ColumnBuffer {
  private bytes: Buffer;
  private offsets: Int32Array;
  private readonly nulls = new NullMask();
  private used = 0;
  length = 0;
  private readonly arrowType = arrowTypeFor({ kind: 'string' }) as arrow.Utf8;

  constructor(
    capacity: number,
    private readonly shared = false,
  ) {
    this.bytes = this.newBytes(capacity * 64);
    this.offsets = typedArray(Int32Array, capacity + 1, shared) as Int32Array;
  }

  private newBytes(n: number): Buffer {
    return this.shared ? Buffer.from(new SharedArrayBuffer(n)) : Buffer.allocUnsafe(n);
  }

  get byteSize(): number {
    return this.used + 4 * this.length + this.nulls.bytes(this.length);
  }

  push(v: Value): void {
    const n = this.length;
    if (n + 2 > this.offsets.length) this.growOffsets();
    const isNull = v === null || v === undefined;
    this.nulls.set(n, isNull, this.offsets.length);
    if (isNull) {
      this.offsets[n + 1] = this.used;
      this.length++;
      return;
    }
    const s = v as string;
    this.reserve(s.length * 3);
    // ASCII by hand (most keys and names); anything else through the native encoder.
    const bytes = this.bytes;
    let at = this.used;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[at++] = c;
    }
    if (i < s.length) at = this.used + bytes.write(s, this.used, 'utf8');
    this.used = at;
    this.offsets[n + 1] = at;
    this.length++;
  }

  private reserve(bytes: number): void {
    const worst = this.used + bytes;
    if (worst <= this.bytes.length) return;
    const next = this.newBytes(Math.max(worst, this.bytes.length * 2));
    this.bytes.copy(next, 0, 0, this.used);
    this.bytes = next;
  }

  /** A non-null string given as its UTF-8 bytes `src[start, end)` (valid UTF-8). */
  pushBytes(src: Uint8Array, start: number, end: number): void {
    const n = this.length;
    if (n + 2 > this.offsets.length) this.growOffsets();
    this.nulls.set(n, false, this.offsets.length);
    this.reserve(end - start);
    const bytes = this.bytes;
    let at = this.used;
    if (end - start <= 32) {
      for (let k = start; k < end; k++) bytes[at++] = src[k];
    } else {
      bytes.set(src.subarray(start, end), at);
      at += end - start;
    }
    this.used = at;
    this.offsets[n + 1] = at;
    this.length++;
  }

  pushFrom(src: ColumnBuffer, i: number): void {
    if (!(src instanceof Utf8Column)) return this.push(src.get(i));
    if (src.nulls.isNull(i)) return this.push(null);
    this.pushBytes(src.bytes, src.offsets[i], src.offsets[i + 1]);
  }

  pushRange(src: ColumnBuffer, from: number, to: number): void {
    if (!(src instanceof Utf8Column)) {
      for (let i = from; i < to; i++) this.push(src.get(i));
      return;
    }
    const n = to - from;
    while (this.length + n + 1 > this.offsets.length) this.growOffsets();
    const start = src.offsets[from];
    const end = src.offsets[to];
    this.reserve(end - start);
    this.bytes.set(src.bytes.subarray(start, end), this.used);
    const at = this.length;
    const shift = this.used - start;
    for (let i = 1; i <= n; i++) this.offsets[at + i] = src.offsets[from + i] + shift;
    this.used += end - start;
    this.length += n;
    if (src.nulls.flags || this.nulls.flags)
      for (let i = 0; i < n; i++) this.nulls.set(at + i, src.nulls.isNull(from + i), this.offsets.length);
  }

  image(start = 0, end = this.length): ColumnImage {
    if (this.shared) {
      // Lent as they are: offsets stay positions in the bytes (see adopt).
      return {
        kind: 'utf8',
        bytes: this.bytes.subarray(0, this.offsets[end]),
        offsets: this.offsets.subarray(start, end + 1),
        flags: this.nulls.flags?.slice(start, end),
        length: end - start,
      };
    }
    const offsets = this.offsets.slice(start, end + 1);
    const base = offsets[0];
    if (base !== 0) for (let i = 0; i < offsets.length; i++) offsets[i] -= base;
    return {
      kind: 'utf8',
      bytes: new Uint8Array(this.bytes.subarray(base, this.offsets[end])),
      offsets,
      flags: this.nulls.flags?.slice(start, end),
      length: end - start,
    };
  }

  adopt(image: Extract<ColumnImage, { kind: 'utf8' }>): void {
    this.bytes = Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength);
    this.offsets = image.offsets;
    this.nulls.flags = image.flags;
    this.used = image.offsets[image.length];
    this.length = image.length;
  }

  private growOffsets(): void {
    const next = typedArray(Int32Array, Math.max(1025, this.offsets.length * 2), this.shared) as Int32Array;
    next.set(this.offsets);
    this.offsets = next;
    this.nulls.grow(next.length);
  }

  get(i: number): Value {
    if (this.nulls.isNull(i)) return null;
    return this.bytes.toString('utf8', this.offsets[i], this.offsets[i + 1]);
  }

  toData(rows: ArrayLike<number>): arrow.Data {
    const n = rows.length;
    const { offsets, bytes } = this;
    const outOffsets = new Int32Array(n + 1);
    let out: Uint8Array;
    const start = runStart(rows);
    if (start >= 0) {
      // One run of rows: its bytes as they are, offsets moved to start at 0.
      const base = offsets[start];
      for (let i = 1; i <= n; i++) outOffsets[i] = offsets[start + i] - base;
      out = new Uint8Array(offsets[start + n] - base);
      out.set(bytes.subarray(base, offsets[start + n]));
    } else {
      let total = 0;
      for (let i = 0; i < n; i++) {
        total += offsets[rows[i] + 1] - offsets[rows[i]];
        outOffsets[i + 1] = total;
      }
      out = new Uint8Array(total);
      for (let i = 0; i < n; i++) {
        const r = rows[i];
        let at = outOffsets[i];
        for (let k = offsets[r], end = offsets[r + 1]; k < end; k++) out[at++] = bytes[k];
      }
    }
    const { bitmap, nullCount } = this.nulls.bitmap(rows);
    return arrow.makeData({
      type: this.arrowType,
      length: n,
      nullCount,
      nullBitmap: bitmap,
      valueOffsets: outOffsets,
      data: out,
    });
  }

  /** Compares rows a and b by their bytes. */
  private compare(a: number, b: number): number {
    const { offsets, bytes } = this;
    const a0 = offsets[a];
    const la = offsets[a + 1] - a0;
    const b0 = offsets[b];
    const lb = offsets[b + 1] - b0;
    const n = Math.min(la, lb);
    for (let k = 0; k < n; k++) {
      const d = bytes[a0 + k] - bytes[b0 + k];
      if (d !== 0) return d;
    }
    return la - lb;
  }

  stats(rows: ArrayLike<number>): ColumnStats {
    const n = rows.length;
    let nullCount = 0;
    let lo = -1;
    let hi = -1;
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      if (this.nulls.isNull(r)) {
        nullCount++;
        continue;
      }
      if (lo < 0) {
        lo = hi = r;
        continue;
      }
      if (this.compare(r, lo) < 0) lo = r;
      if (this.compare(r, hi) > 0) hi = r;
    }
    const s: ColumnStats = { valueCount: n, nullCount };
    if (lo >= 0) {
      s.lower = this.get(lo);
      s.upper = this.get(hi);
    }
    return s;
  }
}

/** An empty column for a type, with room for `capacity` rows before it grows. */
export function columnBufferFor(type: IcebergType, capacity = 1024, shared = false): ColumnBuffer {
  switch (type.kind) {
    case 'string':
      return new Utf8Column(capacity, shared);
    case 'int':
    case 'date':
      return new TypedColumn(type, Int32Array, 0, capacity, shared);
    case 'float':
      return new TypedColumn(type, Float32Array, 0, capacity, shared);
    case 'double':
      return new TypedColumn(type, Float64Array, 0, capacity, shared);
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return new TypedColumn(type, BigInt64Array, 0n, capacity, shared);
    case 'boolean':
      return new TypedColumn(type, Uint8Array, 0, capacity, shared);
    default:
      return new ArrayColumn(type);
  }
}
