/**
 * Puffin files (Iceberg `format/puffin-spec.md`):
 *
 *   Magic Blob₁ … Blobₙ Footer        Footer = Magic FooterPayload FooterPayloadSize Flags Magic
 *
 * Magic is `PFA1` (50 46 41 31); FooterPayload is UTF-8 JSON `{"blobs":[…],"properties":{…}}`;
 * FooterPayloadSize is a little-endian i32; Flags are 4 bytes, bit 0 of byte 0 meaning "payload
 * is LZ4-compressed". This module writes blobs and the footer uncompressed (what
 * `deletion-vector-v1` requires) and reads uncompressed footers; blob metadata JSON fields are in
 * the order Java's `FileMetadataParser` writes them.
 */

export const PUFFIN_MAGIC = new Uint8Array([0x50, 0x46, 0x41, 0x31]);
export const PUFFIN_CREATED_BY = 'moonlink-serverless';

export interface PuffinBlobInput {
  type: string;
  fields: number[];
  snapshotId: number;
  sequenceNumber: number;
  properties?: Record<string, string>;
  data: Uint8Array;
}

export interface PuffinBlobMeta {
  type: string;
  fields: number[];
  'snapshot-id': number;
  'sequence-number': number;
  offset: number;
  length: number;
  'compression-codec'?: string;
  properties?: Record<string, string>;
}

export interface PuffinFooter {
  blobs: PuffinBlobMeta[];
  properties: Record<string, string>;
}

/** Footer bytes after the payload: payload size, flags, magic. */
const TRAILER = 12;
const FLAG_FOOTER_COMPRESSED = 1;

/**
 * Writes a Puffin file with the blobs stored back to back after the leading magic, uncompressed.
 * `created-by` is set unless `properties` gives one. `deletion-vector-v1` blobs are checked
 * against the spec's rules (snapshot id and sequence number -1, `referenced-data-file` and
 * `cardinality` properties).
 */
export function writePuffin(
  blobs: PuffinBlobInput[],
  properties: Record<string, string> = {},
): { bytes: Uint8Array; blobs: PuffinBlobMeta[] } {
  let offset = PUFFIN_MAGIC.length;
  const metas: PuffinBlobMeta[] = blobs.map((b, i) => {
    checkBlob(b, i);
    const m: PuffinBlobMeta = {
      type: b.type,
      fields: [...b.fields],
      'snapshot-id': b.snapshotId,
      'sequence-number': b.sequenceNumber,
      offset,
      length: b.data.length,
    };
    if (b.properties && Object.keys(b.properties).length > 0) m.properties = { ...b.properties };
    offset += b.data.length;
    return m;
  });
  checkProperties(properties, 'file properties');
  const payload = new TextEncoder().encode(
    JSON.stringify({ blobs: metas, properties: { 'created-by': PUFFIN_CREATED_BY, ...properties } }),
  );
  const out = new Uint8Array(offset + PUFFIN_MAGIC.length + payload.length + TRAILER);
  const view = new DataView(out.buffer);
  out.set(PUFFIN_MAGIC, 0);
  let at = PUFFIN_MAGIC.length;
  for (const b of blobs) {
    out.set(b.data, at);
    at += b.data.length;
  }
  out.set(PUFFIN_MAGIC, at);
  at += PUFFIN_MAGIC.length;
  out.set(payload, at);
  at += payload.length;
  view.setInt32(at, payload.length, true);
  view.setUint32(at + 4, 0, true); // flags: footer payload not compressed
  out.set(PUFFIN_MAGIC, at + 8);
  return { bytes: out, blobs: metas };
}

function checkBlob(b: PuffinBlobInput, i: number): void {
  const what = `puffin blob ${i} (${b.type})`;
  if (typeof b.type !== 'string' || b.type === '') throw new Error(`puffin blob ${i}: no type`);
  if (!Array.isArray(b.fields) || !b.fields.every((f) => Number.isInteger(f)))
    throw new Error(`${what}: fields must be a list of integer field ids`);
  if (!Number.isSafeInteger(b.snapshotId) || !Number.isSafeInteger(b.sequenceNumber))
    throw new Error(`${what}: snapshot id and sequence number must be integers`);
  checkProperties(b.properties ?? {}, what);
  if (b.type === 'deletion-vector-v1') {
    if (b.snapshotId !== -1 || b.sequenceNumber !== -1)
      throw new Error(`${what}: snapshot-id and sequence-number must be -1`);
    const p = b.properties ?? {};
    if (!p['referenced-data-file']) throw new Error(`${what}: the referenced-data-file property is required`);
    if (!/^(0|[1-9][0-9]*)$/.test(p.cardinality ?? ''))
      throw new Error(`${what}: the cardinality property must be a non-negative integer`);
  }
}

function checkProperties(p: Record<string, string>, what: string): void {
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'string') throw new Error(`${what}: property ${k} must be a string`);
  }
}

function hasMagic(bytes: Uint8Array, at: number): boolean {
  if (at < 0 || at + 4 > bytes.length) return false;
  for (let i = 0; i < 4; i++) if (bytes[at + i] !== PUFFIN_MAGIC[i]) return false;
  return true;
}

