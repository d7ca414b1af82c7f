/**
 * Postgres types → Iceberg types, and for each a decoder from the Postgres text form to the
 * engine's in-memory value (see lib/schema/values.ts). docs/postgres-source.md has the table.
 *
 * Types are read from the catalog (pg_type, pg_attribute) so arrays, enums, domains and
 * composite types of any depth map too: an array maps to list<element>, a domain to its base
 * type (with the domain's typmod), an enum to string, a composite to a struct of its attributes.
 * Types with no Iceberg counterpart map to string holding Postgres's text form.
 */
import type pg from 'pg';
import type { IcebergType } from '../../schema/iceberg-type.ts';
import { type Value, ValueError } from '../../schema/values.ts';
import {
  flattenArray,
  parseArrayLiteral,
  parseBool,
  parseBytea,
  parseDateText,
  parseFloat4,
  parseFloat8,
  parseInt32,
  parseInt64,
  parseNumericUnscaled,
  parseRecordLiteral,
  parseTimestampText,
  parseTimeText,
} from './pg-text.ts';

/** Text form → in-memory value. Throws on text it cannot read. */
export type TextDecoder = (text: string) => Value;

export interface MappedType {
  type: IcebergType;
  decode: TextDecoder;
  /** Postgres's name for the type (for messages and docs). */
  pgName: string;
}

export interface PgTypeRow {
  oid: number;
  name: string;
  schema: string;
  /** b base, c composite, d domain, e enum, p pseudo, r range, m multirange */
  typtype: string;
  category: string;
  elem: number;
  baseType: number;
  typmod: number;
  delim: string;
  relid: number;
}

export interface PgAttribute {
  name: string;
  typeOid: number;
  typmod: number;
  notNull: boolean;
}

/** Built-in type OIDs (fixed in every Postgres). */
export const OID = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int2vector: 22,
  int4: 23,
  text: 25,
  oid: 26,
  oidvector: 30,
  json: 114,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** Types whose value is Postgres's text form unchanged (string columns). */
const STRING_TYPES = new Set<number>([
  OID.text,
  OID.varchar,
  OID.bpchar,
  OID.name,
  OID.char,
  OID.json,
  OID.jsonb,
  OID.interval,
  OID.timetz,
]);

/** The largest decimal precision Iceberg has. */
export const MAX_DECIMAL_PRECISION = 38;

/** numeric's typmod → [precision, scale]; undefined for unconstrained numeric. */
export function numericTypmod(typmod: number): [number, number] | undefined {
  if (typmod < 4) return undefined;
  const t = typmod - 4;
  const precision = (t >> 16) & 0xffff;
  // Postgres 15 allows a scale from -1000 to 1000 (stored as 11 signed bits).
  const scale = ((t & 0x7ff) ^ 1024) - 1024;
  return [precision, scale];
}

/** Type information for a set of type OIDs and everything they refer to. */
export class PgTypeCatalog {
  readonly types = new Map<number, PgTypeRow>();
  readonly attributes = new Map<number, PgAttribute[]>();

  /** Loads the types (and, recursively, element/base/attribute types) from the server. */
  async load(client: pg.Client, oids: number[]): Promise<void> {
    let todo = [...new Set(oids)].filter((o) => !this.types.has(o));
    while (todo.length > 0) {
      const r = await client.query<{
        oid: number;
        typname: string;
        nspname: string;
        typtype: string;
        typcategory: string;
        typelem: number;
        typbasetype: number;
        typtypmod: number;
        typdelim: string;
        typrelid: number;
      }>(
        `SELECT t.oid::int4 AS oid, t.typname, n.nspname, t.typtype, t.typcategory, t.typelem::int4 AS typelem,
                t.typbasetype::int4 AS typbasetype, t.typtypmod, t.typdelim, t.typrelid::int4 AS typrelid
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE t.oid = ANY($1::oid[])`,
        [todo],
      );
      const next = new Set<number>();
      const relids: number[] = [];
      for (const row of r.rows) {
        const t: PgTypeRow = {
          oid: Number(row.oid),
          name: row.typname,
          schema: row.nspname,
          typtype: row.typtype,
          category: row.typcategory,
          elem: Number(row.typelem),
          baseType: Number(row.typbasetype),
          typmod: Number(row.typtypmod),
          delim: row.typdelim,
          relid: Number(row.typrelid),
        };
        this.types.set(t.oid, t);
        if (t.elem) next.add(t.elem);
        if (t.baseType) next.add(t.baseType);
        if (t.typtype === 'c' && t.relid) relids.push(t.relid);
      }
      for (const o of todo) if (!this.types.has(o)) throw new Error(`type oid ${o} not found`);
      if (relids.length > 0) {
        const a = await client.query<{
          attrelid: number;
          attname: string;
          atttypid: number;
          atttypmod: number;
          attnotnull: boolean;
        }>(
          `SELECT attrelid::int4 AS attrelid, attname, atttypid::int4 AS atttypid, atttypmod, attnotnull
             FROM pg_attribute
            WHERE attrelid = ANY($1::oid[]) AND attnum > 0 AND NOT attisdropped
            ORDER BY attrelid, attnum`,
          [relids],
        );
        for (const row of a.rows) {
          const rel = Number(row.attrelid);
          let list = this.attributes.get(rel);
          if (!list) {
            list = [];
            this.attributes.set(rel, list);
          }
          list.push({
            name: row.attname,
            typeOid: Number(row.atttypid),
            typmod: Number(row.atttypmod),
            notNull: row.attnotnull,
          });
          next.add(Number(row.atttypid));
        }
      }
      todo = [...next].filter((o) => !this.types.has(o));
    }
  }

  get(oid: number): PgTypeRow {
    const t = this.types.get(oid);
    if (!t) throw new Error(`type oid ${oid} was not loaded`);
    return t;
  }
}

