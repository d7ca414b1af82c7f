import { promises as fs } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
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

function setOf(parts: Part[]): Set<number> {
  const set = new Set<number>();
  for (const p of parts) {
    if (typeof p === 'number') set.add(p);
    else for (let x = p[0]; x < p[1]; x++) set.add(x);
  }
  return set;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const read = async (file: string): Promise<Uint8Array> =>
  new Uint8Array(await fs.readFile(path.join(GOLDEN, file)));

/** The 32-bit bitmap {0..9} as Java writes it after runOptimize(): one run container [0, 9]. */
const RUN_0_9 = '3b300000' + '01' + '0000' + '0900' + '0100' + '0000' + '0900';

describe('official 64-bit portable examples', () => {
  it('64map32bitvals.bin: reads 0..9, re-serializes as the run container Java would write', async () => {
    const bytes = await read('64map32bitvals.bin');
    const bm = RoaringBitmap64.deserializePortable(bytes, '64map32bitvals.bin');
    expect(bm.size).toBe(10);
    expect(bm.toArray()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The example stores an array container (cookie 12346); Iceberg run-optimizes before writing.
    expect(hex(bytes)).toContain('3a300000');
    expect(hex(bm.serializePortable())).toBe('0100000000000000' + '00000000' + RUN_0_9);
    expect(bm.serializedSizeInBytes()).toBe(bm.serializePortable().length);
  });

  it('64mapspreadvals.bin: ten keys of 0..9 each', async () => {
    const bytes = await read('64mapspreadvals.bin');
    const bm = RoaringBitmap64.deserializePortable(bytes, '64mapspreadvals.bin');
    expect(bm.size).toBe(100);
    const expected: number[] = [];
    for (let k = 0; k < 10; k++) for (let v = 0; v < 10; v++) expected.push(k * B + v);
    expect(bm.toArray()).toEqual(expected);
    expect(bm.has(9 * B + 9)).toBe(true);
    expect(bm.has(9 * B + 10)).toBe(false);
    expect(bm.has(10 * B)).toBe(false);
    let want = '0a00000000000000';
    for (let k = 0; k < 10; k++) want += Buffer.from([k, 0, 0, 0]).toString('hex') + RUN_0_9;
    expect(hex(bm.serializePortable())).toBe(want);
    // Run-optimized input comes back byte for byte.
    const again = bm.serializePortable();
    expect(hex(RoaringBitmap64.deserializePortable(again).serializePortable())).toBe(hex(again));
  });

  it('64mapempty.bin: empty, and re-serializes to the same 8 bytes', async () => {
    const bytes = await read('64mapempty.bin');
    const bm = RoaringBitmap64.deserializePortable(bytes, '64mapempty.bin');
    expect(bm.size).toBe(0);
    expect(bm.isEmpty()).toBe(true);
    expect(bm.toArray()).toEqual([]);
    expect(hex(bm.serializePortable())).toBe(hex(bytes));
    expect(hex(new RoaringBitmap64().serializePortable())).toBe(hex(bytes));
  });

  it('64maphighvals.bin is refused with a clear error, not read as garbage', async () => {
    const bytes = await read('64maphighvals.bin');
    expect(() => RoaringBitmap64.deserializePortable(bytes, '64maphighvals.bin')).toThrow(
      /^64maphighvals\.bin: bitmap key \d+ \(0x[0-9a-f]+\) holds positions of 2\^53 and beyond/,
    );
  });

  it('refuses a key of 2^21 (positions from 2^53) but reads key 2^21 - 1', () => {
    const ok = bitmap(2 ** 53 - 1);
    const bytes = ok.serializePortable();
    expect(RoaringBitmap64.deserializePortable(bytes).toArray()).toEqual([2 ** 53 - 1]);
    // Hand-made: one bitmap with key 2^21 holding {0}.
    const high = Buffer.from(
      '0100000000000000' + '00002000' + '3a300000010000000000000010000000' + '0000',
      'hex',
    );
    expect(() => RoaringBitmap64.deserializePortable(high, 'h')).toThrow(/^h: bitmap key 2097152 /);
  });
});

describe('run-optimization matches Java (expected bytes produced by RoaringBitmap 1.3.0 + Iceberg logic)', () => {
  // Each case: positions, the whole 64-bit portable bitmap as Iceberg writes it.
  const cases: [string, Part[], string][] = [
    // 2·3 = 6 is not > 2 + 4·1 = 6: stays an array container
    [
      '{0,1,2} stays an array',
      [0, 1, 2],
      '0100000000000000000000003a300000010000000000020010000000000001000200',
    ],
    ['{0,1,2,3} becomes a run', [0, 1, 2, 3], '0100000000000000000000003b3000000100000300010000000300'],
    // 2·5 = 10 is not > 2 + 4·2 = 10: stays an array container
    [
      '{0,1,5,6,7} stays an array',
      [0, 1, 5, 6, 7],
      '0100000000000000000000003a30000001000000000004001000000000000100050006000700',
    ],
    [
      '{0..5,10} becomes two runs',
      [[0, 6], 10],
      '0100000000000000000000003b30000001000006000200000005000a000000',
    ],
    ['a full container is one run', [[0, C]], '0100000000000000000000003b300000010000ffff01000000ffff'],
    [
      'a range across 2^32',
      [[B - 6, B + 4]],
      '0200000000000000000000003b30000001ffff05000100faff0500010000003b3000000100000300010000000300',
    ],
    [
      'key 3 alone: keys 0..2 are written as empty bitmaps',
      [3 * B + 7],
      '0400000000000000000000003a30000000000000010000003a30000000000000020000003a3000000000000003000000' +
        '3a3000000100000000000000100000000700',
    ],
  ];
  for (const [name, parts, expected] of cases) {
    it(name, () => {
      const bm = bitmap(...parts);
      expect(hex(bm.serializePortable())).toBe(expected);
      expect(bm.serializedSizeInBytes()).toBe(expected.length / 2);
      const back = RoaringBitmap64.deserializePortable(bm.serializePortable());
      expect(back.equals(bm)).toBe(true);
      expect(hex(back.serializePortable())).toBe(expected);
    });
  }

  it('a bitset container becomes runs at 2047 runs, not at 2048', () => {
    for (const [runs, asRun] of [
      [2046, true],
      [2047, true],
      [2048, false],
    ] as const) {
      const bm = new RoaringBitmap64();
      for (let i = 0; i < runs; i++) bm.addRange(i * 32, i * 32 + 3);
      const bytes = bm.serializePortable();
      const cookie = Buffer.from(bytes).readUInt16LE(12);
      expect(cookie, `${runs} runs`).toBe(asRun ? 12347 : 12346);
      expect(bytes.length, `${runs} runs`).toBe(12 + (asRun ? 4 + 1 + 4 + 2 + 4 * runs : 8 + 8 + 8192));
    }
  });

  it('an array container of 4096 values stays an array, 4097 values is a bitset', () => {
    for (const card of [4096, 4097]) {
      const bm = new RoaringBitmap64();
      for (let i = 0; i < card; i++) bm.add(i * 2);
      const bytes = bm.serializePortable();
      expect(Buffer.from(bytes).readUInt16LE(12)).toBe(12346);
      expect(bytes.length).toBe(12 + 16 + (card <= 4096 ? 2 * card : 8192));
    }
  });
});

describe('RoaringBitmap64', () => {
  it('validates positions', () => {
    const bm = new RoaringBitmap64();
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY])
      expect(() => bm.add(bad), String(bad)).toThrow(RangeError);
    expect(() => bm.addRange(-1, 3)).toThrow(RangeError);
    expect(() => bm.addRange(5, 3)).toThrow(RangeError);
    expect(() => bm.addRange(0, 2 ** 53 + 2)).toThrow(RangeError);
    expect(bm.has(-1)).toBe(false);
    expect(bm.has(0.5)).toBe(false);
    expect(bm.has(2 ** 60)).toBe(false);
    bm.add(2 ** 53 - 1);
    expect(bm.has(2 ** 53 - 1)).toBe(true);
    expect(bm.size).toBe(1);
  });

  it('counts duplicates once and iterates ascending', () => {
    const bm = bitmap(5, 3, 5, B + 1, 3, [10, 20], [15, 25], 2 * C);
    expect(bm.size).toBe(2 + 15 + 1 + 1);
    const arr = [...bm];
    expect(arr).toEqual(bm.toArray());
    expect(arr).toEqual([...arr].sort((a, b) => a - b));
    expect(bm.min()).toBe(3);
    expect(bm.max()).toBe(B + 1);
    expect(new RoaringBitmap64().min()).toBeUndefined();
    expect(new RoaringBitmap64().max()).toBeUndefined();
    expect(new RoaringBitmap64().isEmpty()).toBe(true);
    expect(bm.isEmpty()).toBe(false);
  });

  it('addRange gives the same set and bytes as single adds, across containers and 2^32', () => {
    const ranges: [number, number][] = [
      [0, 0],
      [7, 8],
      [C - 3, C + 5000],
      [3 * C + 100, 3 * C + 4196],
      [3 * C, 4 * C],
      [B - C - 17, B + C + 9],
      [5 * C + 1, 5 * C + 4097],
    ];
    const fast = new RoaringBitmap64();
    const slow = new RoaringBitmap64();
    for (const [s, e] of ranges) {
      fast.addRange(s, e);
      for (let p = s; p < e; p++) slow.add(p);
      expect(fast.size).toBe(slow.size);
      expect(hex(fast.serializePortable())).toBe(hex(slow.serializePortable()));
    }
    expect(fast.equals(slow)).toBe(true);
  });

  it('addRange into an array container that spills into a bitset and back-fills existing values', () => {
    const a = new RoaringBitmap64();
    for (let i = 0; i < 4000; i++) a.add(i * 3);
    a.addRange(0, 300); // overlaps 100 existing values: 4200 values → bitset
    const b = new RoaringBitmap64();
    for (let i = 0; i < 4000; i++) b.add(i * 3);
    for (let p = 0; p < 300; p++) b.add(p);
    expect(a.size).toBe(b.size);
    expect(hex(a.serializePortable())).toBe(hex(b.serializePortable()));
  });

  it('clone is independent and orInPlace is a union', () => {
    const a = bitmap(1, 2, [C, C + 5000], B + 3);
    const c = a.clone();
    c.add(99);
    expect(a.has(99)).toBe(false);
    expect(c.size).toBe(a.size + 1);
    const b = bitmap(2, 3, [C + 4000, C + 9000], 3 * B);
    const u = a.clone();
    u.orInPlace(b);
    const want = new Set([...a, ...b]);
    expect(u.size).toBe(want.size);
    expect(u.toArray()).toEqual([...want].sort((x, y) => x - y));
    expect(hex(u.serializePortable())).toBe(hex(bitmap(...u.toArray()).serializePortable()));
    u.orInPlace(u);
    expect(u.size).toBe(want.size);
  });

  it('equals compares sets, not how they were built', () => {
    expect(bitmap(1, 2, 3).equals(bitmap([1, 4]))).toBe(true);
    expect(bitmap(1, 2, 3).equals(bitmap(1, 2, 4))).toBe(false);
    expect(bitmap(B).equals(bitmap(2 * B))).toBe(false);
    expect(
      new RoaringBitmap64().equals(RoaringBitmap64.deserializePortable(bitmap().serializePortable())),
    ).toBe(true);
  });

  it('keeps empty leading bitmaps through a round trip, as Java does', () => {
    const bm = bitmap(2 * B + 1);
    const bytes = bm.serializePortable();
    expect(Buffer.from(bytes).readUInt32LE(0)).toBe(3);
    expect(hex(RoaringBitmap64.deserializePortable(bytes).serializePortable())).toBe(hex(bytes));
  });
});

