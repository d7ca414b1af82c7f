/**
 * A 64-bit Roaring bitmap of row positions, serialized in the "portable" 64-bit format that
 * Iceberg's `deletion-vector-v1` blobs use (RoaringFormatSpec, "Extension for 64-bit
 * implementations"): a little-endian u64 count of 32-bit bitmaps, then for each its u32 key (the
 * high 32 bits of the positions it holds) and a standard 32-bit Roaring bitmap.
 *
 * Byte-exact with Apache Iceberg's Java writer (`RoaringPositionBitmap` +
 * `BitmapPositionDeleteIndex.serialize`), which
 * - keeps one 32-bit bitmap for every key from 0 to the highest key ever set, empty ones included,
 *   and writes all of them;
 * - sets positions one at a time (ranges too), so a container is an array container while it
 *   holds at most 4096 values and a bitmap container beyond;
 * - calls `runOptimize()` just before serializing, which turns an array container into a run
 *   container when `2·cardinality > 2 + 4·runs`, and a bitmap container when `8192 > 2 + 4·runs`.
 *
 * In memory a container is a sorted `Uint16Array` (≤ 4096 values) or a 65536-bit bitset
 * (2048 × u32 words); run containers exist only in the serialized form. Because the container
 * type is a function of the cardinality alone, any way of building the same set (single adds,
 * ranges, unions, deserialization) serializes to the same bytes.
 *
 * Positions are JavaScript numbers in [0, 2^53); in practice they are below 2^32, and that case
 * (key 0) has its own fast path.
 */

const ARRAY_MAX = 4096;
const WORDS = 2048; // 65536 bits as u32 words
const BITSET_BYTES = 8192;
const COOKIE_NO_RUN = 12346;
const COOKIE_RUN = 12347;
const NO_OFFSET_THRESHOLD = 4;
const TWO_32 = 4294967296;
/** Highest 32-bit key whose positions all stay below 2^53. */
const MAX_KEY = 2 ** 21 - 1;
const MAX_POSITION = Number.MAX_SAFE_INTEGER; // 2^53 - 1

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Index of the lowest set bit of a non-zero 32-bit word. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** First index in values[0, card) whose value is >= v. */
function lowerBound(values: Uint16Array, card: number, v: number): number {
  let a = 0;
  let b = card;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (values[m] < v) a = m + 1;
    else b = m;
  }
  return a;
}

/** Sets bits [lo, hi) (0 ≤ lo < hi ≤ 65536) and returns how many were newly set. */
function setBits(words: Uint32Array, lo: number, hi: number): number {
  let added = 0;
  const first = lo >>> 5;
  const last = (hi - 1) >>> 5;
  for (let w = first; w <= last; w++) {
    const from = w === first ? lo & 31 : 0;
    const to = w === last ? ((hi - 1) & 31) + 1 : 32;
    const mask = (-1 >>> (32 - to)) & (-1 << from);
    const old = words[w];
    added += popcount(mask & ~old);
    words[w] = old | mask;
  }
  return added;
}

class ArrayContainer {
  constructor(
    public values: Uint16Array,
    public card: number,
  ) {}

  static empty(): ArrayContainer {
    return new ArrayContainer(new Uint16Array(4), 0);
  }

