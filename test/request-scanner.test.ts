/**
 * The request scanner (the fast path from request bytes to columns) against the general path
 * (`JSON.parse` + decodeTransaction) on random requests: valid and broken, every scalar type,
 * numbers and timestamps at the edges, escapes, whitespace, odd property orders. Whatever the
 * scanner accepts must decode to exactly the general path's operations; everything else must
 * fall through to the general path, errors included.
 */
import { describe, expect, it } from 'vitest';
import { buildSchema, type TableSchema } from '../lib/schema/table-schema.ts';
import { fastTimestampMicros, parseTimestamp } from '../lib/schema/temporal.ts';
import { OpBatch } from '../lib/txn/op-batch.ts';
import { scanRequest } from '../lib/txn/request-scanner.ts';
import { type DecodedOp, decodeRequest, decodeTransactionText, rowCodec } from '../lib/txn/transaction.ts';
import { rng } from './support/model.ts';

const SCHEMAS: Record<string, TableSchema> = {
  bench: buildSchema(
    [
      { name: 'id', type: 'long', nullable: false },
      { name: 'name', type: 'string' },
      { name: 'score', type: 'double' },
      { name: 'at', type: 'timestamptz' },
    ],
    ['id'],
  ),
  everyType: buildSchema(
    [
      { name: 'k', type: 'string', nullable: false },
      { name: 'i', type: 'int' },
      { name: 'l', type: 'long' },
      { name: 'f', type: 'float' },
      { name: 'd', type: 'double' },
      { name: 'dec', type: 'decimal(10,2)' },
      { name: 'b', type: 'boolean' },
      { name: 'dt', type: 'date' },
      { name: 'tm', type: 'time' },
      { name: 'ts', type: 'timestamp' },
      { name: 'tz', type: 'timestamptz' },
      { name: 'u', type: 'uuid' },
      { name: 'bin', type: 'binary' },
      { name: 'req', type: 'string', nullable: false },
    ],
    ['k'],
  ),
  /** A nested column: rows that have it go the general way. */
  nested: buildSchema(
    [
      { name: 'id', type: 'long', nullable: false },
      { name: 'tags', type: 'list<string>' },
    ],
    ['id'],
  ),
  compositeKey: buildSchema(
    [
      { name: 'a', type: 'long', nullable: false },
      { name: 'b', type: 'timestamptz', nullable: false },
      { name: 'c', type: 'string', nullable: false },
      { name: 'v', type: 'double' },
    ],
    ['a', 'b', 'c'],
  ),
  noKey: buildSchema(
    [
      { name: 'x', type: 'long' },
      { name: 'y', type: 'string' },
    ],
    [],
  ),
};

// biome-ignore format: a table of cases
const NUMBERS = [
  '0', '-0', '7', '-17', '123456789012345', '-999999999999999', '1234567890123456', '9007199254740991',
  '9007199254740993', '1.5', '-0.25', '1.0', '0.001', '1e2', '1E-3', '-2.5e+3', '0.1234567890123456789',
  '12345678901234.5', '3.14159', '2147483647', '2147483648', '1700000000000000', '2.5e400',
];
// biome-ignore format: a table of cases
const BAD_NUMBERS = ['01', '1.', '-', '.5', '+1', '1e', '0x10', 'NaN'];
// biome-ignore format: a table of cases
const TIMESTAMPS = [
  '2023-11-14T22:13:20.123456Z', '2023-11-14T22:13:20Z', '2023-11-14 22:13:20+05:30', '2023-11-14T22:13:20-08:00',
  '2024-02-29T00:00:00.1Z', '2023-02-29T00:00:00Z', '2024-02-29T00:00:00.123456789Z', '2024-02-29T00:00:00.1234567Z',
  '2024-02-29T00:00:00.1234560Z', '2024-02-29T00:00:00.1234567891Z', '2023-11-14T22:13:20', '2023-11-14T22:13:20.5',
  '2023-11-14', '1969-12-31T23:59:59.999999Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999999Z',
  '2023-11-14T24:00:00Z', '2023-11-14T22:13:20z', '2023-1-14T22:13:20Z', '2023-11-14T22:13:20+0530',
  '+12023-11-14T22:13:20Z', '2023-11-14T22:13:20.Z', '2023-11-14T22:13:20+99:99',
];
// biome-ignore format: a table of cases
const STRINGS = [
  'abc', '', 'customer-00000000042', 'é日本', '🙂 emoji', 'a"b', 'back\\slash', 'tab\there', 'line\nbreak',
  '\u0000nul', '\ud800lone', 'NaN', 'Infinity', '-Infinity', '12', ' 12 ', 'true', 'AQID', 'AQI=',
  '22:13:20.5', '2023-11-14', '00000000-0000-4000-8000-00000000000A', 'x'.repeat(40),
];

