import { describe, expect, it } from 'vitest';
import { decodeDeletionVector, encodeDeletionVector } from '../lib/iceberg/deletion-vector.ts';
import {
  PUFFIN_CREATED_BY,
  PUFFIN_MAGIC,
  type PuffinBlobInput,
  puffinBlobBytes,
  puffinFooterSize,
  readPuffinFooter,
  readPuffinFooterFromTail,
  writePuffin,
} from '../lib/iceberg/puffin.ts';
import { RoaringBitmap64 } from '../lib/iceberg/roaring.ts';

const ROW_POSITION_FIELD_ID = 2147483645;
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function positions(...ps: number[]): RoaringBitmap64 {
  const bm = new RoaringBitmap64();
  for (const p of ps) bm.add(p);
  return bm;
}

function dvBlob(file: string, bm: RoaringBitmap64): PuffinBlobInput {
  return {
    type: 'deletion-vector-v1',
    fields: [ROW_POSITION_FIELD_ID],
    snapshotId: -1,
    sequenceNumber: -1,
    properties: { 'referenced-data-file': file, cardinality: String(bm.size) },
    data: encodeDeletionVector(bm),
  };
}

/** Splits a Puffin file into its parts by the spec's layout. */
function footerParts(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const payloadSize = view.getInt32(bytes.length - 12, true);
  const start = bytes.length - 12 - payloadSize - 4;
  return {
    start,
    magic: bytes.subarray(start, start + 4),
    payload: text(bytes.subarray(start + 4, start + 4 + payloadSize)),
    flags: Array.from(bytes.subarray(bytes.length - 8, bytes.length - 4)),
    endMagic: bytes.subarray(bytes.length - 4),
  };
}

describe('Puffin writer and reader', () => {
  const blobs: PuffinBlobInput[] = [
    {
      type: 'apache-datasketches-theta-v1',
      fields: [1, 2],
      snapshotId: 12345,
      sequenceNumber: 7,
      properties: { ndv: '42' },
      data: new Uint8Array([1, 2, 3, 4, 5]),
    },
    { type: 'custom-empty', fields: [], snapshotId: 3, sequenceNumber: 1, data: new Uint8Array(0) },
    {
      type: 'custom-blob',
      fields: [9],
      snapshotId: 3,
      sequenceNumber: 1,
      data: new Uint8Array([0xff, 0, 0xfe]),
    },
  ];

  it('writes magic, blobs back to back and a footer that reads back', () => {
    const { bytes, blobs: metas } = writePuffin(blobs, { 'x-extra': 'yes' });
    expect(Array.from(bytes.subarray(0, 4))).toEqual(Array.from(PUFFIN_MAGIC));
    expect(text(bytes.subarray(0, 4))).toBe('PFA1');
    expect(text(bytes.subarray(bytes.length - 4))).toBe('PFA1');
    expect(metas.map((m) => [m.offset, m.length])).toEqual([
      [4, 5],
      [9, 0],
      [9, 3],
    ]);
    const footer = readPuffinFooter(bytes, 'f.puffin');
    expect(footer.blobs).toEqual(metas);
    expect(footer.properties).toEqual({ 'created-by': PUFFIN_CREATED_BY, 'x-extra': 'yes' });
    blobs.forEach((b, i) => {
      expect(Array.from(puffinBlobBytes(bytes, footer.blobs[i]))).toEqual(Array.from(b.data));
      expect(footer.blobs[i]).toMatchObject({
        type: b.type,
        fields: b.fields,
        'snapshot-id': b.snapshotId,
        'sequence-number': b.sequenceNumber,
      });
    });
    expect(footer.blobs[0].properties).toEqual({ ndv: '42' });
    expect(footer.blobs[1].properties).toBeUndefined();
    expect(footer.blobs.every((b) => b['compression-codec'] === undefined)).toBe(true);
  });

  it('lays the footer out as Magic Payload Size Flags Magic, uncompressed, JSON fields in Java order', () => {
    const { bytes } = writePuffin(blobs);
    const f = footerParts(bytes);
    expect(f.start).toBe(4 + 5 + 0 + 3);
    expect(text(f.magic)).toBe('PFA1');
    expect(text(f.endMagic)).toBe('PFA1');
    expect(f.flags).toEqual([0, 0, 0, 0]);
    const json = JSON.parse(f.payload);
    expect(Object.keys(json)).toEqual(['blobs', 'properties']);
    expect(Object.keys(json.blobs[0])).toEqual([
      'type',
      'fields',
      'snapshot-id',
      'sequence-number',
      'offset',
      'length',
      'properties',
    ]);
    expect(json.properties['created-by']).toBe(PUFFIN_CREATED_BY);
  });

  it('a file without blobs is magic + footer', () => {
    const { bytes, blobs: metas } = writePuffin([]);
    expect(metas).toEqual([]);
    expect(footerParts(bytes).start).toBe(4);
    expect(readPuffinFooter(bytes).blobs).toEqual([]);
  });

  it('reads the footer from just the tail of the file (ranged read)', () => {
    const { bytes } = writePuffin(blobs);
    const size = puffinFooterSize(bytes.subarray(bytes.length - 12));
    expect(size).toBe(bytes.length - footerParts(bytes).start);
    const tail = bytes.slice(bytes.length - size);
    expect(readPuffinFooterFromTail(tail, bytes.length)).toEqual(readPuffinFooter(bytes));
    // A larger tail works too; a too-short one says how much it needs.
    expect(readPuffinFooterFromTail(bytes.slice(2), bytes.length).blobs).toHaveLength(3);
    expect(() => readPuffinFooterFromTail(tail.subarray(1), bytes.length, 't')).toThrow(
      new RegExp(`^t: footer is ${size} bytes, only the last ${size - 1}`),
    );
  });

  it('refuses files that are not Puffin or whose footer is bad', () => {
    const { bytes } = writePuffin(blobs);
    expect(() => readPuffinFooter(bytes.subarray(1), 'x')).toThrow(/^x: not a Puffin file/);
    expect(() => readPuffinFooter(bytes.subarray(0, bytes.length - 1), 'x')).toThrow(/^x: not a Puffin file/);
    const compressed = bytes.slice();
    compressed[compressed.length - 8] = 1;
    expect(() => readPuffinFooter(compressed, 'x')).toThrow(/compressed Puffin footers are not supported/);
    const noFooterMagic = bytes.slice();
    noFooterMagic[footerParts(bytes).start] = 0;
    expect(() => readPuffinFooter(noFooterMagic, 'x')).toThrow(/no magic at the start of the Puffin footer/);
    const hugeSize = bytes.slice();
    new DataView(hugeSize.buffer).setInt32(hugeSize.length - 12, 1 << 20, true);
    expect(() => readPuffinFooter(hugeSize, 'x')).toThrow(/does not fit/);
    // A blob pointing into the footer.
    const liar = writePuffin([{ ...blobs[0], data: new Uint8Array(2) }]).bytes;
    const f = footerParts(liar);
    const payload = f.payload.replace('"length":2', '"length":9');
    const forged = new Uint8Array([...liar.subarray(0, f.start + 4), ...new TextEncoder().encode(payload)]);
    const tail = new Uint8Array(12);
    new DataView(tail.buffer).setInt32(0, payload.length, true);
    tail.set(PUFFIN_MAGIC, 8);
    expect(() => readPuffinFooter(new Uint8Array([...forged, ...tail]), 'x')).toThrow(
      /lies outside the blob area/,
    );
  });
});

