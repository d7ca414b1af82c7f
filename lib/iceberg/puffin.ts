/**
 * Puffin files (Iceberg `puffin-spec.md`): magic `PFA1`, blobs, then the footer — magic, a JSON
 * payload describing each blob (type, fields, snapshot id, sequence number, offset, length,
 * properties), the payload's u32 little-endian size, four flag bytes, magic. Blobs and footer
 * are written uncompressed.
 */

export const PUFFIN_MAGIC = new Uint8Array([0x50, 0x46, 0x41, 0x31]);

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

const FOOTER_TRAILER = 4 + 4 + 4; // payload size, flags, magic

export function writePuffin(
  blobs: PuffinBlobInput[],
  properties: Record<string, string> = {},
): { bytes: Uint8Array; blobs: PuffinBlobMeta[] } {
  let offset = PUFFIN_MAGIC.length;
  const metas: PuffinBlobMeta[] = blobs.map((b) => {
    const m: PuffinBlobMeta = {
      type: b.type,
      fields: b.fields,
      'snapshot-id': b.snapshotId,
      'sequence-number': b.sequenceNumber,
      offset,
      length: b.data.length,
    };
    if (b.properties && Object.keys(b.properties).length > 0) m.properties = b.properties;
    offset += b.data.length;
    return m;
  });
  const payload = new TextEncoder().encode(
    JSON.stringify({ blobs: metas, properties: { 'created-by': 'moonlink-serverless', ...properties } }),
  );
  const out = new Uint8Array(offset + PUFFIN_MAGIC.length + payload.length + FOOTER_TRAILER);
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
  const view = new DataView(out.buffer);
  view.setUint32(at, payload.length, true);
  at += 4;
  view.setUint32(at, 0, true); // flags: footer not compressed
  at += 4;
  out.set(PUFFIN_MAGIC, at);
  return { bytes: out, blobs: metas };
}

function hasMagic(bytes: Uint8Array, at: number): boolean {
  return PUFFIN_MAGIC.every((b, i) => bytes[at + i] === b);
}

/** Bytes needed from the end of a file to read its footer, given the payload size. */
export function footerLength(payloadSize: number): number {
  return PUFFIN_MAGIC.length + payloadSize + FOOTER_TRAILER;
}

/**
 * Parses the footer from the last bytes of a Puffin file (`tail` must hold at least the
 * footer; `fileSize` is the whole file's size, for offset checks).
 */
export function readPuffinFooterFromTail(
  tail: Uint8Array,
  fileSize: number,
  name = 'puffin file',
): PuffinFooter {
  if (tail.length < FOOTER_TRAILER) throw new Error(`${name}: too short for a Puffin footer`);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  if (!hasMagic(tail, tail.length - 4)) throw new Error(`${name}: not a Puffin file (no trailing magic)`);
  const flags = view.getUint32(tail.length - 8, true);
  if (flags & 1) throw new Error(`${name}: compressed Puffin footers are not supported`);
  const size = view.getUint32(tail.length - 12, true);
  const start = tail.length - footerLength(size);
  if (start < 0) throw new Error(`${name}: footer of ${size} bytes does not fit in the bytes given`);
  if (!hasMagic(tail, start)) throw new Error(`${name}: footer magic missing`);
  const json = JSON.parse(
    new TextDecoder().decode(tail.subarray(start + 4, start + 4 + size)),
  ) as Partial<PuffinFooter>;
  const blobs = json.blobs ?? [];
  for (const b of blobs) {
    if (b.offset < 4 || b.offset + b.length > fileSize)
      throw new Error(`${name}: blob ${b.type} lies outside the file`);
  }
  return { blobs, properties: json.properties ?? {} };
}

export function readPuffinFooter(bytes: Uint8Array, name = 'puffin file'): PuffinFooter {
  if (!hasMagic(bytes, 0)) throw new Error(`${name}: not a Puffin file (no leading magic)`);
  return readPuffinFooterFromTail(bytes, bytes.length, name);
}