  indexOf(v: number): number {
    const vals = this.values;
    let a = 0;
    let b = this.card - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const x = vals[m];
      if (x < v) a = m + 1;
      else if (x > v) b = m - 1;
      else return m;
    }
    return -(a + 1);
  }

  /** 1 = added, 0 = already present, 2 = not present but the container is full. */
  add(v: number): number {
    const card = this.card;
    let at: number;
    if (card === 0 || this.values[card - 1] < v) {
      at = card;
    } else {
      const i = this.indexOf(v);
      if (i >= 0) return 0;
      at = -i - 1;
    }
    if (card >= ARRAY_MAX) return 2;
    if (card === this.values.length) {
      const grown = new Uint16Array(Math.min(ARRAY_MAX, card < 64 ? card * 2 : card + (card >> 1)));
      grown.set(this.values.subarray(0, card));
      this.values = grown;
    }
    if (at < card) this.values.copyWithin(at + 1, at, card);
    this.values[at] = v;
    this.card = card + 1;
    return 1;
  }

  toBitset(): BitsetContainer {
    const words = new Uint32Array(WORDS);
    const vals = this.values;
    for (let i = 0; i < this.card; i++) {
      const v = vals[i];
      words[v >>> 5] |= 1 << (v & 31);
    }
    return new BitsetContainer(words, this.card);
  }

  clone(): ArrayContainer {
    return new ArrayContainer(this.values.slice(0, Math.max(this.card, 1)), this.card);
  }

  countRuns(): number {
    const vals = this.values;
    let runs = this.card > 0 ? 1 : 0;
    for (let i = 1; i < this.card; i++) if (vals[i] !== vals[i - 1] + 1) runs++;
    return runs;
  }
}

class BitsetContainer {
  constructor(
    public readonly words: Uint32Array,
    public card: number,
  ) {}

  clone(): BitsetContainer {
    return new BitsetContainer(this.words.slice(), this.card);
  }

  toArray(): ArrayContainer {
    const out = new Uint16Array(Math.max(this.card, 1));
    let n = 0;
    const words = this.words;
    for (let w = 0; w < WORDS; w++) {
      let word = words[w];
      while (word !== 0) {
        out[n++] = (w << 5) + ctz(word);
        word &= word - 1;
      }
    }
    return new ArrayContainer(out, n);
  }

  /** Runs of consecutive set bits (a run starts at each set bit whose predecessor is clear). */
  countRuns(): number {
    const words = this.words;
    let runs = 0;
    let carry = 0; // top bit of the previous word
    for (let w = 0; w < WORDS; w++) {
      const word = words[w];
      runs += popcount(word & ~((word << 1) | carry));
      carry = word >>> 31;
    }
    return runs;
  }
}

type Container = ArrayContainer | BitsetContainer;

/** A container holding [lo, hi), of the type Java would have built for it. */
function rangeContainer(lo: number, hi: number): Container {
  const n = hi - lo;
  if (n <= ARRAY_MAX) {
    const values = new Uint16Array(Math.max(n, 4));
    for (let i = 0; i < n; i++) values[i] = lo + i;
    return new ArrayContainer(values, n);
  }
  const words = new Uint32Array(WORDS);
  setBits(words, lo, hi);
  return new BitsetContainer(words, n);
}

/** c ∪ [lo, hi); may mutate c, returns the resulting container. */
function addRangeTo(c: Container, lo: number, hi: number): Container {
  if (c instanceof BitsetContainer) {
    c.card += setBits(c.words, lo, hi);
    return c;
  }
  const i = lowerBound(c.values, c.card, lo);
  const j = lowerBound(c.values, c.card, hi);
  const newCard = c.card - (j - i) + (hi - lo);
  if (newCard > ARRAY_MAX) {
    const b = c.toBitset();
    b.card += setBits(b.words, lo, hi);
    return b;
  }
  const values = new Uint16Array(Math.max(newCard, 4));
  values.set(c.values.subarray(0, i));
  let n = i;
  for (let v = lo; v < hi; v++) values[n++] = v;
  values.set(c.values.subarray(j, c.card), n);
  return new ArrayContainer(values, newCard);
}

/** a ∪ b; may mutate a (never b), returns the resulting container. */
function orContainers(a: Container, b: Container): Container {
  if (a instanceof BitsetContainer) {
    if (b instanceof BitsetContainer) {
      let card = 0;
      for (let w = 0; w < WORDS; w++) {
        const x = a.words[w] | b.words[w];
        a.words[w] = x;
        card += popcount(x);
      }
      a.card = card;
    } else {
      orArrayInto(a, b);
    }
    return a;
  }
  if (b instanceof BitsetContainer) {
    const r = b.clone();
    orArrayInto(r, a);
    return r;
  }
  if (a.card + b.card > ARRAY_MAX) {
    const r = a.toBitset();
    orArrayInto(r, b);
    return r.card > ARRAY_MAX ? r : r.toArray();
  }
  const out = new Uint16Array(Math.max(a.card + b.card, 4));
  const x = a.values;
  const y = b.values;
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.card && j < b.card) {
    const u = x[i];
    const v = y[j];
    if (u < v) {
      out[n++] = u;
      i++;
    } else if (u > v) {
      out[n++] = v;
      j++;
    } else {
      out[n++] = u;
      i++;
      j++;
    }
  }
  while (i < a.card) out[n++] = x[i++];
  while (j < b.card) out[n++] = y[j++];
  return new ArrayContainer(out, n);
}

