import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { parseType, typeName } from '../lib/schema/iceberg-type.ts';
import { buildSchema, SchemaError } from '../lib/schema/table-schema.ts';
import { formatTimestamp, parseTimestamp } from '../lib/schema/temporal.ts';
import {
  decoderFor,
  encoderFor,
  formatDecimal,
  InexactNumberError,
  parseDecimal,
  ValueError,
} from '../lib/schema/values.ts';
import {
  decodeTransaction,
  decodeTransactionText,
  type InvalidTransactionError,
} from '../lib/txn/transaction.ts';

const dec = (t: string) => decoderFor(parseType(t));
const enc = (t: string) => encoderFor(parseType(t));

describe('type names', () => {
  it('parses and prints every Iceberg type', () => {
    for (const t of [
      'boolean',
      'int',
      'long',
      'float',
      'double',
      'decimal(38,10)',
      'date',
      'time',
      'timestamp',
      'timestamptz',
      'string',
      'uuid',
      'binary',
      'fixed[16]',
      'list<long>',
      'map<string,list<decimal(5,2)>>',
      'struct<a:int,b:struct<c:string>>',
    ]) {
      expect(typeName(parseType(t))).toBe(t);
    }
  });
  it('refuses bad types with a clear message', () => {
    expect(() => parseType('decimal(40,2)')).toThrow(/precision must be 1..38/);
    expect(() => parseType('varchar')).toThrow(/unknown type "varchar"/);
    expect(() => parseType('map<list<int>,int>')).toThrow(/map keys must be a primitive/);
    expect(() => parseType('struct<a:int,a:int>')).toThrow(/duplicate struct field/);
  });
  it('assigns field ids top level first, then nested breadth first', () => {
    const s = buildSchema(
      [
        { name: 'id', type: 'long' },
        { name: 'tags', type: 'list<string>' },
        { name: 'attrs', type: 'map<string,int>' },
      ],
      ['id'],
    );
    expect(s.fields.map((f) => f.id)).toEqual([1, 2, 3]);
    expect(s.fields[1].type).toMatchObject({ kind: 'list', elementId: 4 });
    expect(s.fields[2].type).toMatchObject({ kind: 'map', keyId: 5, valueId: 6 });
    expect(s.fields[0].required).toBe(true);
  });
  it('validates primary keys', () => {
    expect(() => buildSchema([{ name: 'x', type: 'double' }], ['x'])).toThrow(SchemaError);
    expect(() => buildSchema([{ name: 'x', type: 'long' }], ['y'])).toThrow(/"y" is not a column/);
    expect(() => buildSchema([{ name: 'x', type: 'long', nullable: true }], ['x'])).toThrow(
      /cannot be nullable/,
    );
    expect(() => buildSchema([{ name: '1x', type: 'long' }])).toThrow(/invalid column name/);
  });
});

describe('values', () => {
  it('keeps longs exact and refuses lossy numbers', () => {
    expect(dec('long')('9223372036854775807', 'c')).toBe(9223372036854775807n);
    expect(dec('long')(12, 'c')).toBe(12n);
    expect(() => dec('long')(2 ** 60, 'c')).toThrow(InexactNumberError);
    expect(() => dec('long')('9223372036854775808', 'c')).toThrow(/out of range/);
    expect(() => dec('long')(1.5, 'c')).toThrow(ValueError);
    expect(() => dec('int')(2 ** 31, 'c')).toThrow(/out of range for int/);
  });
  it('parses decimals exactly and refuses silent rounding', () => {
    expect(parseDecimal('123.45', 10, 2)).toBe(12345n);
    expect(parseDecimal('-0.5', 10, 2)).toBe(-50n);
    expect(parseDecimal('1e3', 10, 2)).toBe(100000n);
    expect(parseDecimal('1.2300', 10, 2)).toBe(123n);
    expect(parseDecimal('1.234', 10, 2)).toMatch(/more than 2 digits/);
    expect(parseDecimal('123456789.1', 10, 2)).toMatch(/exceeds precision 10/);
    expect(formatDecimal(-5n, 3)).toBe('-0.005');
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 38n) + 1n, max: 10n ** 38n - 1n }),
        fc.integer({ min: 0, max: 38 }),
        (v, scale) => {
          expect(parseDecimal(formatDecimal(v, scale), 38, scale)).toBe(v);
        },
      ),
    );
  });
  it('parses timestamps to exact microseconds', () => {
    expect(parseTimestamp('1970-01-01T00:00:00Z', true)).toBe(0n);
    expect(parseTimestamp('1970-01-01T01:00:00.000001+01:00', true)).toBe(1n);
    expect(parseTimestamp('1969-12-31T23:59:59.999999Z', true)).toBe(-1n);
    expect(parseTimestamp('2024-01-01T00:00:00', true)).toMatch(/no UTC offset/);
    expect(parseTimestamp('2024-01-01T00:00:00Z', false)).toMatch(/has a UTC offset/);
    expect(parseTimestamp('2023-02-29T00:00:00Z', true)).toMatch(/not a valid calendar date/);
    expect(parseTimestamp('2024-01-01T00:00:00.0000001Z', true)).toMatch(/more precision than microseconds/);
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 50n), max: 2n ** 50n }), (us) => {
        expect(parseTimestamp(formatTimestamp(us, true), true)).toBe(us);
        expect(parseTimestamp(formatTimestamp(us, false), false)).toBe(us);
      }),
    );
  });
  it('encodes JSON text exactly', () => {
    expect(enc('long')(9223372036854775807n)).toBe('9223372036854775807');
    expect(enc('double')(Number.NaN)).toBe('"NaN"');
    expect(enc('decimal(5,2)')(-1n)).toBe('"-0.01"');
    expect(enc('binary')(new Uint8Array([0, 255]))).toBe('"AP8="');
    expect(enc('map<int,string>')([[1, 'a']])).toBe('[{"key":1,"value":"a"}]');
  });
  it('names the path of nested errors', () => {
    expect(() => dec('struct<a:list<int>>')({ a: [1, 'x'] }, 'row.s')).toThrow(
      'row.s.a[1]: expected int, got "x"',
    );
    expect(() => dec('struct<a:int>')({ b: 1 }, 'row.s')).toThrow('row.s.b: unknown field');
  });
});

