/**
 * Where rows go in data files (row-layout.ts) against a reference model: the partition tuple of
 * every row through the spec's transforms, grouped by its text (tupleKey), groups in key order,
 * rows in order inside each (then sorted, stably). Random rows over the types partitions use,
 * with nulls, -0, NaN, values past 2^53 and before 1970. And the transforms' fast arithmetic
 * (hashLong in 32-bit words, floor division of timestamps in doubles) against bigint arithmetic.
 */
import { describe, expect, it } from 'vitest';
import { layoutRows, type RowLayout } from '../lib/engine/row-layout.ts';
import { hashLong, hashLongBytes } from '../lib/schema/murmur3.ts';
import {
  NO_PARTITION_FIELD_ID,
  type PartitionTuple,
  parsePartitionBy,
  partitioner,
  tupleKey,
} from '../lib/schema/partition-spec.ts';
import { floorDivToNumber } from '../lib/schema/partition-transform.ts';
import { parseSortBy, rowComparator, UNSORTED } from '../lib/schema/sort-order.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import type { Value } from '../lib/schema/values.ts';
import { rng } from './support/model.ts';

const schema = buildSchema(
  [
    { name: 'id', type: 'long', nullable: false },
    { name: 'name', type: 'string' },
    { name: 'n', type: 'int' },
    { name: 'x', type: 'double' },
    { name: 'at', type: 'timestamp' },
    { name: 'd', type: 'date' },
    { name: 'b', type: 'binary' },
    { name: 'ok', type: 'boolean' },
  ],
  ['id'],
);

const EDGE_US = [
  0n,
  -1n,
  2n ** 52n,
  -(2n ** 52n),
  2n ** 53n + 1n,
  2n ** 62n,
  -(2n ** 63n),
  86_400_000_000n - 1n,
];

function randomRows(count: number, next: () => number): Value[][] {
  const pick = <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)];
  const maybe = (v: Value): Value => (next() < 0.08 ? null : v);
  return Array.from({ length: count }, () => [
    next() < 0.1 ? pick(EDGE_US) : BigInt(Math.floor((next() - 0.5) * 2 ** 40)),
    maybe(pick(['a', 'b', 'ab', 'é', '', 'longer text'])),
    maybe(Math.floor((next() - 0.5) * 200)),
    maybe(pick([0, -0, 1.5, Number.NaN, -2.25])),
    maybe(
      next() < 0.15
        ? pick(EDGE_US)
        : 1_700_000_000_000_000n + BigInt(Math.floor((next() - 0.5) * 4 * 86_400_000_000)),
    ),
    maybe(Math.floor((next() - 0.5) * 40)),
    maybe(
      pick([
        new Uint8Array([1, 2, 3]),
        new Uint8Array([1, 2]),
        new Uint8Array([]),
        new Uint8Array([255, 0, 7]),
      ]),
    ),
    maybe(next() < 0.5),
  ]);
}

/** The reference: each row's tuple and its text, then as layoutRows promises. */
function model(layout: RowLayout, rows: Value[][]): { partition: PartitionTuple; rows: number[] }[] {
  const p = partitioner(layout.spec, schema.fields);
  const columnOf = (id: number) => schema.fields.findIndex((f) => f.id === id);
  const groups = new Map<string, { partition: PartitionTuple; rows: number[] }>();
  rows.forEach((row, i) => {
    const partition = p.apply(p.sources.map((id) => row[columnOf(id)]));
    const key = tupleKey(partition);
    const g = groups.get(key) ?? { partition, rows: [] };
    g.rows.push(i);
    groups.set(key, g);
  });
  return [...groups.keys()].sort().map((k) => {
    const g = groups.get(k)!;
    if (layout.order.fields.length === 0) return g;
    const columns = layout.order.fields.map((f) => g.rows.map((r) => rows[r][columnOf(f.sourceId)]));
    const cmp = rowComparator(layout.order, columns);
    const perm = g.rows.map((_, j) => j).sort(cmp);
    return { partition: g.partition, rows: perm.map((j) => g.rows[j]) };
  });
}

