/**
 * Partition transforms and specs against the Iceberg spec's own examples: Appendix B's 32-bit
 * hashes (bucket), the truncate and temporal examples of "Partition Transforms", the default
 * partition field names, the 400s a bad `partitionBy` gets, and predicate projection (what a
 * filter on the source column says of the partition value).
 */
import { describe, expect, it } from 'vitest';
import { parseType } from '../lib/schema/iceberg-type.ts';
import { murmur3 } from '../lib/schema/murmur3.ts';
import {
  parsePartitionBy,
  partitionRecord,
  specFromIcebergJson,
  specToIcebergJson,
} from '../lib/schema/partition-spec.ts';
import {
  hashValue,
  parseTransform,
  projectPredicate,
  transformFunction,
  transformMisfit,
} from '../lib/schema/partition-transform.ts';
import { parseSortBy, rowComparator } from '../lib/schema/sort-order.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { parseDate, parseTime, parseTimestamp } from '../lib/schema/temporal.ts';

const t = (s: string) => parseType(s);
const apply = (transform: string, type: string, v: unknown) =>
  transformFunction(parseTransform(transform)!, t(type))(v);

describe('Appendix B: 32-bit hashes', () => {
  it('hashes each type as the spec examples say', () => {
    expect(hashValue(t('int'), 34)).toBe(2017239379);
    expect(hashValue(t('long'), 34n)).toBe(2017239379);
    expect(hashValue(t('decimal(9,2)'), 1420n)).toBe(-500754589);
    expect(hashValue(t('date'), parseDate('2017-11-16'))).toBe(-653330422);
    expect(hashValue(t('time'), parseTime('22:31:08'))).toBe(-662762989);
    expect(hashValue(t('timestamp'), parseTimestamp('2017-11-16T22:31:08', false))).toBe(-2047944441);
    expect(hashValue(t('timestamptz'), parseTimestamp('2017-11-16T14:31:08-08:00', true))).toBe(-2047944441);
    expect(hashValue(t('string'), 'iceberg')).toBe(1210000089);
    expect(hashValue(t('uuid'), 'f79c3e09-677c-4bbd-a479-3f349cb785e7')).toBe(1488055340);
    expect(hashValue(t('binary'), Uint8Array.of(0, 1, 2, 3))).toBe(-188683207);
    expect(hashValue(t('fixed[4]'), Uint8Array.of(0, 1, 2, 3))).toBe(-188683207);
    // Murmur3 x86 32 of 0, 1 and 3 bytes (published reference values; 2-byte tails: the decimal above).
    expect(murmur3(new Uint8Array(0))).toBe(0);
    expect(murmur3(Buffer.from('a'))).toBe(1009084850);
    expect(murmur3(Buffer.from('abc'))).toBe(-1277324294);
  });

  it('buckets are (hash & MAX_INT) % N', () => {
    expect(apply('bucket[16]', 'long', 34n)).toBe(2017239379 % 16);
    expect(apply('bucket[16]', 'string', 'iceberg')).toBe(1210000089 % 16);
    expect(apply('bucket[7]', 'decimal(9,2)', 1420n)).toBe((-500754589 & 0x7fffffff) % 7);
    expect(apply('bucket[16]', 'long', null)).toBeNull();
  });
});

describe('truncate and temporal transforms', () => {
  it('truncates as the spec examples say', () => {
    expect(apply('truncate[10]', 'int', 1)).toBe(0);
    expect(apply('truncate[10]', 'int', -1)).toBe(-10);
    expect(apply('truncate[10]', 'long', 1n)).toBe(0n);
    expect(apply('truncate[10]', 'long', -1n)).toBe(-10n);
    // decimal 10.65 truncated by 50 on the unscaled value: 10.50
    expect(apply('truncate[50]', 'decimal(9,2)', 1065n)).toBe(1050n);
    expect(apply('truncate[3]', 'string', 'iceberg')).toBe('ice');
    // Code points, not UTF-16 units: an emoji counts once.
    expect(apply('truncate[2]', 'string', 'a😀b')).toBe('a😀');
    expect(apply('truncate[2]', 'binary', Uint8Array.of(1, 2, 3))).toEqual(Uint8Array.of(1, 2));
  });

  it('year, month, day and hour count from 1970 (floor for times before it)', () => {
    const ts = parseTimestamp('2017-11-16T22:31:08', false);
    expect(apply('day', 'timestamp', ts)).toBe(17486);
    expect(apply('day', 'date', parseDate('2017-11-16'))).toBe(17486);
    expect(apply('year', 'timestamp', ts)).toBe(47);
    expect(apply('month', 'timestamp', ts)).toBe(47 * 12 + 10);
    expect(apply('hour', 'timestamp', ts)).toBe(17486 * 24 + 22);
    expect(apply('day', 'timestamptz', parseTimestamp('2024-05-01T00:00:00Z', true))).toBe(19844);
    const before = parseTimestamp('1969-12-31T23:59:59.999999', false);
    expect(apply('day', 'timestamp', before)).toBe(-1);
    expect(apply('hour', 'timestamp', before)).toBe(-1);
    expect(apply('year', 'date', parseDate('1969-12-31'))).toBe(-1);
    expect(apply('month', 'date', parseDate('1969-12-31'))).toBe(-1);
    expect(apply('void', 'long', 5n)).toBeNull();
    expect(apply('identity', 'string', 'x')).toBe('x');
  });

  it('says which transforms fit which types', () => {
    expect(transformMisfit(parseTransform('day')!, t('long'))).toMatch(/day does not apply to a long/);
    expect(transformMisfit(parseTransform('truncate[4]')!, t('boolean'))).toMatch(/truncate\[4\]/);
    expect(transformMisfit(parseTransform('hour')!, t('date'))).toMatch(/hour/);
    expect(transformMisfit(parseTransform('bucket[4]')!, t('double'))).toMatch(/bucket/);
    expect(transformMisfit(parseTransform('identity')!, t('list<int>'))).toMatch(/list/);
    expect(transformMisfit(parseTransform('void')!, t('list<int>'))).toBeUndefined();
    expect(transformMisfit(parseTransform('month')!, t('date'))).toBeUndefined();
    expect(parseTransform('bucket[0]')).toBeUndefined();
    expect(parseTransform('weekday')).toBeUndefined();
  });
});