describe('invalid input', () => {
  it('refuses every truncation of a bitmap with array, bitset and run containers', () => {
    const bytes = bitmap(
      1,
      2,
      3,
      [C, C + 10_000],
      [2 * C, 2 * C + 300],
      3 * C + 7,
      B + 5,
    ).serializePortable();
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => RoaringBitmap64.deserializePortable(bytes.subarray(0, cut), 'cut'), `cut ${cut}`).toThrow(
        /^cut: (truncated|invalid) Roaring bitmap/,
      );
    }
  });

  it('refuses trailing bytes, unknown cookies, unsorted keys and bad cardinalities', () => {
    const good = bitmap(1, 5).serializePortable();
    const withTail = new Uint8Array([...good, 0]);
    expect(() => RoaringBitmap64.deserializePortable(withTail, 'x')).toThrow(/unexpected bytes/);
    const badCookie = good.slice();
    badCookie[12] = 0x99;
    expect(() => RoaringBitmap64.deserializePortable(badCookie, 'x')).toThrow(/unknown cookie/);
    const twoKeys = bitmap(1, B + 1).serializePortable();
    const swapped = twoKeys.slice();
    swapped[8] = 1; // first key 1, second key 1
    expect(() => RoaringBitmap64.deserializePortable(swapped, 'x')).toThrow(
      /keys are not strictly ascending/,
    );
    const badCard = good.slice();
    badCard[22] = 5; // header cardinality 6 for an array holding 2 values
    expect(() => RoaringBitmap64.deserializePortable(badCard, 'x')).toThrow(/truncated|invalid/);
    const hugeCount = good.slice();
    hugeCount[7] = 1;
    expect(() => RoaringBitmap64.deserializePortable(hugeCount, 'x')).toThrow(/bitmap count/);
    const unsortedArray = bitmap(1, 5).serializePortable();
    unsortedArray[unsortedArray.length - 2] = 0; // {1, 0}
    expect(() => RoaringBitmap64.deserializePortable(unsortedArray, 'x')).toThrow(/not strictly ascending/);
  });
});

