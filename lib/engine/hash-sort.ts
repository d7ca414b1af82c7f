/**
 * Sorting key hashes: the order an index run keeps its entries in (index-run.ts), by a radix
 * sort over the uniform 64-bit hashes.
 */

/** Positions 0 … n-1 (a file's rows in order). */
export function iota(n: number): Uint32Array<ArrayBuffer> {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/**
 * Sorts entries by (hi, lo); returns the order, stable. Key hashes are uniform, so an MSD radix
 * sort on the top bits of `hi` does almost all of it (see {@link sortUniform}); inputs that are
 * not uniform take the 2-pass LSD radix sort on the 16-bit digits of `hi`, which is O(n) for any
 * input ({@link sortAny}). The MSD sort is ~1.5× faster on a million hashes here.
 */
export function sortByHash(his: Uint32Array, los: Uint32Array): Uint32Array {
  return sortEntries(his, los).order;
}

export interface SortedEntries {
  order: Uint32Array;
  /** Interleaved [hi, lo], sorted. */
  hashes: Uint32Array;
}

export function sortEntries(his: Uint32Array, los: Uint32Array): SortedEntries {
  return sortUniform(his, los) ?? sortAny(his, los);
}

const TOP_BITS = 11;
const TOP_SHIFT = 32 - TOP_BITS;
const NEXT_BITS = 10;
const NEXT_SHIFT = TOP_SHIFT - NEXT_BITS;
const NEXT_MASK = (1 << NEXT_BITS) - 1;
/** A bucket this small is left to the insertion sort (at most ~k²/4 moves). */
const SMALL_BUCKET = 32;
/** Moves per entry the finishing insertion sort may make before the input counts as skewed. */
const MOVES_PER_ENTRY = 8;

/**
 * The MSD sort: one counting pass on the top 11 bits of `hi` (2,048 buckets, whose write
 * positions stay in cache), then within each bucket a pass on the next 10 bits while the bucket
 * is in cache, carrying `hi`, `lo` and the position along. An insertion sort by (hi, lo)
 * finishes: ties on those 21 bits, and buckets too small to be worth a pass. Undefined when that
 * insertion sort would move more than {@link MOVES_PER_ENTRY} entries per entry (skewed input).
 */
function sortUniform(his: Uint32Array, los: Uint32Array): SortedEntries | undefined {
  const n = his.length;
  const buckets = 1 << TOP_BITS;
  const starts = new Uint32Array(buckets + 1);
  for (let i = 0; i < n; i++) starts[(his[i] >>> TOP_SHIFT) + 1]++;
  for (let d = 0; d < buckets; d++) starts[d + 1] += starts[d];
  const next = starts.slice(0, buckets);
  const hiA = new Uint32Array(n);
  const loA = new Uint32Array(n);
  const orderA = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const h = his[i];
    const at = next[h >>> TOP_SHIFT]++;
    hiA[at] = h;
    loA[at] = los[i];
    orderA[at] = i;
  }
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  const order = new Uint32Array(n);
  const counts = new Uint32Array(NEXT_MASK + 2);
  for (let b = 0; b < buckets; b++) {
    const a = starts[b];
    const z = starts[b + 1];
    if (z - a <= SMALL_BUCKET) {
      hi.set(hiA.subarray(a, z), a);
      lo.set(loA.subarray(a, z), a);
      order.set(orderA.subarray(a, z), a);
      continue;
    }
    counts.fill(0);
    for (let i = a; i < z; i++) counts[((hiA[i] >>> NEXT_SHIFT) & NEXT_MASK) + 1]++;
    counts[0] = a;
    for (let d = 0; d <= NEXT_MASK; d++) counts[d + 1] += counts[d];
    for (let i = a; i < z; i++) {
      const h = hiA[i];
      const at = counts[(h >>> NEXT_SHIFT) & NEXT_MASK]++;
      hi[at] = h;
      lo[at] = loA[i];
      order[at] = orderA[i];
    }
  }
  if (!insertionFinish(hi, lo, order, MOVES_PER_ENTRY * n)) return undefined;
  return { order, hashes: interleave(hi, lo) };
}

/** The LSD sort: two stable counting passes on the 16-bit digits of `hi`, then ties by `lo`. */
function sortAny(his: Uint32Array, los: Uint32Array): SortedEntries {
  const n = his.length;
  const counts = new Uint32Array(65537);
  const hiA = new Uint32Array(n);
  const loA = new Uint32Array(n);
  const orderA = new Uint32Array(n);
  radixPass(his, los, iota(n), hiA, loA, orderA, 0, counts);
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  const order = new Uint32Array(n);
  radixPass(hiA, loA, orderA, hi, lo, order, 16, counts);
  // hi is sorted now; ties by lo (groups are almost always of one or two).
  insertionFinish(hi, lo, order, Number.POSITIVE_INFINITY);
  return { order, hashes: interleave(hi, lo) };
}

/**
 * Stable insertion sort of (hi, lo) pairs, carrying `order`, on input that is almost sorted.
 * Gives up (false, arrays partly sorted) once it has moved more than `budget` entries.
 */
function insertionFinish(hi: Uint32Array, lo: Uint32Array, order: Uint32Array, budget: number): boolean {
  const n = hi.length;
  for (let i = 1; i < n; i++) {
    const h = hi[i];
    const l = lo[i];
    if (h > hi[i - 1] || (h === hi[i - 1] && l >= lo[i - 1])) continue;
    const o = order[i];
    let j = i - 1;
    while (j >= 0 && (hi[j] > h || (hi[j] === h && lo[j] > l))) {
      hi[j + 1] = hi[j];
      lo[j + 1] = lo[j];
      order[j + 1] = order[j];
      j--;
    }
    hi[j + 1] = h;
    lo[j + 1] = l;
    order[j + 1] = o;
    budget -= i - j;
    if (budget < 0) return false;
  }
  return true;
}

/** [hi, lo] pairs in one array. */
function interleave(hi: Uint32Array, lo: Uint32Array): Uint32Array {
  const hashes = new Uint32Array(2 * hi.length);
  for (let i = 0; i < hi.length; i++) {
    hashes[2 * i] = hi[i];
    hashes[2 * i + 1] = lo[i];
  }
  return hashes;
}

/** One stable counting-sort pass on the 16-bit digit of `hi` at `shift`. */
function radixPass(
  hi: Uint32Array,
  lo: Uint32Array,
  order: Uint32Array,
  toHi: Uint32Array,
  toLo: Uint32Array,
  toOrder: Uint32Array,
  shift: number,
  counts: Uint32Array,
): void {
  const n = hi.length;
  counts.fill(0);
  for (let i = 0; i < n; i++) counts[((hi[i] >>> shift) & 0xffff) + 1]++;
  for (let d = 0; d < 65536; d++) counts[d + 1] += counts[d];
  for (let i = 0; i < n; i++) {
    const h = hi[i];
    const at = counts[(h >>> shift) & 0xffff]++;
    toHi[at] = h;
    toLo[at] = lo[i];
    toOrder[at] = order[i];
  }
}
