import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  crc32,
  crc32Fallback,
  DELETION_VECTOR_MAGIC,
  decodeDeletionVector,
  encodeDeletionVector,
} from '../lib/iceberg/deletion-vector.ts';
import { RoaringBitmap64 } from '../lib/iceberg/roaring.ts';

const GOLDEN = path.resolve(process.cwd(), '../shared/conformance/iceberg-deletion-vectors');
const C = 65_536;
const B = 4_294_967_296;

type Part = number | [number, number];

function bitmap(...parts: Part[]): RoaringBitmap64 {
  const bm = new RoaringBitmap64();
  for (const p of parts) {
    if (typeof p === 'number') bm.add(p);
    else bm.addRange(p[0], p[1]);
  }
  return bm;
}

function expand(parts: Part[]): number[] {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else for (let x = p[0]; x < p[1]; x++) out.push(x);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const read = async (file: string): Promise<Uint8Array> =>
  new Uint8Array(await fs.readFile(path.join(GOLDEN, file)));

/** The README's table: file → deleted positions. */
const GOLDEN_BLOBS: [string, Part[]][] = [
  ['empty-position-index.bin', []],
  ['small-alternating-values-position-index.bin', [1, 3, 5, 7, 9]],
  ['small-and-large-values-position-index.bin', [100, 101, 2147483747, 2147483748]],
  [
    'all-container-types-position-index.bin',
    [
      5,
      7,
      [C + 1, C + 1000],
      [2 * C + 1, 2 * C + 65535],
      B + 10,
      B + 20,
      [B + C + 10, B + C + 500],
      [B + 2 * C + 1, B + 2 * C + 65535],
    ],
  ],
];

describe('deletion-vector-v1 golden blobs from Apache Iceberg', () => {
  for (const [file, parts] of GOLDEN_BLOBS) {
    const positions = expand(parts);

    it(`${file}: encoding the README's positions gives the file's bytes`, async () => {
      const bytes = await read(file);
      expect(hex(encodeDeletionVector(bitmap(...parts)))).toBe(hex(bytes));
      // The same when every position is set one at a time, as Iceberg does.
      const single = new RoaringBitmap64();
      for (const p of positions) single.add(p);
      expect(hex(encodeDeletionVector(single))).toBe(hex(bytes));
    });

    it(`${file}: decoding gives exactly the README's positions`, async () => {
      const decoded = decodeDeletionVector(await read(file), file);
      expect(decoded.size).toBe(positions.length);
      expect(decoded.toArray()).toEqual(positions);
      expect(decoded.equals(bitmap(...parts))).toBe(true);
    });

    it(`${file}: a corrupted CRC is refused with an error naming the file`, async () => {
      const bytes = await read(file);
      bytes[bytes.length - 1] ^= 0x01;
      expect(() => decodeDeletionVector(bytes, file)).toThrow(
        new RegExp(`^${file.replace(/[.]/g, '\\.')}: invalid CRC`),
      );
      // A flipped bit in the bitmap is caught by the CRC too.
      const body = await read(file);
      body[body.length - 5] ^= 0x80;
      expect(() => decodeDeletionVector(body, file)).toThrow(/invalid CRC/);
    });
  }

  it('the all-container-types blob holds array, run and (run-optimized) bitset containers', async () => {
    const bytes = await read('all-container-types-position-index.bin');
    // two 32-bit bitmaps, each with the run cookie and run flags on containers 1 and 2
    expect(Buffer.from(bytes).readUInt32LE(8)).toBe(2);
    expect(hex(bytes.subarray(20, 25))).toBe('3b30020006');
    expect(decodeDeletionVector(bytes).size).toBe(2 + 999 + 65534 + 2 + 490 + 65534);
  });
});

describe('deletion-vector-v1 framing', () => {
  it('lays out length, magic, bitmap and CRC as the spec says', () => {
    const bm = bitmap(1, 2, 3, B + 7);
    const blob = encodeDeletionVector(bm);
    const bits = bm.serializePortable();
    const view = Buffer.from(blob);
    expect(view.readUInt32BE(0)).toBe(4 + bits.length);
    expect(Array.from(blob.subarray(4, 8))).toEqual(Array.from(DELETION_VECTOR_MAGIC));
    expect(Array.from(DELETION_VECTOR_MAGIC)).toEqual([0xd1, 0xd3, 0x39, 0x64]);
    expect(hex(blob.subarray(8, 8 + bits.length))).toBe(hex(bits));
    expect(view.readUInt32BE(blob.length - 4)).toBe(zlib.crc32(blob.subarray(4, blob.length - 4)));
    expect(blob.length).toBe(12 + bm.serializedSizeInBytes());
  });

  it('refuses a bad length, magic, truncation or a bad bitmap, naming the blob', async () => {
    const good = await read('small-alternating-values-position-index.bin');
    const badMagic = good.slice();
    badMagic[5] = 0;
    expect(() => decodeDeletionVector(badMagic, 'a.puffin')).toThrow(/^a\.puffin: not a deletion vector/);
    const badLength = good.slice();
    badLength[3] += 1;
    expect(() => decodeDeletionVector(badLength, 'a.puffin')).toThrow(/^a\.puffin: deletion vector length/);
    for (const cut of [0, 3, 11, 19, good.length - 1]) {
      expect(() => decodeDeletionVector(good.subarray(0, cut), 'a.puffin'), `cut ${cut}`).toThrow(
        /^a\.puffin: /,
      );
    }
    // A blob with a valid frame and CRC around a broken bitmap.
    const bits = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99, 0x99, 0, 0]);
    const frame = new Uint8Array(4 + 4 + bits.length + 4);
    const view = new DataView(frame.buffer);
    view.setUint32(0, 4 + bits.length);
    frame.set(DELETION_VECTOR_MAGIC, 4);
    frame.set(bits, 8);
    view.setUint32(frame.length - 4, zlib.crc32(frame.subarray(4, frame.length - 4)));
    expect(() => decodeDeletionVector(frame, 'b.puffin')).toThrow(/^b\.puffin: invalid Roaring bitmap/);
  });

  it('decodes a blob that is a view into a larger buffer', async () => {
    const blob = await read('small-and-large-values-position-index.bin');
    const big = new Uint8Array(blob.length + 10);
    big.set(blob, 7);
    expect(decodeDeletionVector(big.subarray(7, 7 + blob.length)).toArray()).toEqual([
      100, 101, 2147483747, 2147483748,
    ]);
  });

  it('the table-driven CRC-32 fallback agrees with zlib', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        expect(crc32Fallback(data)).toBe(zlib.crc32(data));
        expect(crc32(data)).toBe(zlib.crc32(data));
      }),
    );
    expect(crc32Fallback(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});

describe('property: encode/decode round trip', () => {
  const part: fc.Arbitrary<Part> = fc.oneof(
    fc.integer({ min: 0, max: 300 }),
    fc.integer({ min: 0, max: 6 * C }),
    fc.integer({ min: B - 100, max: B + 2 * C }),
    fc.integer({ min: 0, max: 2 ** 38 }),
    fc
      .tuple(fc.integer({ min: 0, max: 5 * C }), fc.integer({ min: 1, max: 12_000 }))
      .map(([s, n]): Part => [s, s + n]),
  );
  it('decode(encode(x)) = x and re-encoding is byte-identical', () => {
    fc.assert(
      fc.property(fc.array(part, { maxLength: 40 }), (parts) => {
        const bm = bitmap(...parts);
        const blob = encodeDeletionVector(bm);
        const back = decodeDeletionVector(blob, 'prop');
        expect(back.toArray()).toEqual(expand(parts));
        expect(hex(encodeDeletionVector(back))).toBe(hex(blob));
      }),
      { numRuns: 150 },
    );
  });
});