/** A JSON text for a string: plainly quoted, or with escapes for some characters. */
function quote(r: () => number, s: string): string {
  const j = JSON.stringify(s);
  if (r() < 0.7) return j;
  // Escape a plain letter too (\u0061), or leave raw characters JSON forbids (broken on purpose).
  if (r() < 0.5) return j.replace(/a/g, '\\u0061');
  return `"${s}"`;
}

function token(r: () => number): string {
  const x = r();
  if (x < 0.3)
    return r() < 0.9
      ? NUMBERS[Math.floor(r() * NUMBERS.length)]
      : BAD_NUMBERS[Math.floor(r() * BAD_NUMBERS.length)];
  if (x < 0.55) return quote(r, TIMESTAMPS[Math.floor(r() * TIMESTAMPS.length)]);
  if (x < 0.8) return quote(r, STRINGS[Math.floor(r() * STRINGS.length)]);
  if (x < 0.9) return ['true', 'false', 'null', 'nul', 'True'][Math.floor(r() * 5)];
  return ['[1,2]', '["a"]', '{"a":1}', '[]'][Math.floor(r() * 4)];
}

/** A good value for a column type most of the time, so many requests are valid. */
function goodToken(r: () => number, kind: string): string {
  switch (kind) {
    case 'long':
      return String(Math.floor((r() - 0.5) * 2 ** (r() < 0.9 ? 40 : 60)));
    case 'int':
      return String(Math.floor((r() - 0.5) * 1e6));
    case 'float':
    case 'double':
      return String(Math.round((r() - 0.5) * 1e6) / (r() < 0.5 ? 100 : 1));
    case 'decimal':
      return (Math.round(r() * 1e6) / 100).toFixed(2);
    case 'boolean':
      return r() < 0.5 ? 'true' : 'false';
    case 'date':
      return '"2023-11-14"';
    case 'time':
      return '"22:13:20.123"';
    case 'timestamp':
      return '"2023-11-14T22:13:20.123456"';
    case 'timestamptz':
      return JSON.stringify(TIMESTAMPS[Math.floor(r() * 6)]);
    case 'uuid':
      return '"3f2504e0-4f89-41d3-9a0c-0305e82c3301"';
    case 'binary':
      return '"AQID"';
    case 'list':
      return '["a","b"]';
    default:
      return quote(r, STRINGS[Math.floor(r() * 9)]);
  }
}

function space(r: () => number): string {
  return r() < 0.9 ? '' : [' ', '\n', '\t ', '\r\n  '][Math.floor(r() * 4)];
}

function randomBody(r: () => number, schema: TableSchema): string {
  const sp = () => space(r);
  const hasKey = schema.primaryKey.length > 0;
  const clean = r() < 0.6;
  const n = 1 + Math.floor(r() * 6);
  const ops: string[] = [];
  for (let i = 0; i < n; i++) {
    const kind =
      !hasKey && r() < 0.9
        ? 'insert'
        : ['insert', 'upsert', 'delete', 'merge'][Math.floor(r() * (clean ? 3 : 4))];
    const props: string[] = [];
    for (const f of schema.fields) {
      if (kind === 'delete' && !schema.primaryKey.includes(f.name) && r() < 0.6) continue;
      if (!clean && r() < 0.1) continue; // missing column
      const v = clean || r() < 0.6 ? goodToken(r, f.type.kind) : token(r);
      props.push(`${sp()}"${f.name}"${sp()}:${sp()}${v}${sp()}`);
      if (!clean && r() < 0.03) props.push(`"${f.name}":${goodToken(r, f.type.kind)}`); // repeated
    }
    if (!clean && r() < 0.05) props.push('"nope":1');
    if (r() < 0.3) props.sort(() => r() - 0.5);
    const row = `{${props.join(',')}${sp()}}`;
    const op = `${sp()}"op"${sp()}:${sp()}"${kind}"`;
    const rowProp = `${sp()}"row"${sp()}:${sp()}${row}`;
    const parts = !clean && r() < 0.1 ? [rowProp, op] : [op, rowProp];
    if (!clean && r() < 0.03) parts.push('"extra":true');
    ops.push(`${sp()}{${parts.join(',')}${sp()}}`);
  }
  const opsText = !clean && r() < 0.02 ? '' : ops.join(',');
  const tail = !clean && r() < 0.02 ? ',"more":1' : '';
  return `${sp()}{${sp()}"ops"${sp()}:${sp()}[${opsText}]${tail}${sp()}}${sp()}`;
}