/** Footer length (magic + payload + size + flags + magic) for a payload of `payloadSize` bytes. */
export function footerLength(payloadSize: number): number {
  return PUFFIN_MAGIC.length + payloadSize + TRAILER;
}

/**
 * How many bytes from the end of the file the footer occupies, from at least the last 12 bytes
 * of the file. Lets a reader fetch a guessed tail, then fetch more if the footer is longer.
 */
export function puffinFooterSize(tail: Uint8Array, name = 'puffin file'): number {
  if (tail.length < TRAILER) throw new Error(`${name}: need the last ${TRAILER} bytes to size the footer`);
  if (!hasMagic(tail, tail.length - 4)) throw new Error(`${name}: not a Puffin file (no magic at the end)`);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  const size = view.getInt32(tail.length - TRAILER, true);
  if (size < 0) throw new Error(`${name}: negative Puffin footer payload size ${size}`);
  return footerLength(size);
}

/**
 * Parses the footer from the last bytes of a Puffin file, for ranged reads: `tail` must hold at
 * least the footer (see puffinFooterSize), `fileSize` is the whole file's size.
 */
export function readPuffinFooterFromTail(
  tail: Uint8Array,
  fileSize: number,
  name = 'puffin file',
): PuffinFooter {
  const total = puffinFooterSize(tail, name);
  if (total + PUFFIN_MAGIC.length > fileSize)
    throw new Error(`${name}: footer of ${total} bytes does not fit in a ${fileSize}-byte file`);
  if (total > tail.length)
    throw new Error(`${name}: footer is ${total} bytes, only the last ${tail.length} were given`);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  const flags = view.getUint32(tail.length - 8, true);
  if (flags & FLAG_FOOTER_COMPRESSED) throw new Error(`${name}: compressed Puffin footers are not supported`);
  const start = tail.length - total;
  if (!hasMagic(tail, start)) throw new Error(`${name}: no magic at the start of the Puffin footer`);
  const payloadEnd = tail.length - TRAILER;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(tail.subarray(start + 4, payloadEnd)));
  } catch (e) {
    throw new Error(`${name}: Puffin footer is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  return parseFooter(json, fileSize - total, name);
}

/** Reads the footer of a whole Puffin file held in memory. */
export function readPuffinFooter(bytes: Uint8Array, name = 'puffin file'): PuffinFooter {
  if (!hasMagic(bytes, 0)) throw new Error(`${name}: not a Puffin file (no magic at the start)`);
  return readPuffinFooterFromTail(bytes, bytes.length, name);
}

/** The bytes of one blob of a whole Puffin file. */
export function puffinBlobBytes(bytes: Uint8Array, blob: PuffinBlobMeta): Uint8Array {
  return bytes.subarray(blob.offset, blob.offset + blob.length);
}

function parseFooter(json: unknown, footerStart: number, name: string): PuffinFooter {
  const bad = (msg: string): never => {
    throw new Error(`${name}: invalid Puffin footer: ${msg}`);
  };
  if (!isObject(json)) return bad('not a JSON object');
  if (!Array.isArray(json.blobs)) return bad('no blobs list');
  const properties = json.properties === undefined ? {} : json.properties;
  if (!isStringMap(properties)) return bad('properties must map strings to strings');
  const blobs = json.blobs.map((b: unknown, i: number): PuffinBlobMeta => {
    if (!isObject(b)) return bad(`blob ${i} is not an object`);
    const { type, fields, offset, length } = b;
    const snapshotId = b['snapshot-id'];
    const sequenceNumber = b['sequence-number'];
    if (typeof type !== 'string') return bad(`blob ${i} has no type`);
    if (!Array.isArray(fields) || !fields.every((f) => Number.isInteger(f)))
      return bad(`blob ${i} fields must be a list of integers`);
    if (!Number.isInteger(snapshotId) || !Number.isInteger(sequenceNumber))
      return bad(`blob ${i} needs integer snapshot-id and sequence-number`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length))
      return bad(`blob ${i} needs integer offset and length`);
    const off = offset as number;
    const len = length as number;
    if (off < PUFFIN_MAGIC.length || len < 0 || off + len > footerStart)
      return bad(
        `blob ${i} (${type}) at [${off}, ${off + len}) lies outside the blob area [4, ${footerStart})`,
      );
    const m: PuffinBlobMeta = {
      type,
      fields: fields as number[],
      'snapshot-id': snapshotId as number,
      'sequence-number': sequenceNumber as number,
      offset: off,
      length: len,
    };
    const codec = b['compression-codec'];
    if (codec !== undefined && codec !== null) {
      if (typeof codec !== 'string') return bad(`blob ${i} compression-codec must be a string`);
      m['compression-codec'] = codec;
    }
    if (b.properties !== undefined) {
      if (!isStringMap(b.properties)) return bad(`blob ${i} properties must map strings to strings`);
      m.properties = b.properties;
    }
    return m;
  });
  return { blobs, properties };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isStringMap(x: unknown): x is Record<string, string> {
  return isObject(x) && Object.values(x).every((v) => typeof v === 'string');
}
