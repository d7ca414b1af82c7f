import { promises as fs } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeDeletionVector, encodeDeletionVector } from '../lib/iceberg/deletion-vector.ts';
import { readPuffinFooter, writePuffin } from '../lib/iceberg/puffin.ts';
import { RoaringBitmap64 } from '../lib/iceberg/roaring.ts';

const GOLDEN = path.resolve(process.cwd(), '../shared/conformance/iceberg-deletion-vectors');
const C = 65_536;
const B = 4_294_967_296;

function bitmap(...parts: (number | [number, number])[]): RoaringBitmap64 {
  const bm = new RoaringBitmap64();
  for (const p of parts) {
    if (typeof p === 'number') bm.add(p);
    else bm.addRange(p[0], p[1]);
  }
  return bm;
}

const golden: [string, RoaringBitmap64, number][] = [
  ['empty-position-index.bin', bitmap(), 0],
  ['small-alternating-values-position-index.bin', bitmap(1, 3, 5, 7, 9), 5],
  ['small-and-large-values-position-index.bin', bitmap(100, 101, 2147483747, 2147483748), 4],
  [
    'all-container-types-position-index.bin',
    bitmap(
      5,
      7,
      [C + 1, C + 1000],
      [2 * C + 1, 2 * C + 65535],
      B + 10,
      B + 20,
      [B + C + 10, B + C + 500],
      [B + 2 * C + 1, B + 2 * C + 65535],
    ),
    132_561,
  ],
];

describe('deletion vectors match Apache Iceberg byte for byte', () => {
  for (const [file, positions, cardinality] of golden) {
    it(file, async () => {
      const bytes = new Uint8Array(await fs.readFile(path.join(GOLDEN, file)));
      expect(positions.size).toBe(cardinality);
      expect(Buffer.from(encodeDeletionVector(positions)).toString('hex')).toBe(
        Buffer.from(bytes).toString('hex'),
      );
      const decoded = decodeDeletionVector(bytes, file);
      expect(decoded.size).toBe(cardinality);
      expect(decoded.equals(positions)).toBe(true);
    });
  }

  it('refuses a blob whose CRC does not match, naming the file', async () => {
    const bytes = new Uint8Array(
      await fs.readFile(path.join(GOLDEN, 'small-alternating-values-position-index.bin')),
    );
    bytes[bytes.length - 1] ^= 1;
    expect(() => decodeDeletionVector(bytes, 'small-alternating-values-position-index.bin')).toThrow(
      /small-alternating-values-position-index\.bin: invalid CRC/,
    );
    const bad = new Uint8Array(await fs.readFile(path.join(GOLDEN, 'empty-position-index.bin')));
    bad[5] = 0;
    expect(() => decodeDeletionVector(bad, 'x.bin')).toThrow(/x\.bin: not a deletion vector/);
  });
});