type Outcome = { ops: DecodedOp[] } | { error: string };

function general(schema: TableSchema, text: string): Outcome {
  try {
    return { ops: decodeTransactionText(schema, text) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function viaDecodeRequest(schema: TableSchema, bytes: Uint8Array, text: string | undefined): Outcome {
  try {
    const got = decodeRequest(schema, bytes, undefined, text);
    return { ops: got instanceof OpBatch ? got.ops() : got };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe('request scanner', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`decodes exactly what the general path decodes (${name})`, () => {
      const r = rng(name.length * 7919);
      const codec = rowCodec(schema);
      let fast = 0;
      let valid = 0;
      const RUNS = 3000;
      for (let run = 0; run < RUNS; run++) {
        const text = randomBody(r, schema);
        let bytes: Uint8Array = Buffer.from(text);
        // Now and then bytes that are not UTF-8: refused by both paths, never read with replacements.
        const invalid = r() < 0.02;
        if (invalid)
          bytes = Buffer.concat([
            bytes.subarray(0, bytes.length - 3),
            Buffer.from([0xff]),
            bytes.subarray(bytes.length - 3),
          ]);
        const textOfBytes = Buffer.from(bytes).toString('utf8');
        const expected: Outcome = invalid
          ? { error: `request body is not valid UTF-8 (at byte ${bytes.length - 4})` }
          : general(schema, textOfBytes);
        if ('ops' in expected) valid++;
        const batch = scanRequest(codec, bytes, 100_000);
        if (batch) {
          fast++;
          expect(expected, text).toHaveProperty('ops');
          expect(batch.ops(), text).toEqual((expected as { ops: DecodedOp[] }).ops);
        }
        expect(
          viaDecodeRequest(schema, bytes, bytes.length === text.length ? text : undefined),
          text,
        ).toEqual(expected);
      }
      // The random requests exercise both paths well.
      expect(valid).toBeGreaterThan(RUNS * 0.2);
      if (name !== 'nested') expect(fast).toBeGreaterThan(valid * 0.6);
    });
  }

  it('takes the bench shape without falling back', () => {
    const schema = SCHEMAS.bench;
    const text = `{"ops":[${Array.from(
      { length: 1000 },
      (_, i) =>
        `{"op":"insert","row":{"id":${i},"name":"customer-${i}","score":${i / 100},"at":"2023-11-14T22:13:20.${String(i).padStart(6, '0')}Z"}}`,
    ).join(',')}]}`;
    const batch = scanRequest(rowCodec(schema), Buffer.from(text), 100_000);
    expect(batch).toBeInstanceOf(OpBatch);
    expect(batch!.ops()).toEqual(decodeTransactionText(schema, text));
    expect(batch!.keys![999]).toBe('999');
  });

  it('leaves a request with more operations than allowed to the general path', () => {
    const schema = SCHEMAS.noKey;
    const text = '{"ops":[{"op":"insert","row":{"x":1}},{"op":"insert","row":{"x":2}}]}';
    expect(scanRequest(rowCodec(schema), Buffer.from(text), 1)).toBeUndefined();
    expect(() => decodeRequest(schema, Buffer.from(text), 1)).toThrow(/too many operations/);
  });
});

describe('fastTimestampMicros', () => {
  it('agrees with parseTimestamp wherever it answers', () => {
    const r = rng(42);
    let answered = 0;
    for (let i = 0; i < 20_000; i++) {
      let s = TIMESTAMPS[Math.floor(r() * TIMESTAMPS.length)];
      // Mutate a character now and then: digits, separators, letters, a non-ASCII one.
      if (r() < 0.6) {
        const at = Math.floor(r() * s.length);
        const ch = '0123456789-:T Z.+zé'[Math.floor(r() * 19)];
        s = s.slice(0, at) + ch + s.slice(at + 1);
      }
      const bytes = Buffer.from(`x${s}y`);
      for (const withZone of [true, false]) {
        const micros = fastTimestampMicros(bytes, 1, bytes.length - 1, withZone);
        if (Number.isNaN(micros)) continue;
        answered++;
        expect(parseTimestamp(s, withZone), s).toBe(BigInt(micros));
      }
    }
    expect(answered).toBeGreaterThan(5000);
  });
});
