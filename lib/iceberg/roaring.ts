/**
 * A 64-bit Roaring bitmap of row positions, serialized in the "portable" 64-bit format Iceberg's
 * deletion vectors use: a little-endian u64 count of 32-bit bitmaps, then for each its u32 key
 * (the high 32 bits) and a standard 32-bit Roaring bitmap (RoaringFormatSpec).
 *
 * In memory a container is an array (≤ 4096 sorted u16) or a bitset (1024 u64 words). Run
 * containers exist only in the serialized form: on write each container is turned into a run
 * container exactly when Java's RoaringBitmap.runOptimize() would do so for a bitmap built one
 * position at a time (Iceberg's RoaringPositionBitmap sets positions one by one, even for
 * ranges, and run-optimizes before serializing), so the bytes match Iceberg's.
 *
 * Positions are JavaScript numbers below 2^53 (row positions never come near that).
 */

const ARRAY_MAX = 4096;
const BITMAP_WORDS = 2048; // 65536 bits as u32 words
const COOKIE_NO_RUN = 12346;
const COOKIE_RUN = 12347;
const NO_OFFSET_THRESHOLD = 4;
const TWO_32 = 4294967296;
/** Highest 32-bit key whose positions stay below 2^53. */
const MAX_KEY = 2 ** 21 - 1;

type Container = ArrayContainer | BitsetContainer;

class ArrayContainer {
  values: Uint16Array;
  card = 0;
  constructor(capacity = 4) {
    this.values = new Uint16Array(capacity);
  }
  indexOf(v: number): number {
    let a = 0;
    let b = this.card - 1;
    const vals = this.values;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const x = vals[m];
      if (x < v) a = m + 1;
      else if (x > v) b = m - 1;
      else return m;
    }
    return -(a + 1);
  }
  has(v: number): boolean {
    return this.indexOf(v) >= 0;
  }
  /** Adds v; returns false if it was present. The caller converts to a bitset past ARRAY_MAX. */
  add(v: number): boolean {
    if (this.card > 0 && this.values[this.card - 1] < v) {
      this.ensure(this.card + 1);
      this.values[this.card++] = v;
      return true;
    }
    const i = this.indexOf(v);
    if (i >= 0) return false;
    const at = -i - 1;
    this.ensure(this.card + 1);
    this.values.copyWithin(at + 1, at, this.card);
    this.values[at] = v;
    this.card++;
    return true;
  }
  private ensure(n: number): void {
    if (n <= this.values.length) return;
    const next = new Uint16Array(Math.min(ARRAY_MAX + 1, Math.max(n, this.values.length * 2)));
    next.set(this.values.subarray(0, this.card));
    this.values = next;
  }
  toBitset(): BitsetContainer {
    const b = new BitsetContainer();
    for (let i = 0; i < this.card; i++) {
      const v = this.values[i];
      b.words[v >>> 5] |= 1 << (v & 31);
    }
    b.card = this.card;
    return b;
  }
  clone(): ArrayContainer {
    const c = new ArrayContainer(Math.max(4, this.card));
    c.values.set(this.values.subarray(0, this.card));
    c.card = this.card;
    return c;
  }
  forEach(base: number, cb: (pos: number) => void): void {
    for (let i = 0; i < this.card; i++) cb(base + this.values[i]);
  }
}

class BitsetContainer {
  readonly words = new Uint32Array(BITMAP_WORDS);
  card = 0;
  has(v: number): boolean {
    return (this.words[v >>> 5] & (1 << (v & 31))) !== 0;
  }
  add(v: number): boolean {
    const w = v >>> 5;
    const bit = 1 << (v & 31);
    if (this.words[w] & bit) return false;
    this.words[w] |= bit;
    this.card++;
    return true;
  }
  clone(): BitsetContainer {
    const c = new BitsetContainer();
    c.words.set(this.words);
    c.card = this.card;
    return c;
  }
  forEach(base: number, cb: (pos: number) => void): void {
    for (let w = 0; w < BITMAP_WORDS; w++) {
      let word = this.words[w];
      while (word !== 0) {
        const t = word & -word;
        cb(base + w * 32 + (31 - Math.clz32(t)));
        word ^= t;
      }
    }
  }
}