function orArrayInto(b: BitsetContainer, a: ArrayContainer): void {
  const words = b.words;
  let added = 0;
  for (let i = 0; i < a.card; i++) {
    const v = a.values[i];
    const w = v >>> 5;
    const bit = 1 << (v & 31);
    const old = words[w];
    if ((old & bit) === 0) {
      words[w] = old | bit;
      added++;
    }
  }
  b.card += added;
}

function containersEqual(a: Container, b: Container): boolean {
  if (a.card !== b.card) return false;
  if (a instanceof ArrayContainer && b instanceof ArrayContainer) {
    for (let i = 0; i < a.card; i++) if (a.values[i] !== b.values[i]) return false;
    return true;
  }
  const x = a instanceof BitsetContainer ? a : a.toBitset();
  const y = b instanceof BitsetContainer ? b : b.toBitset();
  for (let w = 0; w < WORDS; w++) if (x.words[w] !== y.words[w]) return false;
  return true;
}

/** A 32-bit Roaring bitmap: containers keyed by the high 16 bits, keys ascending. */
class Bitmap32 {
  keys: number[] = [];
  containers: Container[] = [];
  /** Index of the container used last (a cache for clustered adds and lookups). */
  private last = 0;

  /** Index of key, or -(insertion point + 1). */
  find(key: number): number {
    const keys = this.keys;
    let a = 0;
    let b = keys.length - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const k = keys[m];
      if (k < key) a = m + 1;
      else if (k > key) b = m - 1;
      else return m;
    }
    return -(a + 1);
  }

  private slot(key: number): number {
    let i = this.last;
    if (i < this.keys.length && this.keys[i] === key) return i;
    i = this.find(key);
    if (i < 0) {
      i = -i - 1;
      this.keys.splice(i, 0, key);
      this.containers.splice(i, 0, ArrayContainer.empty());
    }
    this.last = i;
    return i;
  }

  /** Adds a u32; returns whether it was new. */
  add(x: number): boolean {
    const i = this.slot(x >>> 16);
    const c = this.containers[i];
    const v = x & 0xffff;
    if (c instanceof BitsetContainer) {
      const w = v >>> 5;
      const bit = 1 << (v & 31);
      const old = c.words[w];
      if ((old & bit) !== 0) return false;
      c.words[w] = old | bit;
      c.card++;
      return true;
    }
    const r = c.add(v);
    if (r !== 2) return r === 1;
    const b = c.toBitset();
    b.words[v >>> 5] |= 1 << (v & 31);
    b.card++;
    this.containers[i] = b;
    return true;
  }

  has(x: number): boolean {
    const key = x >>> 16;
    let i = this.last;
    if (i >= this.keys.length || this.keys[i] !== key) {
      i = this.find(key);
      if (i < 0) return false;
      this.last = i;
    }
    const c = this.containers[i];
    const v = x & 0xffff;
    if (c instanceof BitsetContainer) return (c.words[v >>> 5] & (1 << (v & 31))) !== 0;
    return c.indexOf(v) >= 0;
  }

  /** Adds [lo, hi), 0 ≤ lo < hi ≤ 2^32; returns how many were new. */
  addRange(lo: number, hi: number): number {
    let added = 0;
    const lastKey = Math.floor((hi - 1) / 65536);
    for (let key = Math.floor(lo / 65536); key <= lastKey; key++) {
      const base = key * 65536;
      const from = Math.max(lo, base) - base;
      const to = Math.min(hi, base + 65536) - base;
      const f = this.find(key);
      if (f < 0) {
        const at = -f - 1;
        this.keys.splice(at, 0, key);
        this.containers.splice(at, 0, rangeContainer(from, to));
        added += to - from;
      } else {
        const c = this.containers[f];
        const before = c.card;
        const r = addRangeTo(c, from, to);
        this.containers[f] = r;
        added += r.card - before;
      }
    }
    return added;
  }

  /** this ∪= other; returns how many values were new. */
  or(other: Bitmap32): number {
    let added = 0;
    for (let k = 0; k < other.keys.length; k++) {
      const key = other.keys[k];
      const oc = other.containers[k];
      const f = this.find(key);
      if (f < 0) {
        const at = -f - 1;
        this.keys.splice(at, 0, key);
        this.containers.splice(at, 0, oc.clone());
        added += oc.card;
      } else {
        const c = this.containers[f];
        const before = c.card;
        const r = orContainers(c, oc);
        this.containers[f] = r;
        added += r.card - before;
      }
    }
    return added;
  }

  clone(): Bitmap32 {
    const b = new Bitmap32();
    b.keys = this.keys.slice();
    b.containers = this.containers.map((c) => c.clone());
    return b;
  }

  card(): number {
    let n = 0;
    for (const c of this.containers) n += c.card;
    return n;
  }

  equals(other: Bitmap32): boolean {
    if (this.keys.length !== other.keys.length) return false;
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] !== other.keys[i]) return false;
      if (!containersEqual(this.containers[i], other.containers[i])) return false;
    }
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Serialization

