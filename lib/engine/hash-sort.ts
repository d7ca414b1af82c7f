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
 * Sorts entries by (hi, lo); returns the order, stable. Key hashes are uniform, so a 2-pass LSD
 * radix sort on the 16-bit digits of `hi`, carrying `hi` and `lo` along (sequential reads), does
 * almost all of it; entries that share `hi` (about n²/2³³ pairs) are then put in `lo` order.
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
  // Equal hi: insertion sort by lo (stable; groups are almost always of one or two).
  for (let i = 1; i < n; i++) {
    if (hi[i] !== hi[i - 1] || lo[i] >= lo[i - 1]) continue;
    const l = lo[i];
    const o = order[i];
    let j = i - 1;
    while (j >= 0 && hi[j] === hi[i] && lo[j] > l) {
      lo[j + 1] = lo[j];
      order[j + 1] = order[j];
      j--;
    }
    lo[j + 1] = l;
    order[j + 1] = o;
  }
  const hashes = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    hashes[2 * i] = hi[i];
    hashes[2 * i + 1] = lo[i];
  }
  return { order, hashes };
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
