/**
 * Iceberg types: parsed from the API's type names (`long`, `decimal(10,2)`, `list<string>`,
 * `struct<a:int,b:string>` ...) into a tree that carries Iceberg field ids, and printed back
 * both as the API name and as the Iceberg table-metadata JSON form.
 */

export type PrimitiveKind =
  | 'boolean'
  | 'int'
  | 'long'
  | 'float'
  | 'double'
  | 'date'
  | 'time'
  | 'timestamp'
  | 'timestamptz'
  | 'string'
  | 'uuid'
  | 'binary';

export type IcebergType =
  | { kind: PrimitiveKind }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'fixed'; length: number }
  | { kind: 'list'; elementId: number; element: IcebergType; elementRequired: boolean }
  | {
      kind: 'map';
      keyId: number;
      key: IcebergType;
      valueId: number;
      value: IcebergType;
      valueRequired: boolean;
    }
  | { kind: 'struct'; fields: NestedField[] };

export interface NestedField {
  id: number;
  name: string;
  required: boolean;
  type: IcebergType;
  /**
   * v3 `initial-default`: the value rows written before the field existed read as, in its
   * Iceberg single-value JSON form (a primitive; absent: null).
   */
  initialDefault?: string | number | boolean;
}

export type ListType = Extract<IcebergType, { kind: 'list' }>;
export type MapType = Extract<IcebergType, { kind: 'map' }>;
export type StructType = Extract<IcebergType, { kind: 'struct' }>;
export type DecimalType = Extract<IcebergType, { kind: 'decimal' }>;
export type FixedType = Extract<IcebergType, { kind: 'fixed' }>;

const PRIMITIVES: ReadonlySet<string> = new Set<PrimitiveKind>([
  'boolean',
  'int',
  'long',
  'float',
  'double',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'string',
  'uuid',
  'binary',
]);

export class TypeParseError extends Error {}

export function isPrimitive(t: IcebergType): boolean {
  return t.kind !== 'list' && t.kind !== 'map' && t.kind !== 'struct';
}

/**
 * Parses a type name. Nested ids are placeholders (0) until {@link assignFieldIds} runs.
 * Names are case-insensitive for the type keywords; struct field names keep their case.
 */
/** Types nest at most this deep (struct, list and map levels); checked before parsing, without recursion. */
export const MAX_TYPE_DEPTH = 32;

export function parseType(text: string): IcebergType {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3c && ++depth > MAX_TYPE_DEPTH)
      throw new TypeParseError(`type nests deeper than ${MAX_TYPE_DEPTH} levels at position ${i}`);
    if (c === 0x3e) depth--;
  }
  const p = new Parser(text);
  const t = p.type();
  p.skipSpace();
  if (!p.done()) throw new TypeParseError(`unexpected "${text.slice(p.pos)}" after type in "${text}"`);
  return t;
}

class Parser {
  pos = 0;
  constructor(readonly text: string) {}
  done(): boolean {
    return this.pos >= this.text.length;
  }
  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }
  word(): string {
    this.skipSpace();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.pos));
    if (!m) throw new TypeParseError(`expected a type name at position ${this.pos} in "${this.text}"`);
    this.pos += m[0].length;
    return m[0];
  }
  int(): number {
    this.skipSpace();
    const m = /^\d+/.exec(this.text.slice(this.pos));
    if (!m) throw new TypeParseError(`expected a number at position ${this.pos} in "${this.text}"`);
    this.pos += m[0].length;
    return Number(m[0]);
  }
  expect(ch: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== ch) {
      throw new TypeParseError(`expected "${ch}" at position ${this.pos} in "${this.text}"`);
    }
    this.pos++;
  }
  peek(): string | undefined {
    this.skipSpace();
    return this.text[this.pos];
  }
  type(): IcebergType {
    const name = this.word().toLowerCase();
    if (PRIMITIVES.has(name)) return { kind: name as PrimitiveKind };
    switch (name) {
      case 'decimal': {
        this.expect('(');
        const precision = this.int();
        this.expect(',');
        const scale = this.int();
        this.expect(')');
        if (precision < 1 || precision > 38) {
          throw new TypeParseError(`decimal precision must be 1..38, got ${precision}`);
        }
        if (scale > precision)
          throw new TypeParseError(`decimal scale ${scale} exceeds precision ${precision}`);
        return { kind: 'decimal', precision, scale };
      }
      case 'fixed': {
        this.expect('[');
        const length = this.int();
        this.expect(']');
        if (length < 1) throw new TypeParseError('fixed length must be at least 1');
        return { kind: 'fixed', length };
      }
      case 'list': {
        this.expect('<');
        const element = this.type();
        this.expect('>');
        return { kind: 'list', elementId: 0, element, elementRequired: false };
      }
      case 'map': {
        this.expect('<');
        const key = this.type();
        this.expect(',');
        const value = this.type();
        this.expect('>');
        if (!isPrimitive(key)) throw new TypeParseError('map keys must be a primitive type');
        return { kind: 'map', keyId: 0, key, valueId: 0, value, valueRequired: false };
      }
      case 'struct': {
        this.expect('<');
        const fields: NestedField[] = [];
        const seen = new Set<string>();
        for (;;) {
          const fname = this.word();
          if (seen.has(fname))
            throw new TypeParseError(`duplicate struct field "${fname}" in "${this.text}"`);
          seen.add(fname);
          this.expect(':');
          const ftype = this.type();
          fields.push({ id: 0, name: fname, required: false, type: ftype });
          const next = this.peek();
          if (next === ',') {
            this.pos++;
            continue;
          }
          this.expect('>');
          break;
        }
        return { kind: 'struct', fields };
      }
      default:
        throw new TypeParseError(`unknown type "${name}" in "${this.text}"`);
    }
  }
}

