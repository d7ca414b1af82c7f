/**
 * Postgres types → Iceberg: the text parsers on their own, then every mapped type round-tripping
 * through a real PostgreSQL (the initial copy and the replication stream must give the same
 * values), and evidence of how unchanged TOAST values travel in pgoutput.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExactNumber } from '../lib/schema/values.ts';
import { ROW_KEY_COLUMN } from '../lib/sources/postgres/pg-schema.ts';
import {
  flattenArray,
  formatPgLsn,
  parseArrayLiteral,
  parseBytea,
  parseDateText,
  parseNumericUnscaled,
  parsePgLsn,
  parseRecordLiteral,
  parseTimestampText,
  parseTimeText,
} from '../lib/sources/postgres/pg-text.ts';
import {
  PgOutputDecoder,
  type PgOutputMessage,
  parseReplicationFrame,
} from '../lib/sources/postgres/pgoutput.ts';
import { ReplicationClient } from '../lib/sources/postgres/replication-client.ts';
import { numericTypmod } from '../lib/sources/postgres/type-mapping.ts';
import {
  attach,
  eventually,
  type MoonlinkHandle,
  type PgCluster,
  startMoonlink,
  startPostgres,
} from './support/postgres.ts';

describe('Postgres text parsers', () => {
  it('LSNs', () => {
    expect(parsePgLsn('0/16B3748')).toBe(0x16b3748n);
    expect(parsePgLsn('1A/FF')).toBe((0x1an << 32n) | 0xffn);
    expect(formatPgLsn((0x1an << 32n) | 0xffn)).toBe('1A/FF');
  });

  it('numeric digits stay exact', () => {
    expect(parseNumericUnscaled('123.45', 2)).toBe(12345n);
    expect(parseNumericUnscaled('-0.5', 3)).toBe(-500n);
    expect(parseNumericUnscaled('99999999999999999999999999999999999999', 0)).toBe(
      99999999999999999999999999999999999999n,
    );
    expect(parseNumericUnscaled('NaN', 2)).toBeUndefined();
    expect(() => parseNumericUnscaled('1.234', 2)).toThrow(/more than 2 digits/);
    expect(numericTypmod(-1)).toBeUndefined();
    expect(numericTypmod(((10 << 16) | 2) + 4)).toEqual([10, 2]);
  });

  it('dates, times and timestamps to days and microseconds', () => {
    expect(parseDateText('1970-01-02')).toBe(1);
    expect(parseDateText('0001-01-01 BC')).toBe(parseDateText('0000-01-01'));
    expect(parseDateText('infinity')).toBe(2147483647);
    expect(parseTimeText('24:00:00')).toBe(86_400_000_000n);
    expect(parseTimeText('01:02:03.5')).toBe(3_723_500_000n);
    expect(parseTimestampText('1970-01-01 00:00:00.000001')).toBe(1n);
    expect(parseTimestampText('1970-01-01 02:00:00+02')).toBe(0n);
    expect(parseTimestampText('1970-01-01 00:00:00-00:30')).toBe(1_800_000_000n);
    expect(parseTimestampText('1969-12-31 23:59:59.999999+00')).toBe(-1n);
    expect(parseTimestampText('-infinity')).toBe(-(1n << 63n));
  });

  it('bytea in hex and escape form', () => {
    expect([...parseBytea('\\x00ff10')]).toEqual([0, 255, 16]);
    expect([...parseBytea('a\\000\\\\')]).toEqual([97, 0, 92]);
  });

  it('array literals with quoting, NULLs, dimensions and nesting', () => {
    expect(parseArrayLiteral('{1,2,NULL}')).toEqual(['1', '2', null]);
    expect(parseArrayLiteral('{"a b","c\\"d","NULL",""}')).toEqual(['a b', 'c"d', 'NULL', '']);
    expect(parseArrayLiteral('[0:1]={x,y}')).toEqual(['x', 'y']);
    expect(parseArrayLiteral('{}')).toEqual([]);
    expect(flattenArray(parseArrayLiteral('{{1,2},{3,NULL}}'))).toEqual(['1', '2', '3', null]);
    expect(parseArrayLiteral('{(1\\,2);(3\\,4)}', ';')).toEqual(['(1,2)', '(3,4)']);
  });

  it('record literals with quoting and NULL fields', () => {
    expect(parseRecordLiteral('(1,"a b",,"x""y")')).toEqual(['1', 'a b', null, 'x"y']);
    expect(parseRecordLiteral('(,)')).toEqual([null, null]);
    expect(parseRecordLiteral('("",)')).toEqual(['', null]);
    expect(parseRecordLiteral('("(1,2)","{a,b}")')).toEqual(['(1,2)', '{a,b}']);
  });
});

let pgc: PgCluster;
let ml: MoonlinkHandle;
const dirs: string[] = [];

beforeAll(async () => {
  pgc = await startPostgres();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlpgtypes-'));
  dirs.push(dir);
  ml = await startMoonlink(dir);
});

afterAll(async () => {
  await ml?.close({ flush: false });
  await pgc?.stop();
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

/** Column name, Postgres type, and per test row: SQL literal → expected scan-endpoint JSON value. */
const COLUMNS: { name: string; pgType: string; iceberg: string; values: [string, unknown][] }[] = [
  {
    name: 'c_bool',
    pgType: 'boolean',
    iceberg: 'boolean',
    values: [
      ['true', true],
      ['false', false],
    ],
  },
  {
    name: 'c_int2',
    pgType: 'smallint',
    iceberg: 'int',
    values: [
      ['-32768', -32768],
      ['7', 7],
    ],
  },
  {
    name: 'c_int4',
    pgType: 'integer',
    iceberg: 'int',
    values: [
      ['2147483647', 2147483647],
      ['-1', -1],
    ],
  },
  {
    name: 'c_int8',
    pgType: 'bigint',
    iceberg: 'long',
    values: [
      ['9223372036854775807', 9223372036854775807n],
      ['9007199254740993', 9007199254740993n],
    ],
  },
  {
    name: 'c_num',
    pgType: 'numeric(20,5)',
    iceberg: 'decimal(20,5)',
    values: [
      ['123456789012345.12345', '123456789012345.12345'],
      ['-0.5', '-0.50000'],
    ],
  },
  {
    name: 'c_num_nan',
    pgType: 'numeric(10,2)',
    iceberg: 'decimal(10,2)',
    values: [
      ["'NaN'", null],
      ['1', '1.00'],
    ],
  },
  {
    name: 'c_num_free',
    pgType: 'numeric',
    iceberg: 'string',
    values: [
      [
        '12345678901234567890123456789012345678901234567890.0123456789',
        '12345678901234567890123456789012345678901234567890.0123456789',
      ],
      ["'NaN'", 'NaN'],
    ],
  },
  {
    name: 'c_num_wide',
    pgType: 'numeric(50,10)',
    iceberg: 'string',
    values: [
      [
        '1234567890123456789012345678901234567890.0123456789',
        '1234567890123456789012345678901234567890.0123456789',
      ],
      ['1', '1.0000000000'],
    ],
  },
  {
    name: 'c_num_neg_scale',
    pgType: 'numeric(3,-2)',
    iceberg: 'decimal(5,0)',
    values: [
      ['12345', '12300'],
      ['-99900', '-99900'],
    ],
  },
  {
    name: 'c_real',
    pgType: 'real',
    iceberg: 'float',
    values: [
      ['1.1', Math.fround(1.1)],
      ["'NaN'", 'NaN'],
    ],
  },
  {
    name: 'c_double',
    pgType: 'double precision',
    iceberg: 'double',
    values: [
      ['0.1', 0.1],
      ["'-Infinity'", '-Infinity'],
    ],
  },
  {
    name: 'c_text',
    pgType: 'text',
    iceberg: 'string',
    values: [
      ["'héllo, \"world\" \\ ''quoted'''", 'héllo, "world" \\ \'quoted\''],
      ["''", ''],
    ],
  },
  {
    name: 'c_varchar',
    pgType: 'varchar(10)',
    iceberg: 'string',
    values: [
      ["'abc'", 'abc'],
      ["'😀'", '😀'],
    ],
  },
  {
    name: 'c_char',
    pgType: 'char(5)',
    iceberg: 'string',
    values: [
      ["'ab'", 'ab   '],
      ["'abcde'", 'abcde'],
    ],
  },
  {
    name: 'c_bytea',
    pgType: 'bytea',
    iceberg: 'binary',
    values: [
      ["'\\x00ff7f'", Buffer.from([0, 255, 127]).toString('base64')],
      ["''", ''],
    ],
  },
  {
    name: 'c_date',
    pgType: 'date',
    iceberg: 'date',
    values: [
      ["'2024-02-29'", '2024-02-29'],
      ["'0044-03-15 BC'", '-0043-03-15'],
    ],
  },
  {
    name: 'c_time',
    pgType: 'time',
    iceberg: 'time',
    values: [
      ["'12:34:56.789012'", '12:34:56.789012'],
      ["'00:00'", '00:00:00.000000'],
    ],
  },
  {
    name: 'c_timetz',
    pgType: 'timetz',
    iceberg: 'string',
    values: [
      ["'12:34:56.5+05:30'", '12:34:56.5+05:30'],
      ["'00:00:00-08'", '00:00:00-08'],
    ],
  },
  {
    name: 'c_ts',
    pgType: 'timestamp',
    iceberg: 'timestamp',
    values: [
      ["'2024-01-02 03:04:05.123456'", '2024-01-02T03:04:05.123456'],
      ["'1900-01-01 00:00:00'", '1900-01-01T00:00:00.000000'],
    ],
  },
  {
    name: 'c_tstz',
    pgType: 'timestamptz',
    iceberg: 'timestamptz',
    values: [
      ["'2024-01-02 03:04:05.000001+02'", '2024-01-02T01:04:05.000001Z'],
      ["'infinity'", '+294247-01-10T04:00:54.775807Z'],
    ],
  },
  {
    name: 'c_interval',
    pgType: 'interval',
    iceberg: 'string',
    values: [
      ["'1 year 2 mons 3 days 04:05:06.5'", 'P1Y2M3DT4H5M6.5S'],
      ["'-1 day'", 'P-1D'],
    ],
  },
  {
    name: 'c_uuid',
    pgType: 'uuid',
    iceberg: 'uuid',
    values: [
      ["'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
      ["'00000000-0000-0000-0000-000000000000'", '00000000-0000-0000-0000-000000000000'],
    ],
  },
  {
    name: 'c_json',
    pgType: 'json',
    iceberg: 'string',
    values: [
      [`'{"b": 1,  "a": [1, 2]}'`, '{"b": 1,  "a": [1, 2]}'],
      ["'null'", 'null'],
    ],
  },
  {
    name: 'c_jsonb',
    pgType: 'jsonb',
    iceberg: 'string',
    values: [
      [`'{"b": 1,  "a": [1, 2.50]}'`, '{"a": [1, 2.50], "b": 1}'],
      [`'"x"'`, '"x"'],
    ],
  },
  {
    name: 'c_inet',
    pgType: 'inet',
    iceberg: 'string',
    values: [
      ["'192.168.0.1/24'", '192.168.0.1/24'],
      ["'::1'", '::1'],
    ],
  },
  {
    name: 'c_cidr',
    pgType: 'cidr',
    iceberg: 'string',
    values: [
      ["'10.0.0.0/8'", '10.0.0.0/8'],
      ["'2001:db8::/32'", '2001:db8::/32'],
    ],
  },
  {
    name: 'c_int_arr',
    pgType: 'integer[]',
    iceberg: 'list<int>',
    values: [
      ["'{1,NULL,3}'", [1, null, 3]],
      ["'{{1,2},{3,4}}'", [1, 2, 3, 4]],
    ],
  },
  {
    name: 'c_text_arr',
    pgType: 'text[]',
    iceberg: 'list<string>',
    values: [
      [
        `ARRAY['a b', 'c"d', 'NULL', '', NULL, 'e\\f', '{x}']`,
        ['a b', 'c"d', 'NULL', '', null, 'e\\f', '{x}'],
      ],
      ["'{}'", []],
    ],
  },
  {
    name: 'c_num_arr',
    pgType: 'numeric(6,2)[]',
    iceberg: 'list<decimal(6,2)>',
    values: [
      ["'{1.5,-2.25}'", ['1.50', '-2.25']],
      ["'[0:0]={7}'", ['7.00']],
    ],
  },
  {
    name: 'c_tstz_arr',
    pgType: 'timestamptz[]',
    iceberg: 'list<timestamptz>',
    values: [
      [`ARRAY['2024-01-01 00:00:00+00'::timestamptz, NULL]`, ['2024-01-01T00:00:00.000000Z', null]],
      ["'{}'", []],
    ],
  },
  {
    name: 'c_bytea_arr',
    pgType: 'bytea[]',
    iceberg: 'list<binary>',
    values: [
      [`ARRAY['\\x0102'::bytea, '\\x'::bytea]`, ['AQI=', '']],
      ['NULL', null],
    ],
  },
  {
    name: 'c_uuid_arr',
    pgType: 'uuid[]',
    iceberg: 'list<uuid>',
    values: [
      [`ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]`, ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']],
      ["'{}'", []],
    ],
  },
  {
    name: 'c_enum',
    pgType: 'mood',
    iceberg: 'string',
    values: [
      ["'happy'", 'happy'],
      ["'so so'", 'so so'],
    ],
  },
  {
    name: 'c_enum_arr',
    pgType: 'mood[]',
    iceberg: 'list<string>',
    values: [
      ['\'{sad,"so so"}\'', ['sad', 'so so']],
      ['NULL', null],
    ],
  },
  {
    name: 'c_domain',
    pgType: 'posint',
    iceberg: 'int',
    values: [
      ['42', 42],
      ['1', 1],
    ],
  },
  {
    name: 'c_domain_num',
    pgType: 'amount',
    iceberg: 'decimal(12,2)',
    values: [
      ['10.5', '10.50'],
      ['0', '0.00'],
    ],
  },
  {
    name: 'c_comp',
    pgType: 'complex',
    iceberg: 'struct<r:double,i:double>',
    values: [
      ['ROW(1.5, -2)', { r: 1.5, i: -2 }],
      ['ROW(NULL, 3)', { r: null, i: 3 }],
    ],
  },
  {
    name: 'c_address',
    pgType: 'address',
    iceberg: 'struct<street:string,zip:list<int>,loc:struct<r:double,i:double>,tags:list<string>>',
    values: [
      [
        `ROW('1 "Main" St, (rear)', ARRAY[1,2], ROW(0.5, 0.25)::complex, ARRAY['x,y', NULL])::address`,
        { street: '1 "Main" St, (rear)', zip: [1, 2], loc: { r: 0.5, i: 0.25 }, tags: ['x,y', null] },
      ],
      [`ROW('', NULL, NULL, '{}')::address`, { street: '', zip: null, loc: null, tags: [] }],
    ],
  },
  {
    name: 'c_comp_arr',
    pgType: 'complex[]',
    iceberg: 'list<struct<r:double,i:double>>',
    values: [
      [`ARRAY[ROW(1,2)::complex, NULL, ROW(NULL,4)::complex]`, [{ r: 1, i: 2 }, null, { r: null, i: 4 }]],
      ["'{}'", []],
    ],
  },
  {
    name: 'c_macaddr',
    pgType: 'macaddr',
    iceberg: 'string',
    values: [
      ["'08:00:2B:01:02:03'", '08:00:2b:01:02:03'],
      ['NULL', null],
    ],
  },
  {
    name: 'c_bits',
    pgType: 'bit varying(8)',
    iceberg: 'string',
    values: [
      ["B'101'", '101'],
      ["B''", ''],
    ],
  },
  {
    name: 'c_range',
    pgType: 'int4range',
    iceberg: 'string',
    values: [
      ["'[1,10)'", '[1,10)'],
      ["'empty'", 'empty'],
    ],
  },
];

function tableSql(name: string): string {
  return `CREATE TABLE ${name} (id int PRIMARY KEY, ${COLUMNS.map((c) => `${c.name} ${c.pgType}`).join(', ')})`;
}

function insertSql(name: string, id: number, which: number | 'null'): string {
  const vals = COLUMNS.map((c) => (which === 'null' ? 'NULL' : c.values[which][0]));
  return `INSERT INTO ${name} (id, ${COLUMNS.map((c) => c.name).join(', ')}) VALUES (${id}, ${vals.join(', ')})`;
}

function expected(id: number, which: number | 'null'): Record<string, unknown> {
  const row: Record<string, unknown> = { id };
  for (const c of COLUMNS) row[c.name] = which === 'null' ? null : c.values[which][1];
  return row;
}

/** Exact JSON keeps a double's 16-17 digit text as ExactNumber; doubles compare as numbers. */
function plain(v: unknown): unknown {
  if (v instanceof ExactNumber) return Number(v.text);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function byId(rows: Record<string, unknown>[]): Map<number, Record<string, unknown>> {
  return new Map(rows.map((r) => [Number(r.id), plain(r) as Record<string, unknown>]));
}

describe('Postgres types round-trip', () => {
  it('every mapped type arrives exactly, through the initial copy and through replication', async () => {
    await pgc.sql(`CREATE TYPE mood AS ENUM ('sad', 'happy', 'so so')`);
    await pgc.sql(`CREATE DOMAIN posint AS integer CHECK (VALUE > 0)`);
    await pgc.sql(`CREATE DOMAIN amount AS numeric(12,2)`);
    await pgc.sql(`CREATE TYPE complex AS (r double precision, i double precision)`);
    await pgc.sql(`CREATE TYPE address AS (street text, zip int[], loc complex, tags text[])`);
    await pgc.sql(tableSql('alltypes'));
    // Copied rows.
    await pgc.sql(insertSql('alltypes', 1, 0));
    await pgc.sql(insertSql('alltypes', 2, 1));
    await pgc.sql(insertSql('alltypes', 3, 'null'));
    const created = await attach(ml, 'alltypes', pgc, 'public.alltypes');
    const types = Object.fromEntries(
      (created.columns as { name: string; type: string }[]).map((c) => [c.name, c.type]),
    );
    expect(types.id).toBe('int');
    for (const c of COLUMNS) expect(types[c.name], c.name).toBe(c.iceberg);
    expect(created.primaryKey).toEqual(['id']);
    // Replicated rows: inserts, and updates that rewrite every column.
    await pgc.sql(insertSql('alltypes', 11, 0));
    await pgc.sql(insertSql('alltypes', 12, 1));
    await pgc.sql(insertSql('alltypes', 13, 'null'));
    await pgc.sql(insertSql('alltypes', 21, 'null'));
    await pgc.sql(insertSql('alltypes', 22, 0));
    const sets = (which: number) => COLUMNS.map((c) => `${c.name} = ${c.values[which][0]}`).join(', ');
    await pgc.sql(`UPDATE alltypes SET ${sets(0)} WHERE id = 21`);
    await pgc.sql(`UPDATE alltypes SET ${sets(1)} WHERE id = 22`);
    const want = new Map<number, Record<string, unknown>>([
      [1, expected(1, 0)],
      [2, expected(2, 1)],
      [3, expected(3, 'null')],
      [11, expected(11, 0)],
      [12, expected(12, 1)],
      [13, expected(13, 'null')],
      [21, expected(21, 0)],
      [22, expected(22, 1)],
    ]);
    let got = new Map<number, Record<string, unknown>>();
    await eventually(
      async () => {
        got = byId(await ml.scan('alltypes'));
        return got.size === want.size && got.get(22)?.c_bool === false;
      },
      20_000,
      'all rows',
    );
    for (const [id, row] of want) expect(got.get(id), `row ${id}`).toEqual(row);
  });

  it('a table without a key: all NOT NULL key-type columns form the key', async () => {
    await pgc.sql(`CREATE TABLE nokey (a int NOT NULL, b text NOT NULL)`);
    await pgc.sql(`INSERT INTO nokey VALUES (1, 'x'), (2, 'y')`);
    const created = await attach(ml, 'nokey', pgc, 'nokey');
    expect(created.primaryKey).toEqual(['a', 'b']);
    const ident = await pgc.sql<{ relreplident: string }>(
      `SELECT relreplident FROM pg_class WHERE relname = 'nokey'`,
    );
    expect(ident[0].relreplident).toBe('f');
    await pgc.sql(`UPDATE nokey SET b = 'z' WHERE a = 1`);
    await pgc.sql(`DELETE FROM nokey WHERE a = 2`);
    await pgc.sql(`INSERT INTO nokey VALUES (3, 'w')`);
    await eventually(async () => {
      const rows = (await ml.scan('nokey')).map((r) => `${r.a}${r.b}`).sort();
      return JSON.stringify(rows) === JSON.stringify(['1z', '3w']);
    });
  });

  it('a table without a key and with nullable or float columns gets a row-digest key', async () => {
    await pgc.sql(`CREATE TABLE nokey2 (a int, f float8, t text[])`);
    await pgc.sql(`INSERT INTO nokey2 VALUES (1, 0.5, '{a}'), (NULL, NULL, NULL)`);
    const created = await attach(ml, 'nokey2', pgc, 'nokey2');
    expect(created.primaryKey).toEqual([ROW_KEY_COLUMN]);
    await pgc.sql(`UPDATE nokey2 SET f = 1.5 WHERE a = 1`);
    await pgc.sql(`DELETE FROM nokey2 WHERE a IS NULL`);
    await pgc.sql(`INSERT INTO nokey2 VALUES (2, NULL, '{b,NULL}')`);
    await eventually(async () => {
      const rows = (await ml.scan('nokey2')).map((r) => JSON.stringify([r.a, r.f, r.t])).sort();
      return JSON.stringify(rows) === JSON.stringify(['[1,1.5,["a"]]', '[2,null,["b",null]]']);
    });
  });

  it('a partitioned table replicates through its root', async () => {
    await pgc.sql(
      `CREATE TABLE parted (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`,
    );
    await pgc.sql(`CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu')`);
    await pgc.sql(`CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us')`);
    await pgc.sql(`INSERT INTO parted VALUES (1, 'eu', 'a'), (2, 'us', 'b')`);
    const created = await attach(ml, 'parted', pgc, 'parted');
    expect(created.primaryKey).toEqual(['id', 'region']);
    // Changes are logged with each partition's identity, so every partition is set FULL.
    const idents = await pgc.sql<{ relname: string; relreplident: string }>(
      `SELECT relname, relreplident FROM pg_class WHERE relname LIKE 'parted%' AND relkind IN ('r', 'p') ORDER BY relname`,
    );
    expect(idents.map((r) => `${r.relname}:${r.relreplident}`)).toEqual([
      'parted:f',
      'parted_eu:f',
      'parted_us:f',
    ]);
    await pgc.sql(`INSERT INTO parted VALUES (3, 'us', 'c')`);
    await pgc.sql(`UPDATE parted SET region = 'us' WHERE id = 1`); // moves between partitions
    await pgc.sql(`DELETE FROM parted WHERE id = 2`);
    await eventually(async () => {
      const rows = (await ml.scan('parted')).map((r) => `${r.id}${r.region}${r.v}`).sort();
      return JSON.stringify(rows) === JSON.stringify(['1usa', '3usc']);
    });
  });

  it('refuses what it cannot replicate with a 4xx naming the problem', async () => {
    await pgc.sql(`CREATE TABLE "Bad Names" (id int PRIMARY KEY, "my col" int)`);
    const r1 = await ml.call('POST', '/tables', {
      name: 'badnames',
      source: { postgres: { connection: pgc.url, table: '"Bad Names"' } },
    });
    expect(r1.status).toBe(400);
    expect(r1.body.error.message).toContain('my col');
    const r2 = await ml.call('POST', '/tables', {
      name: 'missing',
      source: { postgres: { connection: pgc.url, table: 'no_such_table' } },
    });
    expect(r2.status).toBe(400);
    expect(r2.body.error.message).toContain('does not exist');
    const r3 = await ml.call('POST', '/tables', {
      name: 'cols',
      columns: [{ name: 'a', type: 'int' }],
      source: { postgres: { connection: pgc.url, table: 'nokey' } },
    });
    expect(r3.status).toBe(400);
    const r4 = await ml.call('POST', '/tables', {
      name: 'unreachable',
      source: { postgres: { connection: 'postgres://u:secret@127.0.0.1:1/db', table: 't' } },
    });
    expect(r4.status).toBe(400);
    expect(r4.body.error.message).toContain('cannot connect');
    expect(r4.body.error.message).not.toContain('secret');
  });
});

/** Reads pgoutput messages from a throwaway slot until `until` says stop. */
async function readSlot(
  slot: string,
  publication: string,
  until: (msgs: PgOutputMessage[]) => boolean,
): Promise<PgOutputMessage[]> {
  const rc = await ReplicationClient.connect(pgc.url, 'test');
  const decoder = new PgOutputDecoder();
  const msgs: PgOutputMessage[] = [];
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  void rc
    .startReplication(slot, '0/0', publication, (chunk) => {
      const f = parseReplicationFrame(chunk);
      if (f?.kind !== 'xlog') return;
      msgs.push(decoder.decode(f.data));
      if (until(msgs)) done();
    })
    .catch(() => undefined);
  await Promise.race([finished, new Promise((r) => setTimeout(r, 15_000))]);
  await rc.end();
  return msgs;
}

describe('unchanged TOAST values', () => {
  it('with REPLICA IDENTITY FULL Postgres sends the old row detoasted, so an update keeps the value', async () => {
    // Incompressible, so it is stored out of line (TOAST), not inline.
    const big = (
      await pgc.sql<{ v: string }>(`SELECT string_agg(md5(g::text), '') AS v FROM generate_series(1, 400) g`)
    )[0].v;
    await pgc.sql(`CREATE TABLE toasty (id int PRIMARY KEY, n int, big text)`);
    await pgc.sql(`CREATE TABLE toasty_default (id int PRIMARY KEY, n int, big text)`);
    await pgc.sql(`INSERT INTO toasty VALUES (1, 0, $1)`, [big]);
    await pgc.sql(`INSERT INTO toasty_default VALUES (1, 0, $1)`, [big]);
    const ext = await pgc.sql<{ n: string }>(
      `SELECT count(*)::text AS n FROM pg_class c WHERE c.relname = 'toasty' AND pg_relation_size(c.reltoastrelid) > 0`,
    );
    expect(ext[0].n).toBe('1');

    // Protocol-level evidence, with a slot of our own.
    await pgc.sql(`ALTER TABLE toasty REPLICA IDENTITY FULL`);
    await pgc.sql(`CREATE PUBLICATION toast_pub FOR TABLE toasty, toasty_default`);
    await pgc.sql(`SELECT pg_create_logical_replication_slot('toast_probe', 'pgoutput')`);
    await pgc.sql(`UPDATE toasty SET n = 1 WHERE id = 1`);
    await pgc.sql(`UPDATE toasty_default SET n = 1 WHERE id = 1`);
    const msgs = await readSlot(
      'toast_probe',
      'toast_pub',
      (m) => m.filter((x) => x.tag === 'update').length >= 2,
    );
    await pgc.sql(`SELECT pg_drop_replication_slot('toast_probe')`);
    const updates = msgs.filter((m) => m.tag === 'update') as Extract<PgOutputMessage, { tag: 'update' }>[];
    const rels = new Map(
      msgs
        .filter((m) => m.tag === 'relation')
        .map((m) => [(m as { oid: number }).oid, (m as { name: string }).name]),
    );
    const full = updates.find((u) => rels.get(u.oid) === 'toasty')!;
    const dflt = updates.find((u) => rels.get(u.oid) === 'toasty_default')!;
    // FULL: the new tuple says "unchanged" for big, and the old tuple carries the whole value.
    expect(full.tuple[2]).toBeUndefined();
    expect(full.oldKind).toBe('O');
    expect(full.old![2]).toBe(big);
    // DEFAULT identity: "unchanged" and no old tuple at all: the value would be lost.
    expect(dflt.tuple[2]).toBeUndefined();
    expect(dflt.old).toBeUndefined();

    // And end to end: attach sets REPLICA IDENTITY FULL on toasty_default by itself.
    await attach(ml, 'toasty', pgc, 'toasty_default');
    await pgc.sql(`UPDATE toasty_default SET n = 2 WHERE id = 1`);
    await eventually(async () => {
      const rows = await ml.scan('toasty');
      return rows.length === 1 && rows[0].n === 2;
    });
    const rows = await ml.scan('toasty');
    expect(rows[0].big).toBe(big);
  });
});