const SPECS: { column: string; transform: string }[][] = [
  [
    { column: 'at', transform: 'day' },
    { column: 'id', transform: 'bucket[16]' },
  ],
  [{ column: 'at', transform: 'hour' }],
  [
    { column: 'd', transform: 'month' },
    { column: 'name', transform: 'identity' },
  ],
  [
    { column: 'x', transform: 'identity' },
    { column: 'ok', transform: 'identity' },
    { column: 'n', transform: 'truncate[10]' },
  ],
  [
    { column: 'b', transform: 'truncate[2]' },
    { column: 'at', transform: 'year' },
  ],
  [
    { column: 'id', transform: 'identity' },
    { column: 'b', transform: 'identity' },
  ],
  [{ column: 'name', transform: 'bucket[3]' }],
];

describe('layoutRows', () => {
  for (const [s, items] of SPECS.entries()) {
    it(`groups like the model: ${items.map((i) => `${i.transform}(${i.column})`).join(', ')}`, () => {
      const { spec } = parsePartitionBy(items as never, schema.fields, {
        specId: 0,
        lastPartitionId: NO_PARTITION_FIELD_ID,
      });
      for (let seed = 1; seed <= 4; seed++) {
        const next = rng(seed * 101 + s);
        const rows = randomRows(400 + seed * 150, next);
        const order =
          seed % 2 === 0
            ? parseSortBy([{ column: 'n' }, { column: 'name', direction: 'desc' }], schema.fields)
            : UNSORTED;
        const layout: RowLayout = { spec, order };
        const got = layoutRows(layout, schema.fields, rows.length, (c, i) => rows[i][c]);
        const want = model(layout, rows);
        expect(got.map((g) => tupleKey(g.partition))).toEqual(want.map((g) => tupleKey(g.partition)));
        expect(got.map((g) => [...g.rows])).toEqual(want.map((g) => g.rows));
        // The tuple itself is the first row's (as the model's).
        got.forEach((g, k) => {
          expect(g.partition).toEqual(want[k].partition);
        });
      }
    });
  }
});

describe('the transforms in doubles', () => {
  const D = 86_400_000_000;
  const H = 3_600_000_000;
  const floorDiv = (a: bigint, b: bigint) => {
    const q = a / b;
    return Number(a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q);
  };
  it('floor-divide timestamps as bigints do, at every boundary', () => {
    const next = rng(7);
    const values: bigint[] = [...EDGE_US, 2n ** 52n - 1n, -(2n ** 52n) + 1n, 2n ** 63n - 1n];
    for (const d of [BigInt(D), BigInt(H)]) {
      for (let k = -5n; k <= 5n; k++) for (const e of [-1n, 0n, 1n]) values.push(k * d + e);
      for (const far of [2n ** 52n / d, -(2n ** 52n) / d])
        for (const e of [-1n, 0n, 1n]) values.push(far * d + e);
    }
    for (let i = 0; i < 20_000; i++) values.push(BigInt(Math.floor((next() - 0.5) * 2 ** 54)));
    for (const v of values) {
      expect(floorDivToNumber(v, D)).toBe(floorDiv(v, BigInt(D)));
      expect(floorDivToNumber(v, H)).toBe(floorDiv(v, BigInt(H)));
    }
  });
  it('hash longs as their 8 bytes do', () => {
    const next = rng(9);
    const values: bigint[] = [
      0n,
      1n,
      -1n,
      34n,
      2n ** 31n,
      -(2n ** 31n),
      2n ** 32n,
      2n ** 32n - 1n,
      -(2n ** 32n),
    ];
    values.push(2n ** 53n - 1n, -(2n ** 53n) + 1n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n));
    for (let i = 0; i < 20_000; i++) values.push(BigInt(Math.floor((next() - 0.5) * 2 ** 56)));
    for (const v of values) {
      expect(hashLong(v)).toBe(hashLongBytes(v));
      if (Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v)
        expect(hashLong(Number(v))).toBe(hashLongBytes(v));
    }
    expect(hashLong(34n)).toBe(2017239379); // Appendix B
  });
});