/**
 * Assigns Iceberg field ids the way Iceberg does for a new table: top-level fields get 1..n,
 * then nested fields are numbered breadth first. Returns the next free id.
 */
export function assignFieldIds(fields: NestedField[], firstId = 1): number {
  let next = firstId;
  for (const f of fields) f.id = next++;
  const queue: IcebergType[] = fields.map((f) => f.type);
  while (queue.length > 0) {
    const t = queue.shift()!;
    if (t.kind === 'struct') {
      for (const f of t.fields) f.id = next++;
      for (const f of t.fields) queue.push(f.type);
    } else if (t.kind === 'list') {
      t.elementId = next++;
      queue.push(t.element);
    } else if (t.kind === 'map') {
      t.keyId = next++;
      t.valueId = next++;
      queue.push(t.key, t.value);
    }
  }
  return next;
}

export function highestFieldId(fields: NestedField[]): number {
  let max = 0;
  const visit = (t: IcebergType): void => {
    if (t.kind === 'struct') {
      for (const f of t.fields) {
        max = Math.max(max, f.id);
        visit(f.type);
      }
    } else if (t.kind === 'list') {
      max = Math.max(max, t.elementId);
      visit(t.element);
    } else if (t.kind === 'map') {
      max = Math.max(max, t.keyId, t.valueId);
      visit(t.key);
      visit(t.value);
    }
  };
  visit({ kind: 'struct', fields });
  return max;
}

/** The API's name for a type, e.g. `map<string,list<long>>`. */
export function typeName(t: IcebergType): string {
  switch (t.kind) {
    case 'decimal':
      return `decimal(${t.precision},${t.scale})`;
    case 'fixed':
      return `fixed[${t.length}]`;
    case 'list':
      return `list<${typeName(t.element)}>`;
    case 'map':
      return `map<${typeName(t.key)},${typeName(t.value)}>`;
    case 'struct':
      return `struct<${t.fields.map((f) => `${f.name}:${typeName(f.type)}`).join(',')}>`;
    default:
      return t.kind;
  }
}

export type IcebergTypeJson = string | Record<string, unknown>;

/** The type as Iceberg table metadata writes it (spec: "Schemas and Data Types", JSON serialization). */
export function typeToIcebergJson(t: IcebergType): IcebergTypeJson {
  switch (t.kind) {
    case 'decimal':
      return `decimal(${t.precision}, ${t.scale})`;
    case 'fixed':
      return `fixed[${t.length}]`;
    case 'list':
      return {
        type: 'list',
        'element-id': t.elementId,
        element: typeToIcebergJson(t.element),
        'element-required': t.elementRequired,
      };
    case 'map':
      return {
        type: 'map',
        'key-id': t.keyId,
        key: typeToIcebergJson(t.key),
        'value-id': t.valueId,
        value: typeToIcebergJson(t.value),
        'value-required': t.valueRequired,
      };
    case 'struct':
      return { type: 'struct', fields: t.fields.map(fieldToIcebergJson) };
    default:
      return t.kind;
  }
}

export function fieldToIcebergJson(f: NestedField): Record<string, unknown> {
  const j: Record<string, unknown> = {
    id: f.id,
    name: f.name,
    required: f.required,
    type: typeToIcebergJson(f.type),
  };
  if (f.initialDefault !== undefined) j['initial-default'] = f.initialDefault;
  return j;
}

/** Reads the Iceberg metadata JSON form back (used when loading a table from its metadata). */
export function typeFromIcebergJson(j: IcebergTypeJson): IcebergType {
  if (typeof j === 'string') {
    const m = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(j);
    if (m) return { kind: 'decimal', precision: Number(m[1]), scale: Number(m[2]) };
    const f = /^fixed\[(\d+)\]$/.exec(j);
    if (f) return { kind: 'fixed', length: Number(f[1]) };
    if (PRIMITIVES.has(j)) return { kind: j as PrimitiveKind };
    throw new TypeParseError(`unsupported Iceberg type "${j}"`);
  }
  switch (j.type) {
    case 'list':
      return {
        kind: 'list',
        elementId: j['element-id'] as number,
        element: typeFromIcebergJson(j.element as IcebergTypeJson),
        elementRequired: j['element-required'] as boolean,
      };
    case 'map':
      return {
        kind: 'map',
        keyId: j['key-id'] as number,
        key: typeFromIcebergJson(j.key as IcebergTypeJson),
        valueId: j['value-id'] as number,
        value: typeFromIcebergJson(j.value as IcebergTypeJson),
        valueRequired: j['value-required'] as boolean,
      };
    case 'struct':
      return { kind: 'struct', fields: (j.fields as Record<string, unknown>[]).map(fieldFromIcebergJson) };
    default:
      throw new TypeParseError(`unsupported Iceberg type ${JSON.stringify(j)}`);
  }
}

export function fieldFromIcebergJson(j: Record<string, unknown>): NestedField {
  const f: NestedField = {
    id: j.id as number,
    name: j.name as string,
    required: j.required as boolean,
    type: typeFromIcebergJson(j.type as IcebergTypeJson),
  };
  const d = j['initial-default'];
  if (typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean') f.initialDefault = d;
  return f;
}