/** How a 32-bit bitmap is written after Java's runOptimize(): per container, runs or -1. */
interface Plan32 {
  runs: Int32Array; // number of runs if written as a run container, else -1
  hasRun: boolean;
  size: number;
}

function plan32(bm: Bitmap32): Plan32 {
  const n = bm.containers.length;
  const runs = new Int32Array(n);
  let hasRun = false;
  let body = 0;
  for (let i = 0; i < n; i++) {
    const c = bm.containers[i];
    const r = c.countRuns();
    const runBytes = 2 + 4 * r;
    const plainBytes = c instanceof ArrayContainer ? 2 * c.card : BITSET_BYTES;
    // ArrayContainer/BitmapContainer.runOptimize(): a run container only if strictly smaller.
    if (plainBytes > runBytes) {
      runs[i] = r;
      hasRun = true;
      body += runBytes;
    } else {
      runs[i] = -1;
      body += plainBytes;
    }
  }
  return { runs, hasRun, size: header32(n, hasRun) + body };
}

function header32(n: number, hasRun: boolean): number {
  if (!hasRun) return 8 + 8 * n; // cookie, count, key/card pairs, offsets
  return 4 + ((n + 7) >> 3) + 4 * n + (n >= NO_OFFSET_THRESHOLD ? 4 * n : 0);
}

class ByteWriter {
  readonly buf: Uint8Array;
  private readonly view: DataView;
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
}

function writeRuns(w: ByteWriter, c: Container, runs: number): void {
  w.u16(runs);
  if (c instanceof ArrayContainer) {
    const vals = c.values;
    let start = vals[0];
    for (let i = 1; i <= c.card; i++) {
      if (i === c.card || vals[i] !== vals[i - 1] + 1) {
        w.u16(start);
        w.u16(vals[i - 1] - start);
        if (i < c.card) start = vals[i];
      }
    }
    return;
  }
  const words = c.words;
  let wi = 0;
  let word = words[0] | 0;
  for (;;) {
    while (word === 0) {
      if (++wi === WORDS) return;
      word = words[wi] | 0;
    }
    const start = (wi << 5) + ctz(word);
    let ones = word | (word - 1); // the run's bits plus everything below it set
    while (ones === -1) {
      if (++wi === WORDS) {
        w.u16(start);
        w.u16(65535 - start);
        return;
      }
      ones = words[wi] | 0;
    }
    const end = (wi << 5) + ctz(~ones); // exclusive
    w.u16(start);
    w.u16(end - 1 - start);
    word = ones & (ones + 1); // clear the trailing ones: the rest of this word
  }
}