describe('64-bit portable Roaring bitmaps', () => {
  it('reads the official examples (written without run optimization) and round-trips them', async () => {
    for (const [file, card] of [
      ['64map32bitvals.bin', 10],
      ['64mapempty.bin', 0],
      ['64mapspreadvals.bin', 100],
    ] as const) {
      const bytes = new Uint8Array(await fs.readFile(path.join(GOLDEN, file)));
      const bm = RoaringBitmap64.deserializePortable(bytes, file);
      expect(bm.size, file).toBe(card);
      // The examples keep array containers; Iceberg's writer run-optimizes, so bytes differ.
      expect(RoaringBitmap64.deserializePortable(bm.serializePortable()).equals(bm), file).toBe(true);
    }
    const vals = RoaringBitmap64.deserializePortable(
      new Uint8Array(await fs.readFile(path.join(GOLDEN, '64map32bitvals.bin'))),
    );
    expect(vals.toArray()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const spread = RoaringBitmap64.deserializePortable(
      new Uint8Array(await fs.readFile(path.join(GOLDEN, '64mapspreadvals.bin'))),
    );
    expect(spread.has(9 * B + 9)).toBe(true);
    expect(spread.has(9 * B + 10)).toBe(false);
  });

  it('refuses keys beyond any row position with a clear error', async () => {
    const bytes = new Uint8Array(await fs.readFile(path.join(GOLDEN, '64maphighvals.bin')));
    expect(() => RoaringBitmap64.deserializePortable(bytes, '64maphighvals.bin')).toThrow(
      /64maphighvals\.bin: bitmap key \d+ holds positions of 2\^53 and beyond/,
    );
  });

  it('refuses truncated input', () => {
    const bytes = bitmap(1, 2, 3, [C, C + 10000]).serializePortable();
    for (const cut of [1, 9, 20, bytes.length - 1]) {
      expect(() => RoaringBitmap64.deserializePortable(bytes.subarray(0, cut))).toThrow(
        /truncated|not a Roaring/,
      );
    }
  });

  it('agrees with a plain Set and round-trips any set of positions', () => {
    const position = fc.oneof(
      fc.integer({ min: 0, max: 200 }),
      fc.integer({ min: 0, max: 5 * C }),
      fc.integer({ min: B - 10, max: B + 3 * C }),
      fc.integer({ min: 0, max: 2 ** 40 }),
    );
    const range = fc
      .tuple(fc.integer({ min: 0, max: 4 * C }), fc.integer({ min: 1, max: 9000 }))
      .map(([s, n]) => [s, s + n] as [number, number]);
    fc.assert(
      fc.property(fc.array(fc.oneof(position, range), { maxLength: 40 }), (parts) => {
        const bm = bitmap(...parts);
        const set = new Set<number>();
        for (const p of parts) {
          if (typeof p === 'number') set.add(p);
          else for (let x = p[0]; x < p[1]; x++) set.add(x);
        }
        expect(bm.size).toBe(set.size);
        const sorted = [...set].sort((a, b) => a - b);
        expect(bm.toArray()).toEqual(sorted);
        for (const p of sorted.slice(0, 50)) expect(bm.has(p)).toBe(true);
        expect(bm.has(2 ** 41 + 1)).toBe(set.has(2 ** 41 + 1));
        const back = decodeDeletionVector(encodeDeletionVector(bm));
        expect(back.equals(bm)).toBe(true);
        expect(Buffer.from(back.serializePortable()).equals(Buffer.from(bm.serializePortable()))).toBe(true);
        expect(bm.serializedSizeInBytes()).toBe(bm.serializePortable().length);
      }),
      { numRuns: 150 },
    );
  });
});

describe('Puffin', () => {
  it('writes blobs and a footer that reads back', () => {
    const dv = encodeDeletionVector(bitmap(1, 2, 3));
    const { bytes, blobs } = writePuffin([
      {
        type: 'deletion-vector-v1',
        fields: [2147483545],
        snapshotId: -1,
        sequenceNumber: -1,
        properties: { 'referenced-data-file': 's3://b/data/a.parquet', cardinality: '3' },
        data: dv,
      },
      {
        type: 'apache-datasketches-theta-v1',
        fields: [1],
        snapshotId: 5,
        sequenceNumber: 2,
        data: new Uint8Array([9, 9]),
      },
    ]);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('PFA1');
    expect(new TextDecoder().decode(bytes.subarray(bytes.length - 4))).toBe('PFA1');
    const footer = readPuffinFooter(bytes);
    expect(footer.blobs).toEqual(blobs);
    expect(footer.blobs[0]).toMatchObject({
      offset: 4,
      length: dv.length,
      properties: { 'referenced-data-file': 's3://b/data/a.parquet', cardinality: '3' },
    });
    expect(footer.properties['created-by']).toBe('moonlink-serverless');
    const b0 = footer.blobs[0];
    expect(decodeDeletionVector(bytes.subarray(b0.offset, b0.offset + b0.length)).toArray()).toEqual([
      1, 2, 3,
    ]);
    expect(Array.from(bytes.subarray(footer.blobs[1].offset, footer.blobs[1].offset + 2))).toEqual([9, 9]);
    expect(() => readPuffinFooter(bytes.subarray(1))).toThrow(/not a Puffin file/);
  });
});