export class UnsupportedTypeError extends Error {}

function isArrayType(t: PgTypeRow): boolean {
  return t.category === 'A' && t.elem !== 0 && t.oid !== OID.int2vector && t.oid !== OID.oidvector;
}

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Maps a type (with its typmod) to an Iceberg type and a text decoder. `path` names the column
 * for error messages.
 */
export function mapType(cat: PgTypeCatalog, oid: number, typmod: number, path: string): MappedType {
  const t = cat.get(oid);
  const pgName = t.schema === 'pg_catalog' ? t.name : `${t.schema}.${t.name}`;
  const str = (): MappedType => ({ type: { kind: 'string' }, decode: (s) => s, pgName });
  if (t.typtype === 'd') {
    const base = mapType(cat, t.baseType, t.typmod >= 0 ? t.typmod : typmod, path);
    return { ...base, pgName };
  }
  if (t.typtype === 'e' || t.typtype === 'r' || t.typtype === 'm') return str();
  if (t.typtype === 'p')
    throw new UnsupportedTypeError(`${path}: pseudo-type ${pgName} cannot be replicated`);
  if (t.typtype === 'c') return mapComposite(cat, t, path, pgName);
  if (isArrayType(t)) {
    const el = mapType(cat, t.elem, typmod, `${path}[]`);
    const delim = cat.get(t.elem).delim || ',';
    return {
      type: { kind: 'list', elementId: 0, element: el.type, elementRequired: false },
      // Multi-dimensional values are flattened in row-major order (a list has one dimension).
      decode: (s) => flattenArray(parseArrayLiteral(s, delim)).map((x) => (x === null ? null : el.decode(x))),
      pgName: `${el.pgName}[]`,
    };
  }
  if (STRING_TYPES.has(oid)) return str();
  switch (oid) {
    case OID.bool:
      return { type: { kind: 'boolean' }, decode: parseBool, pgName };
    case OID.int2:
    case OID.int4:
      return { type: { kind: 'int' }, decode: parseInt32, pgName };
    case OID.int8:
    case OID.oid:
      return { type: { kind: 'long' }, decode: parseInt64, pgName };
    case OID.float4:
      return { type: { kind: 'float' }, decode: parseFloat4, pgName };
    case OID.float8:
      return { type: { kind: 'double' }, decode: parseFloat8, pgName };
    case OID.numeric:
      return mapNumeric(typmod, pgName);
    case OID.bytea:
      return { type: { kind: 'binary' }, decode: parseBytea, pgName };
    case OID.date:
      return { type: { kind: 'date' }, decode: parseDateText, pgName };
    case OID.time:
      return { type: { kind: 'time' }, decode: parseTimeText, pgName };
    case OID.timestamp:
      return { type: { kind: 'timestamp' }, decode: parseTimestampText, pgName };
    case OID.timestamptz:
      return { type: { kind: 'timestamptz' }, decode: parseTimestampText, pgName };
    case OID.uuid:
      return { type: { kind: 'uuid' }, decode: (s) => s.toLowerCase(), pgName };
    default:
      // inet, cidr, macaddr, money, bit, varbit, xml, tsvector, geometric types, citext, ...
      return str();
  }
}

/**
 * numeric(P,S) → decimal(P,S) when it fits Iceberg's 38 digits (a negative scale widens the
 * precision at scale 0; a scale above the precision widens the precision to the scale).
 * Unconstrained numeric, and numeric wider than 38 digits, → string with Postgres's exact text:
 * no digit is ever lost. NaN and ±Infinity in a decimal column become null (no decimal holds them).
 */
function mapNumeric(typmod: number, pgName: string): MappedType {
  const ps = numericTypmod(typmod);
  if (ps) {
    let [p, s] = ps;
    if (s < 0) {
      p -= s;
      s = 0;
    } else if (s > p) p = s;
    if (p <= MAX_DECIMAL_PRECISION) {
      return {
        type: { kind: 'decimal', precision: p, scale: s },
        decode: (text) => parseNumericUnscaled(text, s) ?? null,
        pgName: `numeric(${ps[0]},${ps[1]})`,
      };
    }
  }
  return {
    type: { kind: 'string' },
    decode: (text) => text,
    pgName: ps ? `numeric(${ps[0]},${ps[1]})` : pgName,
  };
}

function mapComposite(cat: PgTypeCatalog, t: PgTypeRow, path: string, pgName: string): MappedType {
  const attrs = cat.attributes.get(t.relid) ?? [];
  if (attrs.length === 0)
    throw new UnsupportedTypeError(`${path}: composite type ${pgName} has no attributes`);
  const fields = attrs.map((a) => {
    if (!FIELD_NAME.test(a.name)) {
      throw new UnsupportedTypeError(
        `${path}: attribute ${JSON.stringify(a.name)} of ${pgName} is not a valid Iceberg field name here (letters, digits, underscores)`,
      );
    }
    return { name: a.name, mapped: mapType(cat, a.typeOid, a.typmod, `${path}.${a.name}`) };
  });
  return {
    type: {
      kind: 'struct',
      fields: fields.map((f) => ({ id: 0, name: f.name, required: false, type: f.mapped.type })),
    },
    decode: (s) => {
      const parts = parseRecordLiteral(s);
      // "()" is also how a one-attribute row with a NULL attribute prints.
      return fields.map((f, i) => {
        const v = parts[i];
        return v === null || v === undefined ? null : f.mapped.decode(v);
      });
    },
    pgName,
  };
}

/** Wraps a decoder so its errors name the column. */
export function decodeColumn(decode: TextDecoder, name: string, text: string): Value {
  try {
    return decode(text);
  } catch (e) {
    throw new ValueError(name, (e as Error).message);
  }
}
