/**
 * Avro object container files (Avro spec, "Object Container Files") with the `null` codec:
 * records are encoded with avsc; the header is written here so the writer schema keeps the
 * Iceberg `field-id` attributes avsc would drop, along with Iceberg's file metadata keys.
 */
import { randomBytes } from 'node:crypto';
import avro from 'avsc';

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // "Obj" 1
const metaType = avro.Type.forSchema({ type: 'map', values: 'bytes' });
const longType = avro.Type.forSchema('long');

export type AvroSchemaJson = Record<string, unknown>;

const typeCache = new WeakMap<AvroSchemaJson, avro.Type>();

function typeOf(schema: AvroSchemaJson): avro.Type {
  let t = typeCache.get(schema);
  if (!t) {
    t = avro.Type.forSchema(schema as avro.Schema);
    typeCache.set(schema, t);
  }
  return t;
}

const readerTypes = new Map<string, avro.Type>();

/** Parsed reader types by schema text (manifests of a table share a handful of schemas). */
function readerTypeOf(text: string, schema: AvroSchemaJson): avro.Type {
  let t = readerTypes.get(text);
  if (!t) {
    t = avro.Type.forSchema(schema as avro.Schema);
    if (readerTypes.size > 64) readerTypes.clear();
    readerTypes.set(text, t);
  }
  return t;
}

/** Encodes records as an Avro file; `meta` values are strings (Iceberg stores JSON and numbers as text). */
export function encodeAvroFile(
  schema: AvroSchemaJson,
  records: unknown[],
  meta: Record<string, string>,
): Uint8Array {
  const type = typeOf(schema);
  return encodeAvroFileFromEncoded(
    schema,
    records.map((r) => type.toBuffer(r)),
    records.length,
    meta,
  );
}

/**
 * An Avro file from `count` records already in Avro binary encoding (`chunks` concatenated are
 * the records' encodings, in order), in one block. The header's schema is written as given,
 * attributes (Iceberg field ids) included.
 */
export function encodeAvroFileFromEncoded(
  schema: AvroSchemaJson,
  chunks: Uint8Array[],
  count: number,
  meta: Record<string, string>,
): Uint8Array {
  const header: Record<string, Buffer> = {
    'avro.schema': Buffer.from(JSON.stringify(schema)),
    'avro.codec': Buffer.from('null'),
  };
  for (const [k, v] of Object.entries(meta)) header[k] = Buffer.from(v);
  const sync = randomBytes(16);
  const parts: Uint8Array[] = [MAGIC, metaType.toBuffer(header), sync];
  if (count > 0) {
    let size = 0;
    for (const c of chunks) size += c.length;
    parts.push(longType.toBuffer(count), longType.toBuffer(size));
    for (const c of chunks) parts.push(c);
    parts.push(sync);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** The avsc type of a schema (cached per schema object), to encode records one at a time. */
export function avroTypeOf(schema: AvroSchemaJson): avro.Type {
  return typeOf(schema);
}

export interface AvroFile {
  schema: AvroSchemaJson;
  meta: Record<string, string>;
  records: Record<string, unknown>[];
}

export function decodeAvroFile(bytes: Uint8Array, name = 'avro file'): AvroFile {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!buf.subarray(0, 4).equals(MAGIC)) throw new Error(`${name}: not an Avro file`);
  const h = metaType.decode(buf, 4);
  if (h.offset < 0) throw new Error(`${name}: truncated Avro header`);
  const header = h.value as Record<string, Buffer>;
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(header)) meta[k] = v.toString('utf8');
  const codec = meta['avro.codec'] ?? 'null';
  if (codec !== 'null') throw new Error(`${name}: Avro codec "${codec}" is not supported (only null)`);
  const schemaText = meta['avro.schema'];
  if (schemaText === undefined) throw new Error(`${name}: Avro header has no schema`);
  const schema = JSON.parse(schemaText) as AvroSchemaJson;
  const type = readerTypeOf(schemaText, schema);
  let at = h.offset;
  const sync = buf.subarray(at, at + 16);
  at += 16;
  const records: Record<string, unknown>[] = [];
  while (at < buf.length) {
    const count = longType.decode(buf, at);
    const size = longType.decode(buf, count.offset);
    if (count.offset < 0 || size.offset < 0) throw new Error(`${name}: truncated Avro block`);
    at = size.offset;
    const end = at + (size.value as number);
    for (let i = 0; i < (count.value as number); i++) {
      const r = type.decode(buf, at);
      if (r.offset < 0 || r.offset > end) throw new Error(`${name}: truncated Avro record`);
      records.push(r.value as Record<string, unknown>);
      at = r.offset;
    }
    if (!buf.subarray(end, end + 16).equals(sync)) throw new Error(`${name}: Avro sync marker mismatch`);
    at = end + 16;
  }
  return { schema, meta, records };
}
