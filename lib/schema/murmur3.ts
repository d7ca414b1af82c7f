/**
 * MurmurHash3 x86 32-bit with seed 0, the hash Iceberg's `bucket[N]` transform uses (spec,
 * Appendix B "32-bit Hash Requirements"), over the binary forms the spec gives each type.
 */

function mix(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}

/** The signed 32-bit MurmurHash3 x86 of `bytes`. */
export function murmur3(bytes: Uint8Array, seed = 0): number {
  let h = seed | 0;
  const n = bytes.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    const k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h ^= mix(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = n & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[blocks + 2] << 16;
    if (tail >= 2) k ^= bytes[blocks + 1] << 8;
    k ^= bytes[blocks];
    h ^= mix(k);
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const LONG = new DataView(new ArrayBuffer(8));
const LONG_BYTES = new Uint8Array(LONG.buffer);

/** Hash of a long (int, long, date, time and timestamps hash as their 8-byte little-endian long). */
export function hashLong(v: bigint | number): number {
  LONG.setBigInt64(0, typeof v === 'bigint' ? v : BigInt(v), true);
  return murmur3(LONG_BYTES);
}
