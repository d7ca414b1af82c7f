/**
 * Reading a Postgres table's shape (columns, types, key) and turning it into a Moonlink table
 * schema; and, at run time, decoding pgoutput tuples of that table into engine rows.
 *
 * The key, in order of preference: the `primaryKey` the attach request names; the table's
 * primary key; its replica-identity index; all columns (when every column is NOT NULL and of a
 * key type). Otherwise the table gets one extra column, `_moonlink_row_key`, a digest of every
 * other column, and that is the key: all columns still form the key, but nullable, float,
 * array and composite columns can take part. In both all-columns cases identical duplicate rows
 * in Postgres are one row in Iceberg (documented in docs/postgres-source.md).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { type IcebergType, typeName } from '../../schema/iceberg-type.ts';
import { buildSchema, SchemaError, type TableSchema } from '../../schema/table-schema.ts';
import { fieldEncoder, type Value, ValueError } from '../../schema/values.ts';
import { type DecodedOp, keyOf, type RowCodec, rowCodec } from '../../txn/transaction.ts';
import { decodeColumn, type MappedType, mapType, PgTypeCatalog, type TextDecoder } from './type-mapping.ts';

/** The digest column of tables whose key is "all columns" but some column cannot be a key column. */
export const ROW_KEY_COLUMN = '_moonlink_row_key';

export interface PgColumn {
  name: string;
  typeOid: number;
  typmod: number;
  notNull: boolean;
  mapped: MappedType;
}

export type KeySource = 'request' | 'primary key' | 'replica identity index' | 'all columns' | 'row digest';