/** Sorted (value, length) runs of a container, as Roaring run containers store them. */
function runsOf(c: Container): number[] {
  const runs: number[] = [];
  let start = -1;
  let prev = -2;
  const visit = (v: number): void => {
    if (v === prev + 1) {
      prev = v;
      return;
    }
    if (start >= 0) runs.push(start, prev - start + 1);
    start = v;
    prev = v;
  };
  c.forEach(0, visit);
  if (start >= 0) runs.push(start, prev - start + 1);
  return runs;
}

function countRuns(c: Container): number {
  if (c instanceof ArrayContainer) {
    let r = 0;
    for (let i = 0; i < c.card; i++) if (i === 0 || c.values[i] !== c.values[i - 1] + 1) r++;
    return r;
  }
  // A run starts at each set bit whose predecessor bit is clear.
  let r = 0;
  let carry = 0; // the previous word's top bit
  for (let w = 0; w < BITMAP_WORDS; w++) {
    const word = c.words[w];
    const starts = word & ~((word << 1) | carry);
    r += popcount(starts);
    carry = word >>> 31;
  }
  return r;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Java's runOptimize(): would this container be written as a run container? */
function asRun(c: Container, runs: number): boolean {
  const runBytes = 2 + 4 * runs;
  if (c instanceof ArrayContainer) return 2 * c.card > runBytes;
  return 8192 > runBytes;
}

/** A 32-bit Roaring bitmap: containers keyed by the high 16 bits. */
class Bitmap32 {
  keys: number[] = [];
  containers: Container[] = [];

  find(key: number): number {
    const keys = this.keys;
    const n = keys.length;
    if (n > 0 && keys[n - 1] === key) return n - 1;
    let a = 0;
    let b = n - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      if (keys[m] < key) a = m + 1;
      else if (keys[m] > key) b = m - 1;
      else return m;
    }
    return -(a + 1);
  }

  add(low: number): boolean {
    const key = low >>> 16;
    const v = low & 0xffff;
    let i = this.find(key);
    if (i < 0) {
      i = -i - 1;
      this.keys.splice(i, 0, key);
      this.containers.splice(i, 0, new ArrayContainer());
    }
    const c = this.containers[i];
    if (c instanceof ArrayContainer && c.card >= ARRAY_MAX && !c.has(v)) {
      const b = c.toBitset();
      this.containers[i] = b;
      return b.add(v);
    }
    return c.add(v);
  }

  has(low: number): boolean {
    const i = this.find(low >>> 16);
    return i >= 0 && this.containers[i].has(low & 0xffff);
  }

  get card(): number {
    let n = 0;
    for (const c of this.containers) n += c.card;
    return n;
  }
}

class ByteWriter {
  buf: Uint8Array;
  view: DataView;
  at = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  u16(v: number): void {
    this.view.setUint16(this.at, v, true);
    this.at += 2;
  }
  u32(v: number): void {
    this.view.setUint32(this.at, v >>> 0, true);
    this.at += 4;
  }
  u64(v: number): void {
    this.view.setUint32(this.at, v % TWO_32, true);
    this.view.setUint32(this.at + 4, Math.floor(v / TWO_32), true);
    this.at += 8;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.at);
    this.at += b.length;
  }
}

interface ContainerPlan {
  c: Container;
  runs: number[] | undefined;
  bytes: number;
}

function plan32(bm: Bitmap32): { plans: ContainerPlan[]; hasRun: boolean; size: number } {
  const plans: ContainerPlan[] = bm.containers.map((c) => {
    const r = countRuns(c);
    if (asRun(c, r)) return { c, runs: runsOf(c), bytes: 2 + 4 * r };
    return { c, runs: undefined, bytes: c instanceof ArrayContainer ? 2 * c.card : 8192 };
  });
  const hasRun = plans.some((p) => p.runs !== undefined);
  const n = plans.length;
  let header: number;
  if (hasRun) header = 4 + ((n + 7) >> 3) + 4 * n + (n >= NO_OFFSET_THRESHOLD ? 4 * n : 0);
  else header = 8 + 8 * n;
  return { plans, hasRun, size: header + plans.reduce((s, p) => s + p.bytes, 0) };
}