function write32(w: ByteWriter, bm: Bitmap32, p: Plan32): void {
  const n = bm.containers.length;
  const start = w.at;
  if (p.hasRun) {
    w.u32(COOKIE_RUN | ((n - 1) << 16));
    for (let i = 0; i < n; i += 8) {
      let byte = 0;
      for (let k = 0; k < 8 && i + k < n; k++) if (p.runs[i + k] >= 0) byte |= 1 << k;
      w.buf[w.at++] = byte;
    }
  } else {
    w.u32(COOKIE_NO_RUN);
    w.u32(n);
  }
  for (let i = 0; i < n; i++) {
    w.u16(bm.keys[i]);
    w.u16(bm.containers[i].card - 1);
  }
  if (!p.hasRun || n >= NO_OFFSET_THRESHOLD) {
    let offset = header32(n, p.hasRun);
    for (let i = 0; i < n; i++) {
      w.u32(offset);
      const c = bm.containers[i];
      const r = p.runs[i];
      offset += r >= 0 ? 2 + 4 * r : c instanceof ArrayContainer ? 2 * c.card : BITSET_BYTES;
    }
  }
  for (let i = 0; i < n; i++) {
    const c = bm.containers[i];
    if (p.runs[i] >= 0) writeRuns(w, c, p.runs[i]);
    else if (c instanceof ArrayContainer) for (let k = 0; k < c.card; k++) w.u16(c.values[k]);
    else for (let k = 0; k < WORDS; k++) w.u32(c.words[k]);
  }
  if (w.at - start !== p.size) throw new Error(`roaring: wrote ${w.at - start} bytes, planned ${p.size}`);
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
      throw new Error(
        `${this.what}: truncated Roaring bitmap (needs ${n} bytes at byte ${this.at}, has ${this.buf.length - this.at})`,
      );
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
  /** Skips an empty 32-bit bitmap (no-run cookie, zero containers) if one is next. */
  peekEmpty32(): boolean {
    if (this.at + 8 > this.buf.length) return false;
    if (this.view.getUint32(this.at, true) !== COOKIE_NO_RUN || this.view.getUint32(this.at + 4, true) !== 0)
      return false;
    this.at += 8;
    return true;
  }
  fail(msg: string): never {
    throw new Error(`${this.what}: invalid Roaring bitmap: ${msg}`);
  }
}