describe('partition specs', () => {
  const schema = buildSchema(
    [
      { name: 'id', type: 'long' },
      { name: 'placed_at', type: 'timestamptz' },
      { name: 'flag', type: 'boolean' },
      { name: 'addr', type: 'struct<zip:string>' },
    ],
    ['id'],
  );
  const ctx = { specId: 0, lastPartitionId: 999 };

  it('names fields as Iceberg does and numbers them from 1000', () => {
    const { spec, lastPartitionId } = parsePartitionBy(
      [
        { column: 'placed_at', transform: 'day' },
        { column: 'id', transform: 'bucket[16]' },
        { column: 'addr.zip', transform: 'truncate[3]' },
        { column: 'flag' },
      ],
      schema.fields,
      ctx,
    );
    expect(spec.fields.map((f) => [f.name, f.fieldId])).toEqual([
      ['placed_at_day', 1000],
      ['id_bucket', 1001],
      ['addr_zip_trunc', 1002],
      ['flag', 1003],
    ]);
    expect(lastPartitionId).toBe(1003);
    expect(specFromIcebergJson(specToIcebergJson(spec))).toEqual(spec);
    expect(partitionRecord(spec, schema.fields, [19844, 3, 'abc', true])).toEqual({
      placed_at_day: 19844,
      id_bucket: 3,
      addr_zip_trunc: 'abc',
      flag: true,
    });
  });

  it('keeps field ids of an earlier spec for the same source and transform', () => {
    const first = parsePartitionBy([{ column: 'placed_at', transform: 'day' }], schema.fields, ctx);
    const next = parsePartitionBy(
      [
        { column: 'id', transform: 'bucket[8]' },
        { column: 'placed_at', transform: 'day' },
      ],
      schema.fields,
      { specId: 1, lastPartitionId: first.lastPartitionId, previous: [first.spec] },
    );
    expect(next.spec.fields.map((f) => f.fieldId)).toEqual([1001, 1000]);
  });

  it('refuses what does not fit, naming the item', () => {
    const bad = (items: Parameters<typeof parsePartitionBy>[0]) => () =>
      parsePartitionBy(items, schema.fields, ctx);
    expect(bad([{ column: 'nope', transform: 'day' }])).toThrow(/partitionBy\[0\]: unknown column "nope"/);
    expect(bad([{ column: 'id', transform: 'day' }])).toThrow(
      /partitionBy\[0\]: day does not apply to a long/,
    );
    expect(bad([{ column: 'flag', transform: 'truncate[2]' }])).toThrow(
      /truncate\[2\] does not apply to a boolean/,
    );
    expect(bad([{ column: 'id', transform: 'bucket' }])).toThrow(/unknown transform "bucket"/);
    expect(
      bad([
        { column: 'id', transform: 'bucket[2]' },
        { column: 'id', transform: 'bucket[2]' },
      ]),
    ).toThrow(/partitionBy\[1\]: "id" is already partitioned by bucket\[2\]/);
    expect(bad([{ column: 'id', transform: 'bucket[2]', name: 'flag' }])).toThrow(/is a column's name/);
  });
});

describe('predicate projection', () => {
  const ts = t('timestamptz');
  const at = parseTimestamp('2024-05-01T12:00:00Z', true);
  it('projects ranges through order-preserving transforms and equality through bucket', () => {
    expect(projectPredicate(parseTransform('day')!, ts, '>=', at)).toEqual({ op: '>=', value: 19844 });
    expect(projectPredicate(parseTransform('day')!, ts, '<', at)).toEqual({ op: '<=', value: 19844 });
    expect(projectPredicate(parseTransform('day')!, ts, '=', at)).toEqual({ op: '=', value: 19844 });
    expect(projectPredicate(parseTransform('day')!, ts, '!=', at)).toBeUndefined();
    expect(projectPredicate(parseTransform('bucket[16]')!, t('long'), '=', 34n)).toEqual({
      op: '=',
      value: 2017239379 % 16,
    });
    expect(projectPredicate(parseTransform('bucket[16]')!, t('long'), '<', 34n)).toBeUndefined();
    expect(projectPredicate(parseTransform('identity')!, t('long'), '!=', 3n)).toEqual({
      op: '!=',
      value: 3n,
    });
  });
});

describe('sort orders', () => {
  it('orders rows by direction and null order, stable on ties', () => {
    const schema = buildSchema([
      { name: 'a', type: 'int' },
      { name: 'b', type: 'string' },
    ]);
    const order = parseSortBy(
      [
        { column: 'a', direction: 'desc' },
        { column: 'b', nulls: 'last' },
      ],
      schema.fields,
    );
    expect(order.fields.map((f) => [f.direction, f.nullOrder])).toEqual([
      ['desc', 'nulls-last'],
      ['asc', 'nulls-last'],
    ]);
    const a = [1, null, 2, 2, 1];
    const b = ['x', 'y', null, 'a', 'a'];
    const rows = [0, 1, 2, 3, 4].sort(rowComparator(order, [a, b]));
    expect(rows).toEqual([3, 2, 4, 0, 1]);
    expect(() => parseSortBy([{ column: 'zz' }], schema.fields)).toThrow(/sortBy\[0\]: unknown column/);
  });
});