function write32(w: ByteWriter, bm: Bitmap32, p: ReturnType<typeof plan32>): void {
  const n = p.plans.length;
  let offset: number;
  if (p.hasRun) {
    w.u32(COOKIE_RUN | ((n - 1) << 16));
    const marks = new Uint8Array((n + 7) >> 3);
    p.plans.forEach((pl, i) => {
      if (pl.runs) marks[i >> 3] |= 1 << (i & 7);
    });
    w.bytes(marks);
    offset = 4 + marks.length + 4 * n + (n >= NO_OFFSET_THRESHOLD ? 4 * n : 0);
  } else {
    w.u32(COOKIE_NO_RUN);
    w.u32(n);
    offset = 8 + 8 * n;
  }
  p.plans.forEach((pl, i) => {
    w.u16(bm.keys[i]);
    w.u16(pl.c.card - 1);
  });
  if (!p.hasRun || n >= NO_OFFSET_THRESHOLD) {
    for (const pl of p.plans) {
      w.u32(offset);
      offset += pl.bytes;
    }
  }
  for (const pl of p.plans) {
    if (pl.runs) {
      w.u16(pl.runs.length / 2);
      for (let k = 0; k < pl.runs.length; k += 2) {
        w.u16(pl.runs[k]);
        w.u16(pl.runs[k + 1] - 1);
      }
    } else if (pl.c instanceof ArrayContainer) {
      for (let k = 0; k < pl.c.card; k++) w.u16(pl.c.values[k]);
    } else {
      for (let k = 0; k < BITMAP_WORDS; k++) w.u32(pl.c.words[k]);
    }
  }
}

class ByteReader {
  private readonly view: DataView;
  at = 0;
  constructor(
    readonly buf: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number): void {
    if (this.at + n > this.buf.length)
      throw new Error(`${this.what}: truncated at byte ${this.at} (needs ${n} more)`);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    if (hi >= 2 ** 21)
      throw new Error(`${this.what}: count ${hi}·2^32+${lo} is not a plausible number of bitmaps`);
    return hi * TWO_32 + lo;
  }
}

function read32(r: ByteReader, what: string): Bitmap32 {
  const start = r.at;
  const cookie = r.u32();
  let n: number;
  let runMarks: Uint8Array | undefined;
  if ((cookie & 0xffff) === COOKIE_RUN) {
    n = (cookie >>> 16) + 1;
    r.need((n + 7) >> 3);
    runMarks = r.buf.subarray(r.at, r.at + ((n + 7) >> 3));
    r.at += (n + 7) >> 3;
  } else if (cookie === COOKIE_NO_RUN) {
    n = r.u32();
  } else {
    throw new Error(`${what}: not a Roaring bitmap (cookie ${cookie} at byte ${start})`);
  }
  if (n > 65536) throw new Error(`${what}: ${n} containers is more than a 32-bit bitmap can hold`);
  const keys: number[] = [];
  const cards: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = r.u16();
    if (i > 0 && k <= keys[i - 1]) throw new Error(`${what}: container keys are not ascending`);
    keys.push(k);
    cards.push(r.u16() + 1);
  }
  if (!runMarks || n >= NO_OFFSET_THRESHOLD) {
    r.need(4 * n);
    r.at += 4 * n;
  }
  const bm = new Bitmap32();
  for (let i = 0; i < n; i++) {
    const isRun = runMarks !== undefined && (runMarks[i >> 3] & (1 << (i & 7))) !== 0;
    let c: Container;
    if (isRun) {
      const runs = r.u16();
      const values: number[] = [];
      let card = 0;
      const a = new ArrayContainer();
      const b = new BitsetContainer();
      for (let k = 0; k < runs; k++) {
        const s = r.u16();
        const len = r.u16() + 1;
        if (s + len > 65536) throw new Error(`${what}: run past the end of its container`);
        for (let v = s; v < s + len; v++) {
          if (card < ARRAY_MAX) values.push(v);
          b.words[v >>> 5] |= 1 << (v & 31);
          card++;
        }
      }
      if (card <= ARRAY_MAX) {
        for (const v of values) a.add(v);
        c = a;
      } else {
        b.card = card;
        c = b;
      }
    } else if (cards[i] <= ARRAY_MAX) {
      const a = new ArrayContainer(cards[i]);
      for (let k = 0; k < cards[i]; k++) {
        const v = r.u16();
        if (k > 0 && v <= a.values[k - 1])
          throw new Error(`${what}: array container values are not ascending`);
        a.values[k] = v;
      }
      a.card = cards[i];
      c = a;
    } else {
      const b = new BitsetContainer();
      r.need(8192);
      for (let k = 0; k < BITMAP_WORDS; k++) b.words[k] = r.u32();
      let card = 0;
      for (let k = 0; k < BITMAP_WORDS; k++) card += popcount(b.words[k]);
      b.card = card;
      c = b;
    }
    if (c.card !== cards[i])
      throw new Error(`${what}: container ${i} holds ${c.card} values, header says ${cards[i]}`);
    bm.keys.push(keys[i]);
    bm.containers.push(c);
  }
  return bm;
}

