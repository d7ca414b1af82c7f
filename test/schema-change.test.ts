/**
 * The pure parts of schema evolution: applying changes (Iceberg's rules on ids and promotions),
 * values carried between schemas, column inference from records, and reading a Postgres
 * Relation message against the table's schemas.
 */
import { describe, expect, it } from 'vitest';
import { convertValue, rowMapper } from '../lib/schema/evolve-values.ts';
import { parseType } from '../lib/schema/iceberg-type.ts';
import { newColumnsOf } from '../lib/schema/infer-columns.ts';
import { applySchemaChanges, isAllowedPromotion, parseSchemaChanges } from '../lib/schema/schema-change.ts';
import { buildSchema, type TableSchema } from '../lib/schema/table-schema.ts';
import { matchRelation, resyncSchema } from '../lib/sources/postgres/pg-schema-change.ts';

const base = buildSchema(
  [
    { name: 'id', type: 'long', nullable: false },
    { name: 'a', type: 'int' },
    { name: 's', type: 'struct<x:string,y:int>' },
    { name: 'd', type: 'decimal(9,2)' },
  ],
  ['id'],
);
// ids: id 1, a 2, s 3, d 4, s.x 5, s.y 6

describe('applySchemaChanges', () => {
  it('gives new fields ids above last-column-id, never reusing a dropped one', () => {
    const dropped = applySchemaChanges(base, 6, [{ action: 'drop-column', name: 'd' }], 2);
    expect(dropped.schema.schemaId).toBe(1);
    expect(dropped.lastColumnId).toBe(6);
    const readded = applySchemaChanges(
      dropped.schema,
      dropped.lastColumnId,
      [{ action: 'add-column', name: 'd', type: 'string' }],
      2,
    );
    expect(readded.schema.fields.find((f) => f.name === 'd')!.id).toBe(7);
    // A nested type's own ids come after the field's.
    const nested = applySchemaChanges(
      readded.schema,
      readded.lastColumnId,
      [{ action: 'add-column', name: 'm', type: 'map<string,struct<p:int>>' }],
      2,
    );
    expect(nested.lastColumnId).toBe(11);
    expect(nested.schema.fields.at(-1)!.id).toBe(8);
  });

  it('adds, renames and widens struct fields by dotted path; the struct keeps its id', () => {
    const e = applySchemaChanges(
      base,
      6,
      [
        { action: 'add-column', name: 's.z', type: 'boolean' },
        { action: 'rename-column', name: 's.x', newName: 'xx' },
        { action: 'widen-column', name: 's.y', type: 'long' },
      ],
      2,
    );
    const s = e.schema.fields.find((f) => f.name === 's')!;
    expect(s.id).toBe(3);
    expect(s.type).toEqual(parseTypeWithIds('struct<xx:string,y:long,z:boolean>', [5, 6, 7]));
  });

  it('allows only Iceberg promotions', () => {
    const t = (x: string) => parseType(x);
    expect(isAllowedPromotion(t('int'), t('long'))).toBe(true);
    expect(isAllowedPromotion(t('float'), t('double'))).toBe(true);
    expect(isAllowedPromotion(t('decimal(9,2)'), t('decimal(12,2)'))).toBe(true);
    expect(isAllowedPromotion(t('decimal(9,2)'), t('decimal(12,3)'))).toBe(false);
    expect(isAllowedPromotion(t('decimal(9,2)'), t('decimal(9,2)'))).toBe(false);
    expect(isAllowedPromotion(t('long'), t('int'))).toBe(false);
    expect(isAllowedPromotion(t('int'), t('double'))).toBe(false);
    expect(isAllowedPromotion(t('date'), t('timestamp'))).toBe(false);
  });

  it('refuses the whole request at its first bad change and leaves the schema as it was', () => {
    const before = JSON.stringify(base);
    expect(() =>
      applySchemaChanges(
        base,
        6,
        [
          { action: 'add-column', name: 'ok', type: 'string' },
          { action: 'rename-column', name: 'a', newName: 's' },
        ],
        2,
      ),
    ).toThrow(/changes\[1\]: column "s" already exists/);
    expect(JSON.stringify(base)).toBe(before);
    expect(() => parseSchemaChanges({ changes: [{ action: 'drop-column', name: 'a', extra: 1 }] })).toThrow(
      /changes\[0\]: unknown property "extra"/,
    );
    expect(() => parseSchemaChanges({ changes: [] })).toThrow(/non-empty/);
  });

  it('stores a v3 initial default in its JSON form and reads it back as the value', () => {
    const e = applySchemaChanges(
      base,
      6,
      [{ action: 'add-column', name: 'since', type: 'date', initialDefault: '2024-05-01' }],
      3,
    );
    const f = e.schema.fields.at(-1)!;
    expect(f.initialDefault).toBe('2024-05-01');
    const map = rowMapper(base, e.schema);
    expect(map([1n, 2, null, 100n])).toEqual([1n, 2, null, 100n, 19844]);
    expect(() =>
      applySchemaChanges(
        base,
        6,
        [{ action: 'add-column', name: 'x', type: 'date', initialDefault: 'soon' }],
        3,
      ),
    ).toThrow();
  });
});

