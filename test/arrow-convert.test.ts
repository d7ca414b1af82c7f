import { afterAll, describe, expect, it } from 'vitest';
import {
  batchFromValues,
  readColumn,
  readData,
  tableFromIpc,
  tableToIpc,
  takeData,
} from '../lib/columns/arrow-convert.ts';
import { columnBufferFor, columnFromImage } from '../lib/columns/column-buffer.ts';
import { dataStats } from '../lib/columns/column-stats.ts';
import { encodeColumnsIn } from '../lib/engine/worker-jobs.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { isPrimitive } from '../lib/schema/iceberg-type.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { fieldDecoder, fieldEncoder } from '../lib/schema/values.ts';

const pool = new ParquetWorkerPool(1);
afterAll(() => pool.close());

const columns = [
  { name: 'b', type: 'boolean' },
  { name: 'i', type: 'int' },
  { name: 'l', type: 'long' },
  { name: 'f', type: 'float' },
  { name: 'd', type: 'double' },
  { name: 'dec', type: 'decimal(38,6)' },
  { name: 'dt', type: 'date' },
  { name: 't', type: 'time' },
  { name: 'ts', type: 'timestamp' },
  { name: 'tz', type: 'timestamptz' },
  { name: 's', type: 'string' },
  { name: 'u', type: 'uuid' },
  { name: 'bin', type: 'binary' },
  { name: 'fx', type: 'fixed[3]' },
  { name: 'li', type: 'list<long>' },
  { name: 'm', type: 'map<string,decimal(5,2)>' },
  { name: 'mi', type: 'map<int,string>' },
  { name: 'st', type: 'struct<a:int,b:list<string>,c:struct<x:timestamptz>>' },
];

const rows: Record<string, unknown>[] = [
  {
    b: true,
    i: -2147483648,
    l: '9223372036854775807',
    f: 1.5,
    d: 'NaN',
    dec: '-12345678901234567890123456789012.123456',
    dt: '1969-12-31',
    t: '23:59:59.999999',
    ts: '2024-02-29T12:34:56.123456',
    tz: '2024-02-29T12:34:56.000001+02:00',
    s: 'héllo 🌍',
    u: 'F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6',
    bin: 'AAEC/w==',
    fx: 'YWJj',
    li: [1, '-9223372036854775808', null],
    m: { a: '1.50', b: null },
    mi: [[1, 'one'], { key: 2, value: 'two' }],
    st: { a: 7, b: ['x', null], c: { x: '1970-01-01T00:00:00Z' } },
  },
  {
    b: null,
    i: null,
    l: null,
    f: null,
    d: null,
    dec: null,
    dt: null,
    t: null,
    ts: null,
    tz: null,
    s: null,
    u: null,
    bin: null,
    fx: null,
    li: null,
    m: null,
    mi: null,
    st: null,
  },
  {
    b: false,
    i: 0,
    l: 0,
    f: -0.25,
    d: 'Infinity',
    dec: 0,
    dt: 0,
    t: '00:00',
    ts: '0001-01-01T00:00:00',
    tz: '9999-12-31T23:59:59.999999Z',
    s: '',
    u: '00000000-0000-0000-0000-000000000000',
    bin: '',
    fx: 'AAAA',
    li: [],
    m: {},
    mi: [],
    st: { a: null, b: null, c: null },
  },
];