describe('deletion vectors in Puffin', () => {
  it('a DV Puffin written by writePuffin reads back, blob by blob', () => {
    const a = positions(0, 1, 2, 4_000_000_000, 5_000_000_000);
    const b = new RoaringBitmap64();
    b.addRange(10, 100_000);
    const { bytes, blobs } = writePuffin([
      dvBlob('s3://bucket/t/data/a.parquet', a),
      dvBlob('s3://bucket/t/data/b.parquet', b),
    ]);
    const footer = readPuffinFooter(bytes, 'dv.puffin');
    expect(footer.blobs).toEqual(blobs);
    expect(footer.properties['created-by']).toBe(PUFFIN_CREATED_BY);
    const [ma, mb] = footer.blobs;
    expect(ma).toEqual({
      type: 'deletion-vector-v1',
      fields: [ROW_POSITION_FIELD_ID],
      'snapshot-id': -1,
      'sequence-number': -1,
      offset: 4,
      length: encodeDeletionVector(a).length,
      properties: { 'referenced-data-file': 's3://bucket/t/data/a.parquet', cardinality: '5' },
    });
    expect(mb.offset).toBe(4 + ma.length);
    expect(mb.properties).toEqual({
      'referenced-data-file': 's3://bucket/t/data/b.parquet',
      cardinality: '99990',
    });
    const da = decodeDeletionVector(bytes.subarray(ma.offset, ma.offset + ma.length), 'a');
    const db = decodeDeletionVector(puffinBlobBytes(bytes, mb), 'b');
    expect(da.toArray()).toEqual([0, 1, 2, 4_000_000_000, 5_000_000_000]);
    expect(db.equals(b)).toBe(true);
    expect(String(db.size)).toBe(mb.properties?.cardinality);
    // The ranged-read path: footer from the tail, blob from its offset.
    const tail = bytes.subarray(bytes.length - puffinFooterSize(bytes.subarray(bytes.length - 12)));
    const fromTail = readPuffinFooterFromTail(tail, bytes.length);
    expect(fromTail.blobs[1]).toEqual(mb);
  });

  it('refuses deletion-vector-v1 blobs that break the spec', () => {
    const ok = dvBlob('s3://b/x.parquet', positions(1));
    expect(() => writePuffin([{ ...ok, snapshotId: 5 }])).toThrow(/must be -1/);
    expect(() => writePuffin([{ ...ok, properties: { cardinality: '1' } }])).toThrow(/referenced-data-file/);
    expect(() =>
      writePuffin([{ ...ok, properties: { 'referenced-data-file': 's3://b/x.parquet' } }]),
    ).toThrow(/cardinality/);
    expect(() => writePuffin([{ ...ok, fields: [1.5] }])).toThrow(/fields/);
  });
});