function read32(r: ByteReader): Bitmap32 {
  const start = r.at;
  const cookie = r.u32();
  let n: number;
  let runMarks: Uint8Array | undefined;
  if ((cookie & 0xffff) === COOKIE_RUN) {
    n = (cookie >>> 16) + 1;
    const len = (n + 7) >> 3;
    r.need(len);
    runMarks = r.buf.subarray(r.at, r.at + len);
    r.at += len;
  } else if (cookie === COOKIE_NO_RUN) {
    n = r.u32();
    if (n > 65536) r.fail(`${n} containers, more than a 32-bit bitmap can have`);
  } else {
    r.fail(`unknown cookie 0x${cookie.toString(16)} at byte ${start}`);
  }
  r.need(4 * n);
  const keys: number[] = new Array(n);
  const cards = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = r.u16();
    if (i > 0 && k <= keys[i - 1]) r.fail('container keys are not strictly ascending');
    keys[i] = k;
    cards[i] = r.u16() + 1;
  }
  if (!runMarks || n >= NO_OFFSET_THRESHOLD) {
    r.need(4 * n);
    r.at += 4 * n; // offsets: redundant for a sequential read
  }
  const bm = new Bitmap32();
  const containers: Container[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const card = cards[i];
    const isRun = runMarks !== undefined && (runMarks[i >> 3] & (1 << (i & 7))) !== 0;
    let c: Container;
    if (isRun) {
      const nruns = r.u16();
      r.need(4 * nruns);
      const runStart = r.at;
      let total = 0;
      let prevEnd = -1; // exclusive end of the previous run
      for (let k = 0; k < nruns; k++) {
        const s = r.u16();
        const e = s + r.u16() + 1;
        if (s < prevEnd) r.fail(`run container ${i} has overlapping or unsorted runs`);
        if (e > 65536) r.fail(`run container ${i} runs past 65535`);
        prevEnd = e;
        total += e - s;
      }
      if (total !== card) r.fail(`container ${i} holds ${total} values, its header says ${card}`);
      r.at = runStart;
      if (card <= ARRAY_MAX) {
        const values = new Uint16Array(Math.max(card, 4));
        let m = 0;
        for (let k = 0; k < nruns; k++) {
          const s = r.u16();
          const e = s + r.u16() + 1;
          for (let v = s; v < e; v++) values[m++] = v;
        }
        c = new ArrayContainer(values, card);
      } else {
        const words = new Uint32Array(WORDS);
        for (let k = 0; k < nruns; k++) {
          const s = r.u16();
          setBits(words, s, s + r.u16() + 1);
        }
        c = new BitsetContainer(words, card);
      }
    } else if (card <= ARRAY_MAX) {
      r.need(2 * card);
      const values = new Uint16Array(Math.max(card, 4));
      let prev = -1;
      for (let k = 0; k < card; k++) {
        const v = r.u16();
        if (v <= prev) r.fail(`array container ${i} is not strictly ascending`);
        values[k] = v;
        prev = v;
      }
      c = new ArrayContainer(values, card);
    } else {
      r.need(BITSET_BYTES);
      const words = new Uint32Array(WORDS);
      let total = 0;
      for (let k = 0; k < WORDS; k++) {
        const x = r.u32();
        words[k] = x;
        total += popcount(x);
      }
      if (total !== card) r.fail(`container ${i} holds ${total} values, its header says ${card}`);
      c = new BitsetContainer(words, card);
    }
    containers[i] = c;
  }
  bm.keys = keys;
  bm.containers = containers;
  return bm;
}

// ---------------------------------------------------------------------------------------------

export class RoaringBitmap64 {
  /** High-32-bit keys that have a 32-bit bitmap, ascending; maps[i] belongs to keys[i]. */
  private keys: number[] = [];
  private maps: Bitmap32[] = [];
  /** The bitmap of key 0 (positions below 2^32), once it exists. */
  private low: Bitmap32 | null = null;
  /**
   * Length of Iceberg's bitmap array: one more than the highest key ever set or read. Every key
   * below it is serialized, empty or not, exactly as Java does.
   */
  private slots = 0;
  private count = 0;

  add(pos: number): void {
    if (pos >>> 0 === pos) {
      const low = this.low ?? this.lowBitmap();
      if (low.add(pos)) this.count++;
      return;
    }
    checkPosition(pos);
    const key = Math.floor(pos / TWO_32);
    if (this.bitmapFor(key).add(pos - key * TWO_32)) this.count++;
  }

  /** Adds every position in [start, end). */
  addRange(start: number, end: number): void {
    checkPosition(start);
    if (!Number.isInteger(end) || end < start || end > MAX_POSITION + 1)
      throw new RangeError(`invalid end of position range [${start}, ${end})`);
    while (start < end) {
      const key = Math.floor(start / TWO_32);
      const base = key * TWO_32;
      const stop = Math.min(end, base + TWO_32);
      const bm = key === 0 ? (this.low ?? this.lowBitmap()) : this.bitmapFor(key);
      this.count += bm.addRange(start - base, stop - base);
      start = stop;
    }
  }

  has(pos: number): boolean {
    if (pos >>> 0 === pos) return this.low?.has(pos) === true;
    if (!Number.isInteger(pos) || pos < 0 || pos > MAX_POSITION) return false;
    const key = Math.floor(pos / TWO_32);
    const i = this.findKey(key);
    return i >= 0 && this.maps[i].has(pos - key * TWO_32);
  }