function parseTypeWithIds(text: string, ids: number[]) {
  const t = parseType(text);
  if (t.kind === 'struct')
    t.fields.forEach((f, i) => {
      f.id = ids[i];
    });
  return t;
}

describe('values across schemas', () => {
  it('maps rows by field id: renamed keep values, added read null, dropped go, int widens to bigint', () => {
    const e = applySchemaChanges(
      base,
      6,
      [
        { action: 'drop-column', name: 'd' },
        { action: 'rename-column', name: 'a', newName: 'aa' },
        { action: 'widen-column', name: 'aa', type: 'long' },
        { action: 'add-column', name: 'n', type: 'string' },
        { action: 'add-column', name: 's.z', type: 'int' },
      ],
      2,
    );
    expect(rowMapper(base, e.schema)([7n, 5, ['x', 1], 100n])).toEqual([7n, 5n, ['x', 1, null], null]);
    expect(convertValue(parseType('list<int>'), parseType('list<long>'), [1, null])).toEqual([1n, null]);
  });
});

describe('columns inferred from records', () => {
  it('takes each new top-level field once, typed from its first non-null value (by the JSON text)', () => {
    const body = JSON.stringify({
      ops: [
        { op: 'insert', row: { id: 1, a: 2, k: null } },
        { op: 'insert', row: { id: 2, k: 'text', f: 1.5, i: 3, b: false, o: { p: 1, q: [true] }, l: [[1]] } },
      ],
    });
    expect(newColumnsOf(base, body)).toEqual([
      { action: 'add-column', name: 'k', type: 'string' },
      { action: 'add-column', name: 'f', type: 'double' },
      { action: 'add-column', name: 'i', type: 'long' },
      { action: 'add-column', name: 'b', type: 'boolean' },
      { action: 'add-column', name: 'o', type: 'struct<p:long,q:list<boolean>>' },
      { action: 'add-column', name: 'l', type: 'list<list<long>>' },
    ]);
    expect(newColumnsOf(base, '{"ops":[{"op":"insert","row":{"id":1,"r":1.0}}]}')).toEqual([
      { action: 'add-column', name: 'r', type: 'double' },
    ]);
    expect(() => newColumnsOf(base, '{"ops":[{"op":"insert","row":{"id":1,"e":[]}}]}')).toThrow(
      /cannot be inferred/,
    );
    expect(() => newColumnsOf(base, '{"ops":[{"op":"insert","row":{"id":1,"bad-name":1}}]}')).toThrow(
      /usable/,
    );
    expect(newColumnsOf(base, 'not json')).toEqual([]);
  });
});