describe('property: agrees with a plain Set', () => {
  const position = fc.oneof(
    fc.integer({ min: 0, max: 200 }),
    fc.integer({ min: 0, max: 5 * C }),
    fc.integer({ min: B - 10, max: B + 3 * C }),
    fc.integer({ min: 0, max: 2 ** 40 }),
  );
  const range = fc
    .tuple(
      fc.oneof(fc.integer({ min: 0, max: 4 * C }), fc.integer({ min: B - 2 * C, max: B + C })),
      fc.integer({ min: 1, max: 9000 }),
    )
    .map(([s, n]) => [s, s + n] as [number, number]);
  const dense = fc
    .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 7 }))
    .map(([block, step, off]) => {
      const out: Part[] = [];
      for (let p = block * C + off; p < (block + 1) * C && out.length < 6000; p += step) out.push(p);
      return out;
    });
  const parts = fc
    .array(
      fc.oneof(
        position.map((p): Part[] => [p]),
        range.map((r): Part[] => [r]),
        dense,
      ),
      { maxLength: 30 },
    )
    .map((xs) => xs.flat());

  it('size, has, iteration and serialize round trip', () => {
    fc.assert(
      fc.property(parts, fc.array(position, { maxLength: 20 }), (ps, probes) => {
        const bm = bitmap(...ps);
        const set = setOf(ps);
        const sorted = [...set].sort((a, b) => a - b);
        expect(bm.size).toBe(set.size);
        expect(bm.isEmpty()).toBe(set.size === 0);
        expect([...bm]).toEqual(sorted);
        expect(bm.min()).toBe(sorted[0]);
        expect(bm.max()).toBe(sorted[sorted.length - 1]);
        for (let i = 0; i < sorted.length; i += Math.max(1, Math.floor(sorted.length / 200)))
          expect(bm.has(sorted[i])).toBe(true);
        for (const p of probes) {
          expect(bm.has(p)).toBe(set.has(p));
          expect(bm.has(p + 1)).toBe(set.has(p + 1));
        }
        const bytes = bm.serializePortable();
        expect(bm.serializedSizeInBytes()).toBe(bytes.length);
        const back = RoaringBitmap64.deserializePortable(bytes);
        expect(back.size).toBe(set.size);
        expect(back.equals(bm)).toBe(true);
        expect(hex(back.serializePortable())).toBe(hex(bytes));
        // Built one position at a time (as Iceberg does) the bytes are the same.
        const single = new RoaringBitmap64();
        for (const p of sorted) single.add(p);
        expect(hex(single.serializePortable())).toBe(hex(bytes));
      }),
      { numRuns: 200 },
    );
  });

  it('orInPlace matches a Set union and the bytes of the union built from scratch', () => {
    fc.assert(
      fc.property(parts, parts, (xs, ys) => {
        const a = bitmap(...xs);
        const b = bitmap(...ys);
        const want = new Set([...setOf(xs), ...setOf(ys)]);
        a.orInPlace(b);
        expect(a.size).toBe(want.size);
        expect(a.toArray()).toEqual([...want].sort((p, q) => p - q));
        const scratch = new RoaringBitmap64();
        for (const p of a) scratch.add(p);
        expect(hex(a.serializePortable())).toBe(hex(scratch.serializePortable()));
      }),
      { numRuns: 100 },
    );
  });
});
