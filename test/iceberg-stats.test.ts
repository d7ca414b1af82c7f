/**
 * Manifest column statistics: Appendix D single-value serialization of bounds (hand-checked
 * byte vectors), `truncate(16)` for strings and binary, float zero/NaN rules, and reading the
 * metrics back.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readData } from '../lib/columns/arrow-convert.ts';
import { columnBufferFor } from '../lib/columns/column-buffer.ts';
import { type ColumnStats, dataStats } from '../lib/columns/column-stats.ts';
import {
  deserializeValue,
  fileMetrics,
  lowerBound,
  serializeValue,
  statsFromMetrics,
  truncateBinaryMax,
  truncateStringMax,
  truncateStringMin,
  upperBound,
} from '../lib/iceberg/stats.ts';
import type { IcebergType, NestedField } from '../lib/schema/iceberg-type.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { compareUtf8 } from '../lib/schema/values.ts';

const hex = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b).toString('hex');

describe('Appendix D binary single-value serialization', () => {
  const cases: [string, IcebergType, unknown, string][] = [
    ['boolean true', { kind: 'boolean' }, true, '01'],
    ['boolean false', { kind: 'boolean' }, false, '00'],
    ['int 1', { kind: 'int' }, 1, '01000000'],
    ['int -2', { kind: 'int' }, -2, 'feffffff'],
    ['int 0x12345678', { kind: 'int' }, 0x12345678, '78563412'],
    ['long 1', { kind: 'long' }, 1n, '0100000000000000'],
    ['long -1', { kind: 'long' }, -1n, 'ffffffffffffffff'],
    ['long 2^40+2', { kind: 'long' }, 2n ** 40n + 2n, '0200000000010000'],
    ['float 1.5', { kind: 'float' }, 1.5, '0000c03f'],
    ['double 1.0', { kind: 'double' }, 1.0, '000000000000f03f'],
    ['double -2.0', { kind: 'double' }, -2.0, '00000000000000c0'],
    // 2017-11-16 is day 17486 = 0x444e.
    ['date 2017-11-16', { kind: 'date' }, 17486, '4e440000'],
    // 22:31:08.123456 = 81068123456 µs = 0x12_e009_6540.
    ['time 22:31:08.123456', { kind: 'time' }, 81068123456n, '406509e012000000'],
    // 2017-11-16T22:31:08.123456 = 1510871468123456 µs = 0x0005_5e21_2d28_a540.
    ['timestamp', { kind: 'timestamp' }, 1510871468123456n, '40a5282d215e0500'],
    ['timestamptz', { kind: 'timestamptz' }, 1510871468123456n, '40a5282d215e0500'],
    ['string iceberg', { kind: 'string' }, 'iceberg', '69636562657267'],
    ['string é (UTF-8)', { kind: 'string' }, 'é', 'c3a9'],
    [
      'uuid (16 bytes big-endian)',
      { kind: 'uuid' },
      'f79c3e09-677c-4bbd-a479-3f349cb785e7',
      'f79c3e09677c4bbda4793f349cb785e7',
    ],
    ['binary', { kind: 'binary' }, new Uint8Array([0, 1, 2, 0xff]), '000102ff'],
    ['fixed[3]', { kind: 'fixed', length: 3 }, new Uint8Array([9, 8, 7]), '090807'],
    // Decimals: unscaled value, two's complement big-endian, fewest bytes.
    ['decimal 14.20 (unscaled 1420 = 0x058c)', { kind: 'decimal', precision: 9, scale: 2 }, 1420n, '058c'],
    ['decimal 0', { kind: 'decimal', precision: 9, scale: 2 }, 0n, '00'],
    ['decimal 127', { kind: 'decimal', precision: 9, scale: 0 }, 127n, '7f'],
    ['decimal 128', { kind: 'decimal', precision: 9, scale: 0 }, 128n, '0080'],
    ['decimal -1', { kind: 'decimal', precision: 9, scale: 0 }, -1n, 'ff'],
    ['decimal -128', { kind: 'decimal', precision: 9, scale: 0 }, -128n, '80'],
    ['decimal -129', { kind: 'decimal', precision: 9, scale: 0 }, -129n, 'ff7f'],
    [
      'decimal(38) max',
      { kind: 'decimal', precision: 38, scale: 0 },
      10n ** 38n - 1n,
      '4b3b4ca85a86c47a098a223fffffffff',
    ],
  ];
  for (const [name, type, value, bytes] of cases) {
    it(`${name} → ${bytes}`, () => {
      expect(hex(serializeValue(type, value))).toBe(bytes);
      expect(deserializeValue(type, Buffer.from(bytes, 'hex'))).toEqual(value);
    });
  }

  it('nested types have no single-value serialization', () => {
    expect(
      serializeValue({ kind: 'list', elementId: 2, element: { kind: 'int' }, elementRequired: false }, [1]),
    ).toBe(undefined);
    expect(serializeValue({ kind: 'struct', fields: [] }, [])).toBe(undefined);
  });

  it('round-trips longs and decimals of any size', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => {
        expect(deserializeValue({ kind: 'long' }, serializeValue({ kind: 'long' }, v)!)).toBe(v);
      }),
    );
    const dec: IcebergType = { kind: 'decimal', precision: 38, scale: 4 };
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 38n) + 1n, max: 10n ** 38n - 1n }), (v) => {
        const b = serializeValue(dec, v)!;
        expect(deserializeValue(dec, b)).toBe(v);
        // Minimal: dropping the first byte would change the value.
        if (b.length > 1) {
          const top = b[0];
          const next = b[1] & 0x80;
          expect((top === 0 && next === 0) || (top === 0xff && next === 0x80)).toBe(false);
        }
      }),
    );
  });
});

describe('bounds with truncate(16)', () => {
  const str: IcebergType = { kind: 'string' };
  const bin: IcebergType = { kind: 'binary' };

  it('keeps strings of at most 16 code points whole', () => {
    expect(hex(lowerBound(str, 'abcdefghijklmnop'))).toBe(Buffer.from('abcdefghijklmnop').toString('hex'));
    expect(hex(upperBound(str, 'abcdefghijklmnop'))).toBe(Buffer.from('abcdefghijklmnop').toString('hex'));
    // 16 code points of 2-4 UTF-8 bytes each are still 16 code points.
    const wide = '😀'.repeat(16);
    expect(lowerBound(str, wide)!.toString('utf8')).toBe(wide);
  });

  it('truncates longer strings: lower is the prefix, upper increments the last code point', () => {
    const s = 'abcdefghijklmnopqrstuvwxyz';
    expect(lowerBound(str, s)!.toString('utf8')).toBe('abcdefghijklmnop');
    expect(upperBound(str, s)!.toString('utf8')).toBe('abcdefghijklmnoq');
    // Code points, not UTF-16 units: 17 emoji truncate to 16 emoji.
    const e = '😀'.repeat(17);
    expect(truncateStringMin(e)).toBe('😀'.repeat(16));
    expect(truncateStringMax(e)).toBe(`${'😀'.repeat(15)}😁`);
  });

  it('drops code points that cannot be incremented and skips surrogates', () => {
    const max = String.fromCodePoint(0x10ffff);
    expect(truncateStringMax(`${'a'.repeat(15)}${max}zz`)).toBe(`${'a'.repeat(14)}b`);
    expect(truncateStringMax(max.repeat(17))).toBe(undefined);
    expect(upperBound(str, max.repeat(17))).toBe(undefined);
    // U+D7FF + 1 would be a surrogate, which UTF-8 cannot hold: the next valid code point is U+E000.
    expect(truncateStringMax(`${'a'.repeat(15)}\ud7ffzz`)).toBe(`${'a'.repeat(15)}\ue000`);
  });

  it('upper bounds are ≥ the value and lower bounds ≤ it (UTF-8 byte order)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        const v = Buffer.from(s, 'utf8');
        expect(Buffer.compare(lowerBound(str, s)!, v)).toBeLessThanOrEqual(0);
        const hi = upperBound(str, s);
        if (hi) expect(Buffer.compare(hi, v)).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it('truncates binary to 16 bytes, incrementing the last byte below 0xff for the upper bound', () => {
    const b = new Uint8Array(20).map((_, i) => i);
    expect(hex(lowerBound(bin, b))).toBe('000102030405060708090a0b0c0d0e0f');
    expect(hex(upperBound(bin, b))).toBe('000102030405060708090a0b0c0d0e10');
    const tail = new Uint8Array(20).fill(0xff);
    tail[3] = 7;
    expect(hex(truncateBinaryMax(tail))).toBe('ffffff08');
    expect(upperBound(bin, new Uint8Array(17).fill(0xff))).toBe(undefined);
    // fixed is not truncated.
    const fixed = new Uint8Array(20).fill(1);
    expect(lowerBound({ kind: 'fixed', length: 20 }, fixed)!.length).toBe(20);
  });

  it('writes a zero lower bound as -0.0 and a zero upper bound as +0.0; NaN is never a bound', () => {
    const dbl: IcebergType = { kind: 'double' };
    const flt: IcebergType = { kind: 'float' };
    expect(hex(lowerBound(dbl, 0))).toBe('0000000000000080');
    expect(hex(upperBound(dbl, -0))).toBe('0000000000000000');
    expect(hex(lowerBound(flt, 0))).toBe('00000080');
    expect(lowerBound(dbl, Number.NaN)).toBe(undefined);
    expect(upperBound(flt, Number.NaN)).toBe(undefined);
    expect(hex(lowerBound(dbl, -1.5))).toBe('000000000000f8bf');
  });
});

describe('file metrics', () => {
  const schema = buildSchema([
    { name: 'id', type: 'long', nullable: false },
    { name: 'name', type: 'string' },
    { name: 'score', type: 'double' },
    { name: 'tags', type: 'list<string>' },
    { name: 'amount', type: 'decimal(10,2)' },
  ]);

  it('has counts for every column and bounds only for primitives, and reads back', () => {
    const stats = new Map([
      [1, { valueCount: 10, nullCount: 0, lower: 5n, upper: 99n }],
      [2, { valueCount: 10, nullCount: 2, lower: 'alpha', upper: 'a-very-long-name-beyond-sixteen' }],
      [3, { valueCount: 10, nullCount: 1, nanCount: 3, lower: -1.25, upper: 7.5 }],
      [4, { valueCount: 10, nullCount: 4 }],
      [5, { valueCount: 10, nullCount: 0, lower: -500n, upper: 123456n }],
    ]);
    const m = fileMetrics(schema.fields, stats);
    expect(m.valueCounts.map((x) => x.key)).toEqual([1, 2, 3, 4, 5]);
    expect(m.nullValueCounts.find((x) => x.key === 4)!.value).toBe(4);
    expect(m.nanValueCounts).toEqual([{ key: 3, value: 3 }]);
    expect(m.lowerBounds.map((x) => x.key)).toEqual([1, 2, 3, 5]);
    expect(hex(m.lowerBounds.find((x) => x.key === 5)!.value)).toBe('fe0c'); // -500
    expect(m.upperBounds.find((x) => x.key === 2)!.value.toString('utf8')).toBe('a-very-long-namf');

    const back = statsFromMetrics(schema.fields, {
      value_counts: m.valueCounts,
      null_value_counts: m.nullValueCounts,
      nan_value_counts: m.nanValueCounts,
      lower_bounds: m.lowerBounds,
      upper_bounds: m.upperBounds,
    });
    expect(back.get(1)).toEqual({ valueCount: 10, nullCount: 0, lower: 5n, upper: 99n });
    expect(back.get(3)).toEqual({ valueCount: 10, nullCount: 1, nanCount: 3, lower: -1.25, upper: 7.5 });
    expect(back.get(4)).toEqual({ valueCount: 10, nullCount: 4 });
    expect(back.get(5)).toEqual({ valueCount: 10, nullCount: 0, lower: -500n, upper: 123456n });
    expect(back.get(2)!.upper).toBe('a-very-long-namf');
  });
});

describe('column statistics as computed', () => {
  const int64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });

  it('bounds 64-bit columns on their words exactly as bigint comparison does (MemSlice and Arrow data)', () => {
    fc.assert(
      fc.property(fc.array(fc.option(int64, { nil: null }), { minLength: 1, maxLength: 60 }), (vals) => {
        const present = vals.filter((v): v is bigint => v !== null);
        const expected: ColumnStats = { valueCount: vals.length, nullCount: vals.length - present.length };
        if (present.length > 0) {
          const sorted = [...present].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          expected.lower = sorted[0];
          expected.upper = sorted[sorted.length - 1];
        }
        const col = columnBufferFor({ kind: 'long' });
        for (const v of vals) col.push(v);
        const rows = Array.from({ length: vals.length }, (_, i) => i);
        expect(col.stats(rows)).toEqual(expected);
        const field = { id: 1, name: 'x', required: false, type: { kind: 'timestamptz' } } as NestedField;
        const data = columnBufferFor(field.type);
        for (const v of vals) data.push(v);
        expect(dataStats(field, data.toData(rows))).toEqual(expected);
      }),
    );
  });

  it('keeps string columns as UTF-8: values, Arrow data of any rows, and byte-order bounds', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'Z', 'é', '\uffff', '\ue000', '😀', '𝄞', '0') });
    fc.assert(
      fc.property(fc.array(fc.option(text, { nil: null }), { minLength: 1, maxLength: 40 }), (vals) => {
        const col = columnBufferFor({ kind: 'string' });
        for (const v of vals) col.push(v);
        expect(vals.map((_, i) => col.get(i))).toEqual(vals);
        const rows = vals.map((_, i) => i).filter((i) => i % 3 !== 1);
        expect(readData({ kind: 'string' }, col.toData(rows))).toEqual(rows.map((i) => vals[i]));
        const present = rows.map((i) => vals[i]).filter((v): v is string => v !== null);
        const sorted = [...present].sort(compareUtf8);
        const expected: ColumnStats = { valueCount: rows.length, nullCount: rows.length - present.length };
        if (sorted.length > 0) {
          expected.lower = sorted[0];
          expected.upper = sorted[sorted.length - 1];
        }
        expect(col.stats(rows)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
    // Past the first buffers: 100,000 strings, some long.
    const big = columnBufferFor({ kind: 'string' });
    for (let i = 0; i < 100_000; i++) big.push(i % 1000 === 0 ? 'x'.repeat(5000) : `name-${i}-ü`);
    expect(big.get(99_999)).toBe('name-99999-ü');
    expect(big.get(99_000)).toBe('x'.repeat(5000));
    expect(big.byteSize).toBeGreaterThan(100_000 * 12);
  });

  it('orders strings by UTF-8 bytes (code points), surrogate pairs included', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'b', 'é', '\uffff', '\ue000', '😀', '𝄞', '\ud7ff') });
    fc.assert(
      fc.property(text, text, (a, b) => {
        const bytes = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(Math.sign(compareUtf8(a, b))).toBe(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