describe('exact JSON', () => {
  it('keeps digits JSON.parse would lose', () => {
    const v = parseExactJson('{"a": 9007199254740993, "b": 0.12345678901234567890, "c": 1.5}') as Record<
      string,
      unknown
    >;
    expect(v.a).toBe(9007199254740993n);
    expect(String(v.b)).toBe('0.12345678901234567890');
    expect(v.c).toBe(1.5);
    expect(dec('decimal(25,20)')(v.b, 'b')).toBe(12345678901234567890n);
  });
  it('refuses malformed and deeply nested JSON', () => {
    expect(() => parseExactJson('{"a": ')).toThrow(/malformed JSON/);
    const schema = buildSchema(
      [
        { name: 'id', type: 'long' },
        { name: 'tags', type: 'list<string>' },
      ],
      ['id'],
    );
    expect(() => decodeTransactionText(schema, '['.repeat(100_000))).toThrow(/malformed JSON/);
    const deep = `{"ops":[{"op":"insert","row":{"id":1,"tags":${'['.repeat(50_000)}${']'.repeat(50_000)}}}]}`;
    expect(() => decodeTransactionText(schema, deep)).toThrow(
      /ops\[0\]\.row\.tags\[0\]: expected string, got an array/,
    );
  });
  it('parses exactly only when a number needs it', () => {
    const schema = buildSchema(
      [
        { name: 'id', type: 'long' },
        { name: 'd', type: 'decimal(38,20)' },
      ],
      ['id'],
    );
    const fast = decodeTransactionText(schema, '{"ops":[{"op":"insert","row":{"id":7,"d":1.5}}]}');
    expect(fast[0].values).toEqual([7n, 150000000000000000000n]);
    const exact = decodeTransactionText(
      schema,
      '{"ops":[{"op":"insert","row":{"id":9223372036854775807,"d":0.12345678901234567890}}]}',
    );
    expect(exact[0].values).toEqual([9223372036854775807n, 12345678901234567890n]);
  });
});

describe('transactions', () => {
  const schema = buildSchema(
    [
      { name: 'id', type: 'long' },
      { name: 'name', type: 'string', nullable: false },
      { name: 'price', type: 'decimal(10,2)' },
    ],
    ['id'],
  );
  it('decodes ops with keys', () => {
    const ops = decodeTransaction(schema, {
      ops: [
        { op: 'insert', row: { id: 1, name: 'a', price: '1.50' } },
        { op: 'delete', row: { id: '2' } },
      ],
    });
    expect(ops.map((o) => [o.op, o.key])).toEqual([
      ['insert', '1'],
      ['delete', '2'],
    ]);
    expect(ops[0].values).toEqual([1n, 'a', 150n]);
  });
  it('reports the first bad operation by index and column', () => {
    const bad = (body: unknown) => {
      try {
        decodeTransaction(schema, body);
      } catch (e) {
        return e as InvalidTransactionError;
      }
      throw new Error('accepted');
    };
    expect(
      bad({
        ops: [
          { op: 'insert', row: { id: 1, name: 'a' } },
          { op: 'insert', row: { id: 2, name: 'b', price: 'x' } },
        ],
      }),
    ).toMatchObject({ index: 1, message: expect.stringContaining('ops[1].row.price') });
    expect(bad({ ops: [{ op: 'insert', row: { id: 1 } }] }).message).toMatch(
      /ops\[0\]\.row\.name: is required/,
    );
    expect(bad({ ops: [{ op: 'insert', row: { id: 1, name: 'a', extra: 1 } }] }).message).toMatch(
      /extra: unknown column/,
    );
    expect(bad({ ops: [{ op: 'merge', row: {} }] }).message).toMatch(
      /expected "insert", "upsert" or "delete"/,
    );
    expect(bad({ ops: [] }).message).toMatch(/empty/);
    expect(bad({ ops: [{ op: 'delete', row: { name: 'x' } }] }).message).toMatch(
      /primary key and is required/,
    );
    expect(bad([]).message).toMatch(/body must be a JSON object/);
  });
  it('refuses deletes on tables without a primary key', () => {
    const noKey = buildSchema([{ name: 'x', type: 'int' }]);
    expect(() => decodeTransaction(noKey, { ops: [{ op: 'delete', row: { x: 1 } }] })).toThrow(
      /no primary key/,
    );
  });
});