describe('arrow-convert', () => {
  it('round-trips every Iceberg type through Arrow and Parquet exactly', async () => {
    const schema = buildSchema(columns);
    const decoders = schema.fields.map(fieldDecoder);
    const encoders = schema.fields.map(fieldEncoder);
    const cols = schema.fields.map((f, c) =>
      rows.map((r) => decoders[c](r[f.name] ?? null, `row.${f.name}`)),
    );
    const batch = batchFromValues(schema.fields, cols);
    const parquet = await pool.encode(tableToIpc(batch), { compression: 'zstd' });
    const table = tableFromIpc(await pool.decode(parquet));
    expect(table.numRows).toBe(rows.length);
    schema.fields.forEach((f, c) => {
      const back = readColumn(f.type, table, c);
      expect(back.map(encoders[c]), f.name).toEqual(cols[c].map(encoders[c]));
    });
    const first = schema.fields.map((f, c) => `${f.name}=${encoders[c](readColumn(f.type, table, c)[0])}`);
    expect(first).toContain('l=9223372036854775807');
    expect(first).toContain('dec="-12345678901234567890123456789012.123456"');
    expect(first).toContain('tz="2024-02-29T10:34:56.000001Z"');
    expect(first).toContain('u="f81d4fae-7dec-11d0-a765-00a0c91e6bf6"');
    expect(first).toContain('m={"a":"1.50","b":null}');
    expect(first).toContain('st={"a":7,"b":["x",null],"c":{"x":"1970-01-01T00:00:00.000000Z"}}');
  });

  it('reads, takes and measures sliced Arrow data (compaction cuts batches between outputs)', async () => {
    const schema = buildSchema(columns);
    const decoders = schema.fields.map(fieldDecoder);
    const encoders = schema.fields.map(fieldEncoder);
    // 12 rows: the three above, four times.
    const all = [...rows, ...rows, ...rows, ...rows];
    const cols = schema.fields.map((f, c) => all.map((r) => decoders[c](r[f.name] ?? null, `row.${f.name}`)));
    for (const decoded of [false, true]) {
      let batch = batchFromValues(schema.fields, cols);
      if (decoded)
        batch = tableFromIpc(await pool.decode(await pool.encode(tableToIpc(batch), {}))).batches[0];
      for (const [from, to] of [
        [1, 12],
        [4, 9],
        [11, 12],
      ]) {
        const part = batch.slice(from, to);
        schema.fields.forEach((f, c) => {
          const want = cols[c].slice(from, to).map(encoders[c]);
          const d = part.data.children[c];
          expect(readData(f.type, d).map(encoders[c]), `${f.name} [${from}, ${to})`).toEqual(want);
          const picked = [to - from - 1, 0];
          expect(readData(f.type, takeData(f.type, d, picked)).map(encoders[c]), `${f.name} taken`).toEqual(
            picked.map((i) => want[i]),
          );
          if (isPrimitive(f.type)) {
            const whole = columnBufferFor(f.type);
            for (const v of cols[c].slice(from, to)) whole.push(v);
            const stats = whole.stats(Array.from({ length: to - from }, (_, i) => i));
            expect(dataStats(f, d), `${f.name} stats [${from}, ${to})`).toEqual(stats);
          }
        });
      }
    }
  });

  it.each([
    ['copied', false],
    ['lent in shared memory', true],
  ])(
    'rebuilds any range of a MemSlice column from its image (%s), in a worker, into the same rows and stats',
    async (_, shared) => {
      const schema = buildSchema(columns);
      const decoders = schema.fields.map(fieldDecoder);
      const encoders = schema.fields.map(fieldEncoder);
      const all = [...rows, ...rows, ...rows, ...rows];
      const buffers = schema.fields.map((f) => columnBufferFor(f.type, 4, shared));
      for (const r of all) {
        schema.fields.forEach((f, c) => {
          buffers[c].push(decoders[c](r[f.name] ?? null, f.name));
        });
      }
      for (const [from, to] of [
        [0, 12],
        [4, 9],
        [11, 12],
      ]) {
        const n = to - from;
        const want = (c: number) =>
          Array.from({ length: n }, (_, i) => encoders[c](buffers[c].get(from + i)));
        // In this thread: the rebuilt column reads and measures like the original's rows.
        schema.fields.forEach((f, c) => {
          const copy = columnFromImage(f.type, buffers[c].image(from, to));
          expect(
            Array.from({ length: n }, (_, i) => encoders[c](copy.get(i))),
            `${f.name} [${from}, ${to})`,
          ).toEqual(want(c));
          const range = Array.from({ length: n }, (_, i) => from + i);
          expect(copy.stats(range.map((r) => r - from)), `${f.name} stats`).toEqual(buffers[c].stats(range));
        });
        // Through a worker: Parquet with every row of the range, backwards, and data-file stats.
        const order = Uint32Array.from({ length: n }, (_, i) => n - 1 - i);
        const { bytes, stats } = await encodeColumnsIn(pool, {
          fields: schema.fields,
          images: buffers.map((b) => b.image(from, to)),
          rows: order,
          compression: 'zstd',
          withStats: true,
        });
        const table = tableFromIpc(await pool.decode(bytes));
        schema.fields.forEach((f, c) => {
          expect(readColumn(f.type, table, c).map(encoders[c]), `${f.name} via worker`).toEqual(
            want(c).reverse(),
          );
          const range = Array.from({ length: n }, (_, i) => from + i);
          expect(stats!.get(f.id), `${f.name} worker stats`).toEqual(buffers[c].stats(range));
        });
      }
    },
  );

  it('takes any rows of a MemSlice column into Arrow: a run copied whole, a gather, one with a gap', () => {
    const schema = buildSchema(columns);
    const decoders = schema.fields.map(fieldDecoder);
    const encoders = schema.fields.map(fieldEncoder);
    const all = [...rows, ...rows, ...rows, ...rows];
    const buffers = schema.fields.map((f) => columnBufferFor(f.type, 4, true));
    for (const r of all) {
      schema.fields.forEach((f, c) => {
        buffers[c].push(decoders[c](r[f.name] ?? null, f.name));
      });
    }
    const picks = [
      [],
      [5],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
      [3, 4, 5, 6],
      [3, 4, 6, 7],
      [0, 2, 1, 3],
      [11, 10, 9, 0],
    ];
    for (const pick of picks) {
      const taken = Uint32Array.from(pick);
      schema.fields.forEach((f, c) => {
        const got = readData(f.type, buffers[c].toData(taken)).map(encoders[c]);
        expect(got, `${f.name} rows ${pick}`).toEqual(pick.map((r) => encoders[c](buffers[c].get(r))));
      });
    }
  });

  it('pushes a range of a column as value-by-value pushes would, nulls and growth included', () => {
    const schema = buildSchema(columns);
    const decoders = schema.fields.map(fieldDecoder);
    const encoders = schema.fields.map(fieldEncoder);
    const all = [...rows, ...rows, ...rows, ...rows, ...rows];
    const src = schema.fields.map((f) => columnBufferFor(f.type, 4));
    for (const r of all) {
      schema.fields.forEach((f, c) => {
        src[c].push(decoders[c](r[f.name] ?? null, f.name));
      });
    }
    // Into empty columns and into columns that already hold rows (with and without nulls).
    for (const [from, to, before] of [
      [0, 15, []],
      [2, 9, [0]],
      [1, 2, [1, 1]],
      [3, 3, [2]],
      [0, 15, [0, 2, 0]],
    ] as [number, number, number[]][]) {
      schema.fields.forEach((f, c) => {
        const ranged = columnBufferFor(f.type, 2, true);
        const one = columnBufferFor(f.type, 2, true);
        for (const r of before) {
          ranged.pushFrom(src[c], r);
          one.pushFrom(src[c], r);
        }
        ranged.pushRange(src[c], from, to);
        for (let i = from; i < to; i++) one.pushFrom(src[c], i);
        const values = (col: typeof one) =>
          Array.from({ length: col.length }, (_, i) => encoders[c](col.get(i)));
        expect(values(ranged), `${f.name} [${from}, ${to}) after ${before}`).toEqual(values(one));
        expect(ranged.length).toBe(before.length + to - from);
        expect(ranged.byteSize).toBe(one.byteSize);
      });
    }
  });

  it('writes Iceberg field ids into the Parquet schema', async () => {
    const schema = buildSchema(
      [
        { name: 'id', type: 'long' },
        { name: 'tags', type: 'list<string>' },
      ],
      ['id'],
    );
    const batch = batchFromValues(schema.fields, [[1n], [['a']]]);
    const table = tableFromIpc(await pool.decode(await pool.encode(tableToIpc(batch))));
    expect(table.schema.fields.map((f) => f.metadata.get('PARQUET:field_id'))).toEqual(['1', '2']);
    expect(table.schema.fields[0].nullable).toBe(false);
  });
});