export class RoaringBitmap64 {
  /** 32-bit bitmaps by key (high 32 bits); index = key, like Iceberg's RoaringPositionBitmap. */
  private bitmaps: Bitmap32[] = [];
  private count = 0;

  add(pos: number): void {
    if (!Number.isInteger(pos) || pos < 0 || pos >= 2 ** 53)
      throw new RangeError(`invalid row position ${pos}`);
    const key = pos < TWO_32 ? 0 : Math.floor(pos / TWO_32);
    while (this.bitmaps.length <= key) this.bitmaps.push(new Bitmap32());
    if (this.bitmaps[key].add(pos - key * TWO_32)) this.count++;
  }

  /** Adds [start, end). */
  addRange(start: number, end: number): void {
    for (let p = start; p < end; p++) this.add(p);
  }

  has(pos: number): boolean {
    const key = pos < TWO_32 ? 0 : Math.floor(pos / TWO_32);
    const bm = this.bitmaps[key];
    return bm !== undefined && bm.has(pos - key * TWO_32);
  }

  get size(): number {
    return this.count;
  }

  isEmpty(): boolean {
    return this.count === 0;
  }

  forEach(cb: (pos: number) => void): void {
    this.bitmaps.forEach((bm, key) => {
      const base = key * TWO_32;
      bm.containers.forEach((c, i) => {
        c.forEach(base + bm.keys[i] * 65536, cb);
      });
    });
  }

  *[Symbol.iterator](): Iterator<number> {
    yield* this.toArray();
  }

  toArray(): number[] {
    const out: number[] = [];
    this.forEach((p) => {
      out.push(p);
    });
    return out;
  }

  clone(): RoaringBitmap64 {
    const c = new RoaringBitmap64();
    c.bitmaps = this.bitmaps.map((bm) => {
      const n = new Bitmap32();
      n.keys = [...bm.keys];
      n.containers = bm.containers.map((x) => x.clone());
      return n;
    });
    c.count = this.count;
    return c;
  }

  orInPlace(other: RoaringBitmap64): void {
    other.forEach((p) => {
      this.add(p);
    });
  }

  equals(other: RoaringBitmap64): boolean {
    if (this.count !== other.count) return false;
    const a = this.toArray();
    const b = other.toArray();
    return a.every((v, i) => v === b[i]);
  }

  /** The 64-bit portable serialization, run-optimized as Iceberg's Java writer does. */
  serializePortable(): Uint8Array {
    // Trailing empty bitmaps are never created by adds; Java writes every key from 0 to the
    // highest, empty ones included, and so do we.
    const plans = this.bitmaps.map(plan32);
    const w = new ByteWriter(8 + plans.reduce((s, p) => s + 4 + p.size, 0));
    w.u64(this.count === 0 ? 0 : this.bitmaps.length);
    if (this.count > 0) {
      this.bitmaps.forEach((bm, key) => {
        w.u32(key);
        write32(w, bm, plans[key]);
      });
    }
    return w.buf;
  }

  serializedSizeInBytes(): number {
    if (this.count === 0) return 8;
    return 8 + this.bitmaps.map(plan32).reduce((s, p) => s + 4 + p.size, 0);
  }

  static deserializePortable(bytes: Uint8Array, what = 'roaring bitmap'): RoaringBitmap64 {
    const r = new ByteReader(bytes, what);
    const n = r.u64();
    const out = new RoaringBitmap64();
    let lastKey = -1;
    for (let i = 0; i < n; i++) {
      const key = r.u32();
      if (key > MAX_KEY) {
        throw new Error(
          `${what}: bitmap key ${key} holds positions of 2^53 and beyond, more than a row position can be`,
        );
      }
      if (key <= lastKey) throw new Error(`${what}: bitmap keys are not ascending`);
      lastKey = key;
      const bm = read32(r, what);
      while (out.bitmaps.length < key) out.bitmaps.push(new Bitmap32());
      out.bitmaps.push(bm);
      out.count += bm.card;
    }
    if (r.at !== bytes.length)
      throw new Error(`${what}: ${bytes.length - r.at} unexpected bytes after the bitmap`);
    return out;
  }
}