describe('Postgres Relation messages against the table', () => {
  const pgBase = buildSchema(
    [
      { name: 'id', type: 'long', nullable: false },
      { name: 'bal', type: 'decimal(12,2)' },
      { name: 'note', type: 'string' },
      { name: 'n', type: 'int' },
    ],
    ['id'],
  );
  const col = (name: string, type: string) => ({ name, type: parseType(type), pgName: type });
  const cols = [col('id', 'long'), col('bal', 'decimal(12,2)'), col('note', 'string'), col('n', 'int')];
  const always = () => true;

  it('tells a rename (same place, same type) from a drop and an add', () => {
    const renamed = matchRelation([pgBase], 4, [cols[0], cols[1], col('memo', 'string'), cols[3]], 2, always);
    expect(renamed.kind === 'evolve' && renamed.changes).toEqual([
      { action: 'rename-column', name: 'note', newName: 'memo' },
    ]);
    const dropAdd = matchRelation([pgBase], 4, [cols[0], cols[1], cols[3], col('memo', 'string')], 2, always);
    expect(dropAdd.kind === 'evolve' && dropAdd.changes).toEqual([
      { action: 'drop-column', name: 'note' },
      { action: 'add-column', name: 'memo', type: 'string' },
    ]);
    const widened = matchRelation(
      [pgBase],
      4,
      [cols[0], col('bal', 'decimal(14,2)'), cols[2], col('n', 'long')],
      2,
      always,
    );
    expect(widened.kind === 'evolve' && widened.changes).toEqual([
      { action: 'widen-column', name: 'bal', type: 'decimal(14,2)' },
      { action: 'widen-column', name: 'n', type: 'long' },
    ]);
    expect(() =>
      matchRelation([pgBase], 4, [cols[0], cols[1], col('note', 'int'), cols[3]], 2, always),
    ).toThrow(/column "note" changed from string to int/);
    expect(() => matchRelation([pgBase], 4, [cols[1], cols[2], cols[3]], 2, always)).toThrow(/primary key/);
  });

  it('an older shape is a replay only before the change that left it', () => {
    const next = matchRelation([pgBase], 4, [...cols, col('extra', 'string')], 2, always);
    if (next.kind !== 'evolve') throw new Error('expected a change');
    const history: TableSchema[] = [pgBase, next.evolved.schema];
    expect(matchRelation(history, 5, cols, 2, () => true)).toEqual({ kind: 'older', schema: pgBase });
    // After the change: the column was dropped again, a change like any other.
    const back = matchRelation(history, 5, cols, 2, () => false);
    expect(back.kind === 'evolve' && back.changes).toEqual([{ action: 'drop-column', name: 'extra' }]);
    expect(matchRelation(history, 5, [...cols, col('extra', 'string')], 2, always).kind).toBe('same');
  });

  it('refuses changes of a table keyed by row digest; a resync takes the Postgres columns', () => {
    const digest = buildSchema(
      [
        { name: 'a', type: 'string' },
        { name: '_moonlink_row_key', type: 'string', nullable: false },
      ],
      ['_moonlink_row_key'],
    );
    expect(() => matchRelation([digest], 2, [col('a', 'string'), col('b', 'int')], 2, always)).toThrow(
      /digest/,
    );
    const r = resyncSchema(
      pgBase,
      4,
      [cols[0], cols[1], col('note', 'int'), cols[3], col('z', 'string')],
      2,
    )!;
    const byName = new Map(r.schema.fields.map((f) => [f.name, f]));
    expect(byName.get('id')!.id).toBe(1);
    expect(byName.get('note')!.id).toBe(5); // a new field: the old values cannot be int
    expect(byName.get('note')!.type.kind).toBe('int');
    expect(byName.get('z')!.id).toBe(6);
    expect(() => resyncSchema(pgBase, 4, [col('id', 'string'), cols[1]], 2)).toThrow(/key column "id"/);
  });
});
