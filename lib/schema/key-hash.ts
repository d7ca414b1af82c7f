/**
 * 64-bit hashes of primary-key strings for the file index. Two independent 32-bit MurmurHash3-
 * style mixes over the UTF-16 code units. With 10^7 keys the chance that any two distinct keys
 * share a 64-bit hash is about 3·10^-6 (n²/2^65); see README "Index" for what that would mean.
 */

import { block, finish } from './murmur3.ts';

const mix = block;

/** Murmur3's 32-bit finalizer (after mixing in `len`), unsigned: every input bit moves every output bit. */
export function fmix(h: number, len: number): number {
  return finish(h, len) >>> 0;
}

/**
 * Hashes keys into its own `hi`/`lo` (no allocation per key): `hasher.hash(key).hi`. Each
 * caller owns one, so a result is never overwritten by someone else's hash.
 */
export class KeyHasher {
  hi = 0;
  lo = 0;

  hash(key: string): this {
    let h1 = 0x9747b28c;
    let h2 = 0x5bd1e995;
    const n = key.length;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      const k = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16);
      h1 = mix(h1, k);
      h2 = mix(h2, k ^ 0x27d4eb2f);
    }
    if (i < n) {
      const k = key.charCodeAt(i);
      h1 = mix(h1, k);
      h2 = mix(h2, k ^ 0x27d4eb2f);
    }
    this.hi = fmix(h1, n);
    this.lo = fmix(h2 ^ this.hi, n);
    return this;
  }
}

/** The hashes of a batch's keys, by operation. */
export interface KeyHashes {
  hi: Uint32Array;
  lo: Uint32Array;
}

/** Every key's hash (a decoder worker's, so the table's thread need not hash). */
export function hashKeys(keys: readonly string[]): KeyHashes {
  const h = new KeyHasher();
  const hi = new Uint32Array(keys.length);
  const lo = new Uint32Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    h.hash(keys[i]);
    hi[i] = h.hi;
    lo[i] = h.lo;
  }
  return { hi, lo };
}

/** The hash as a pair (allocates; for tests and cold paths). */
export function hash64(key: string): [number, number] {
  const h = new KeyHasher().hash(key);
  return [h.hi, h.lo];
}