  get size(): number {
    return this.count;
  }

  isEmpty(): boolean {
    return this.count === 0;
  }

  /** Smallest position, or undefined when empty. */
  min(): number | undefined {
    for (let k = 0; k < this.keys.length; k++) {
      const bm = this.maps[k];
      for (let i = 0; i < bm.containers.length; i++) {
        const c = bm.containers[i];
        if (c.card === 0) continue;
        const base = this.keys[k] * TWO_32 + bm.keys[i] * 65536;
        if (c instanceof ArrayContainer) return base + c.values[0];
        for (let w = 0; w < WORDS; w++) if (c.words[w] !== 0) return base + (w << 5) + ctz(c.words[w]);
      }
    }
    return undefined;
  }

  /** Largest position, or undefined when empty. */
  max(): number | undefined {
    for (let k = this.keys.length - 1; k >= 0; k--) {
      const bm = this.maps[k];
      for (let i = bm.containers.length - 1; i >= 0; i--) {
        const c = bm.containers[i];
        if (c.card === 0) continue;
        const base = this.keys[k] * TWO_32 + bm.keys[i] * 65536;
        if (c instanceof ArrayContainer) return base + c.values[c.card - 1];
        for (let w = WORDS - 1; w >= 0; w--)
          if (c.words[w] !== 0) return base + (w << 5) + 31 - Math.clz32(c.words[w]);
      }
    }
    return undefined;
  }

  /** Calls cb for every position, ascending. */
  forEach(cb: (pos: number) => void): void {
    for (let k = 0; k < this.keys.length; k++) {
      const bm = this.maps[k];
      const hi = this.keys[k] * TWO_32;
      for (let i = 0; i < bm.containers.length; i++) {
        const c = bm.containers[i];
        const base = hi + bm.keys[i] * 65536;
        if (c instanceof ArrayContainer) {
          for (let j = 0; j < c.card; j++) cb(base + c.values[j]);
        } else {
          const words = c.words;
          for (let w = 0; w < WORDS; w++) {
            let word = words[w];
            while (word !== 0) {
              cb(base + (w << 5) + ctz(word));
              word &= word - 1;
            }
          }
        }
      }
    }
  }

  *[Symbol.iterator](): Iterator<number> {
    for (let k = 0; k < this.keys.length; k++) {
      const bm = this.maps[k];
      const hi = this.keys[k] * TWO_32;
      for (let i = 0; i < bm.containers.length; i++) {
        const c = bm.containers[i];
        const base = hi + bm.keys[i] * 65536;
        if (c instanceof ArrayContainer) {
          for (let j = 0; j < c.card; j++) yield base + c.values[j];
        } else {
          for (let w = 0; w < WORDS; w++) {
            let word = c.words[w];
            while (word !== 0) {
              yield base + (w << 5) + ctz(word);
              word &= word - 1;
            }
          }
        }
      }
    }
  }

  toArray(): number[] {
    const out: number[] = new Array(this.count);
    let n = 0;
    this.forEach((p) => {
      out[n++] = p;
    });
    return out;
  }

  clone(): RoaringBitmap64 {
    const c = new RoaringBitmap64();
    c.keys = this.keys.slice();
    c.maps = this.maps.map((m) => m.clone());
    c.low = c.keys[0] === 0 ? c.maps[0] : null;
    c.slots = this.slots;
    c.count = this.count;
    return c;
  }

  /** this ∪= other. */
  orInPlace(other: RoaringBitmap64): void {
    if (other === this) return;
    for (let k = 0; k < other.keys.length; k++) {
      const key = other.keys[k];
      const bm = key === 0 ? (this.low ?? this.lowBitmap()) : this.bitmapFor(key);
      this.count += bm.or(other.maps[k]);
    }
    this.slots = Math.max(this.slots, other.slots);
  }

