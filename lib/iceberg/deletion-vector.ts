/**
 * The Puffin blob `deletion-vector-v1` (Iceberg spec, "Deletion Vectors"): a big-endian u32
 * length of what follows up to the checksum, the magic bytes D1 D3 39 64, the 64-bit portable
 * Roaring bitmap of deleted positions, and a big-endian CRC-32 of magic + bitmap.
 */
import { crc32 } from 'node:zlib';
import { RoaringBitmap64 } from './roaring.ts';

export const DELETION_VECTOR_MAGIC = new Uint8Array([0xd1, 0xd3, 0x39, 0x64]);
export const DELETION_VECTOR_BLOB_TYPE = 'deletion-vector-v1';

export function encodeDeletionVector(positions: RoaringBitmap64): Uint8Array {
  const bitmap = positions.serializePortable();
  const out = new Uint8Array(4 + 4 + bitmap.length + 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, 4 + bitmap.length, false);
  out.set(DELETION_VECTOR_MAGIC, 4);
  out.set(bitmap, 8);
  view.setUint32(8 + bitmap.length, crc32(out.subarray(4, 8 + bitmap.length)), false);
  return out;
}

export function decodeDeletionVector(blob: Uint8Array, name = 'deletion vector'): RoaringBitmap64 {
  if (blob.length < 12)
    throw new Error(`${name}: a deletion vector needs at least 12 bytes, got ${blob.length}`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const length = view.getUint32(0, false);
  if (length !== blob.length - 8) {
    throw new Error(`${name}: length field says ${length} bytes, the blob holds ${blob.length - 8}`);
  }
  for (let i = 0; i < 4; i++) {
    if (blob[4 + i] !== DELETION_VECTOR_MAGIC[i])
      throw new Error(`${name}: not a deletion vector (bad magic)`);
  }
  const expected = view.getUint32(blob.length - 4, false);
  const actual = crc32(blob.subarray(4, blob.length - 4));
  if (expected !== actual) {
    throw new Error(
      `${name}: invalid CRC 0x${actual.toString(16).padStart(8, '0')}, expected 0x${expected.toString(16).padStart(8, '0')}`,
    );
  }
  return RoaringBitmap64.deserializePortable(blob.subarray(8, blob.length - 4), name);
}
