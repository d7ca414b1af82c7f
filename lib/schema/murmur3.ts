/**
 * MurmurHash3 x86 32-bit with seed 0, the hash Iceberg's `bucket[N]` transform uses (spec,
 * Appendix B "32-bit Hash Requirements"), over the binary forms the spec gives each type.
 */

function mix(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}

/** The hash state after one 4-byte block (also key-hash.ts's mixing step). */
export function block(h: number, k: number): number {
  h ^= mix(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The final mix of the state after `n` bytes (signed). */
export function finish(h: number, n: number): number {
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** The signed 32-bit MurmurHash3 x86 of `bytes`. */
export function murmur3(bytes: Uint8Array, seed = 0): number {
  let h = seed | 0;
  const n = bytes.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4)
    h = block(h, bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
  const tail = n & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[blocks + 2] << 16;
    if (tail >= 2) k ^= bytes[blocks + 1] << 8;
    k ^= bytes[blocks];
    h ^= mix(k);
  }
  return finish(h, n);
}

const LONG = new DataView(new ArrayBuffer(8));
const LONG_BYTES = new Uint8Array(LONG.buffer);
const TWO_32 = 2 ** 32;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Hash of a long (int, long, date, time and timestamps hash as their 8-byte little-endian long).
 * A safe integer is split into its two 32-bit words with doubles (exact below 2^53), as every
 * int, date and today's timestamps are; the rest through the bytes of the 64-bit value.
 */
export function hashLong(v: bigint | number): number {
  const n = typeof v === 'number' ? v : v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : undefined;
  if (n !== undefined && Number.isSafeInteger(n)) {
    const hi = Math.floor(n / TWO_32);
    return finish(block(block(0, n - hi * TWO_32), hi), 8);
  }
  return hashLongBytes(v);
}

/** Hash of a long through its 8 bytes: {@link hashLong}'s path past 2^53, and its reference in tests. */
export function hashLongBytes(v: bigint | number): number {
  LONG.setBigInt64(0, typeof v === 'bigint' ? v : BigInt(v), true);
  return murmur3(LONG_BYTES);
}