  /** Same set of positions. */
  equals(other: RoaringBitmap64): boolean {
    if (this.count !== other.count) return false;
    let j = 0;
    for (let i = 0; i < this.keys.length; i++) {
      if (this.maps[i].containers.length === 0) continue;
      while (j < other.keys.length && other.maps[j].containers.length === 0) j++;
      if (j >= other.keys.length || other.keys[j] !== this.keys[i]) return false;
      if (!this.maps[i].equals(other.maps[j])) return false;
      j++;
    }
    return true;
  }

  /** Size of serializePortable()'s output. */
  serializedSizeInBytes(): number {
    let size = 8 + 4 * this.slots + 8 * (this.slots - this.keys.length);
    for (const bm of this.maps) size += plan32(bm).size;
    return size;
  }

  /**
   * The 64-bit portable serialization, run-optimized as Iceberg's Java writer does it: a u64
   * count, then for every key from 0 to the highest (empty bitmaps included) the u32 key and the
   * 32-bit bitmap.
   */
  serializePortable(): Uint8Array {
    const plans = this.maps.map(plan32);
    let size = 8 + 4 * this.slots + 8 * (this.slots - this.keys.length);
    for (const p of plans) size += p.size;
    const w = new ByteWriter(size);
    w.u64(this.slots);
    let k = 0;
    for (let key = 0; key < this.slots; key++) {
      w.u32(key);
      if (k < this.keys.length && this.keys[k] === key) {
        write32(w, this.maps[k], plans[k]);
        k++;
      } else {
        w.u32(COOKIE_NO_RUN); // an empty 32-bit bitmap: no containers
        w.u32(0);
      }
    }
    return w.buf;
  }

  /**
   * Reads the 64-bit portable format. Throws when the input is truncated or malformed, has
   * unsorted keys, or has a key whose positions would reach 2^53 (no row position is that large,
   * and Iceberg's own reader refuses keys of 2^31 - 1 and above).
   */
  static deserializePortable(bytes: Uint8Array, what = 'roaring bitmap'): RoaringBitmap64 {
    const r = new ByteReader(bytes, what);
    const lo = r.u32();
    const hi = r.u32();
    if (hi !== 0 || lo > 2 ** 31 - 1)
      r.fail(`bitmap count ${hi * TWO_32 + lo} is more than a position bitmap can have`);
    const out = new RoaringBitmap64();
    let lastKey = -1;
    for (let i = 0; i < lo; i++) {
      const key = r.u32();
      if (key > MAX_KEY) {
        throw new Error(
          `${what}: bitmap key ${key} (0x${key.toString(16)}) holds positions of 2^53 and beyond, ` +
            `more than a row position can be (highest key allowed is ${MAX_KEY})`,
        );
      }
      if (key <= lastKey) r.fail('bitmap keys are not strictly ascending');
      lastKey = key;
      if (r.peekEmpty32()) continue; // Java fills gaps below the highest key with empty bitmaps
      const bm = read32(r);
      if (bm.containers.length > 0) {
        out.keys.push(key);
        out.maps.push(bm);
        out.count += bm.card();
        if (key === 0) out.low = bm;
      }
    }
    out.slots = lastKey + 1;
    if (r.at !== bytes.length) r.fail(`${bytes.length - r.at} unexpected bytes after the bitmap`);
    return out;
  }

  private lowBitmap(): Bitmap32 {
    this.low = this.bitmapFor(0);
    return this.low;
  }

  private findKey(key: number): number {
    const keys = this.keys;
    let a = 0;
    let b = keys.length - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      if (keys[m] < key) a = m + 1;
      else if (keys[m] > key) b = m - 1;
      else return m;
    }
    return -(a + 1);
  }

  private bitmapFor(key: number): Bitmap32 {
    let i = this.findKey(key);
    if (i < 0) {
      i = -i - 1;
      this.keys.splice(i, 0, key);
      this.maps.splice(i, 0, new Bitmap32());
    }
    if (key >= this.slots) this.slots = key + 1;
    return this.maps[i];
  }
}

function checkPosition(pos: number): void {
  if (!Number.isInteger(pos) || pos < 0 || pos > MAX_POSITION)
    throw new RangeError(`invalid row position ${pos}: must be an integer in [0, 2^53)`);
}