export interface PgTableInfo {
  oid: number;
  schema: string;
  name: string;
  /** `"schema"."table"`, quoted for SQL. */
  quoted: string;
  /** r table, p partitioned table */
  relkind: string;
  /** d default, n nothing, f full, i index */
  replicaIdentity: string;
  columns: PgColumn[];
  primaryKey: string[];
  replicaIdentityKey: string[];
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Reads a table's shape. `table` is `schema.table` or `table` (resolved like Postgres does, quotes allowed). */
export async function readPgTable(client: pg.Client, table: string): Promise<PgTableInfo> {
  const rel = await client.query<{
    oid: number;
    nspname: string;
    relname: string;
    relkind: string;
    relreplident: string;
  }>(
    `SELECT c.oid::int4 AS oid, n.nspname, c.relname, c.relkind, c.relreplident
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass($1)`,
    [table],
  );
  if (rel.rows.length === 0) throw new SchemaError(`Postgres table ${JSON.stringify(table)} does not exist`);
  const r = rel.rows[0];
  if (r.relkind !== 'r' && r.relkind !== 'p') {
    throw new SchemaError(`Postgres relation ${JSON.stringify(table)} is not a table (relkind ${r.relkind})`);
  }
  const oid = Number(r.oid);
  const cols = await client.query<{
    attname: string;
    atttypid: number;
    atttypmod: number;
    attnotnull: boolean;
    attgenerated: string;
  }>(
    `SELECT attname, atttypid::int4 AS atttypid, atttypmod, attnotnull, attgenerated
       FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [oid],
  );
  const keyCols = async (flag: 'indisprimary' | 'indisreplident'): Promise<string[]> =>
    (
      await client.query<{ attname: string }>(
        `SELECT a.attname
           FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = $1 AND i.${flag}
          ORDER BY k.ord`,
        [oid],
      )
    ).rows.map((x) => x.attname);
  const cat = new PgTypeCatalog();
  // Generated columns are not replicated by pgoutput (Postgres 15), so they are left out.
  const live = cols.rows.filter((c) => !c.attgenerated);
  await cat.load(
    client,
    live.map((c) => Number(c.atttypid)),
  );
  const columns = live.map((c) => ({
    name: c.attname,
    typeOid: Number(c.atttypid),
    typmod: Number(c.atttypmod),
    notNull: c.attnotnull,
    mapped: mapType(cat, Number(c.atttypid), Number(c.atttypmod), `column "${c.attname}"`),
  }));
  return {
    oid,
    schema: r.nspname,
    name: r.relname,
    quoted: `${quoteIdent(r.nspname)}.${quoteIdent(r.relname)}`,
    relkind: r.relkind,
    replicaIdentity: r.relreplident,
    columns,
    primaryKey: await keyCols('indisprimary'),
    replicaIdentityKey: await keyCols('indisreplident'),
  };
}

/**
 * Sets REPLICA IDENTITY FULL where it is not yet: on the table, and for a partitioned table on
 * every partition (Postgres logs a change with the identity of the partition that holds the row).
 * Returns the tables changed.
 */
export async function ensureReplicaIdentityFull(client: pg.Client, info: PgTableInfo): Promise<string[]> {
  const r = await client.query<{ name: string }>(
    info.relkind === 'p'
      ? `SELECT c.oid::regclass::text AS name
           FROM pg_partition_tree($1::oid) t JOIN pg_class c ON c.oid = t.relid
          WHERE c.relreplident <> 'f' AND c.relkind IN ('r', 'p')`
      : `SELECT c.oid::regclass::text AS name FROM pg_class c WHERE c.oid = $1::oid AND c.relreplident <> 'f'`,
    [info.oid],
  );
  for (const row of r.rows) await client.query(`ALTER TABLE ${row.name} REPLICA IDENTITY FULL`);
  return r.rows.map((x) => x.name);
}

function isKeyType(t: IcebergType): boolean {
  return !['list', 'map', 'struct', 'float', 'double'].includes(t.kind);
}

/** The Moonlink schema of a Postgres table, and where its key came from. */
export function schemaForPgTable(
  info: PgTableInfo,
  requestedKey?: string[],
): { schema: TableSchema; keySource: KeySource } {
  const columns = info.columns.map((c) => ({
    name: c.name,
    type: typeName(c.mapped.type),
    nullable: !c.notNull,
  }));
  for (const c of info.columns) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(c.name)) {
      throw new SchemaError(
        `Postgres column ${JSON.stringify(c.name)} of ${info.quoted} is not a valid Moonlink column name ` +
          '(letters, digits and underscores, not starting with a digit); rename it or replicate a view of the table',
      );
    }
  }
  let key: string[];
  let keySource: KeySource;
  if (requestedKey && requestedKey.length > 0) {
    key = requestedKey;
    keySource = 'request';
  } else if (info.primaryKey.length > 0) {
    key = info.primaryKey;
    keySource = 'primary key';
  } else if (info.replicaIdentityKey.length > 0) {
    key = info.replicaIdentityKey;
    keySource = 'replica identity index';
  } else if (info.columns.every((c) => c.notNull && isKeyType(c.mapped.type))) {
    key = info.columns.map((c) => c.name);
    keySource = 'all columns';
  } else {
    if (info.columns.some((c) => c.name === ROW_KEY_COLUMN))
      throw new SchemaError(`Postgres table ${info.quoted} already has a column named ${ROW_KEY_COLUMN}`);
    columns.push({ name: ROW_KEY_COLUMN, type: 'string', nullable: false });
    key = [ROW_KEY_COLUMN];
    keySource = 'row digest';
  }
  return { schema: buildSchema(columns, key), keySource };
}

/**
 * Decodes pgoutput tuples (and copied rows) of one relation into engine rows. Built from the
 * Relation message's columns, matched by name to the Moonlink schema; each column's type is
 * mapped again and must still map to the Iceberg type the table was created with.
 */
export class RowDecoder {
  readonly codec: RowCodec;
  /** For each incoming column: its index in the Moonlink schema, or -1 (a column added later: ignored). */
  private readonly target: number[];
  private readonly decoders: (TextDecoder | undefined)[];
  private readonly digestIndex: number;
  private readonly encoders: ((v: Value) => string)[];

  constructor(
    readonly schema: TableSchema,
    incoming: { name: string; mapped: MappedType }[],
  ) {
    this.codec = rowCodec(schema);
    this.target = incoming.map((c) =>
      this.codec.columnIndex.has(c.name) ? this.codec.columnIndex.get(c.name)! : -1,
    );
    this.decoders = incoming.map((c, i) => {
      const t = this.target[i];
      if (t < 0) return undefined;
      const want = typeName(schema.fields[t].type);
      const got = typeName(c.mapped.type);
      if (want !== got) {
        throw new SchemaError(
          `column "${c.name}" now has Postgres type ${c.mapped.pgName} (${got}); the table was created with ${want}`,
        );
      }
      return c.mapped.decode;
    });
    this.digestIndex =
      schema.primaryKey.length === 1 && schema.primaryKey[0] === ROW_KEY_COLUMN
        ? this.codec.columnIndex.get(ROW_KEY_COLUMN)!
        : -1;
    this.encoders = schema.fields.map(fieldEncoder);
  }

  /** Columns of the incoming relation that are not in the Moonlink table. */
  get ignoredColumns(): number {
    return this.target.filter((t) => t < 0).length;
  }

  /**
   * Decodes a tuple of text values (null = SQL NULL, undefined = unchanged TOAST value, taken
   * from `old` when given). Throws when an unchanged value has nothing to come from.
   */
  decode(texts: (string | null | undefined)[], old?: Value[]): Value[] {
    const n = this.schema.fields.length;
    const values: Value[] = new Array(n).fill(null);
    for (let i = 0; i < texts.length && i < this.target.length; i++) {
      const t = this.target[i];
      if (t < 0) continue;
      const text = texts[i];
      if (text === undefined) {
        if (!old) {
          throw new UnchangedToastError(
            `column "${this.schema.fields[t].name}": an unchanged TOAST value arrived without the old row ` +
              '(the table must have REPLICA IDENTITY FULL)',
          );
        }
        values[t] = old[t];
      } else if (text !== null) {
        values[t] = decodeColumn(this.decoders[i]!, this.schema.fields[t].name, text);
      }
    }
    if (this.digestIndex >= 0) values[this.digestIndex] = this.digest(values);
    for (const c of this.codec.keyColumns) {
      if (values[c] === null)
        throw new ValueError(this.schema.fields[c].name, 'key column is NULL in a replicated row');
    }
    return values;
  }

  op(kind: DecodedOp['op'], values: Value[]): DecodedOp {
    return { op: kind, values, key: keyOf(this.codec, values) };
  }

  keyOf(values: Value[]): string | undefined {
    return keyOf(this.codec, values);
  }

  private digest(values: Value[]): string {
    const h = createHash('sha256');
    for (let i = 0; i < values.length; i++) {
      if (i === this.digestIndex) continue;
      const s = values[i] === null ? '\u0000' : this.encoders[i](values[i]);
      h.update(`${s.length}:${s}`);
    }
    return h.digest('hex').slice(0, 32);
  }
}

export class UnchangedToastError extends Error {}
