/** Decimal unscaled values as bytes, the form Iceberg bounds, partition values and hashes use. */

/** Two's complement big-endian in the fewest bytes that hold the value (Java's BigInteger.toByteArray). */
export function decimalBytes(unscaled: bigint): Buffer {
  let n = 1;
  while (unscaled < -(1n << BigInt(8 * n - 1)) || unscaled >= 1n << BigInt(8 * n - 1)) n++;
  const b = Buffer.alloc(n);
  let x = BigInt.asUintN(8 * n, unscaled);
  for (let i = n - 1; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}
