/**
 * The Puffin blob `deletion-vector-v1` (Iceberg Puffin spec, "deletion-vector-v1 blob type"):
 *
 *   u32 big-endian length of magic + bitmap | magic D1 D3 39 64 | 64-bit portable Roaring bitmap
 *   | u32 big-endian CRC-32 of magic + bitmap
 *
 * Byte-exact with Iceberg's `BitmapPositionDeleteIndex.serialize()` (see roaring.ts for how the
 * bitmap itself matches Java's run-optimized output).
 */
import * as zlib from 'node:zlib';
import { RoaringBitmap64 } from './roaring.ts';

export const DELETION_VECTOR_MAGIC = new Uint8Array([0xd1, 0xd3, 0x39, 0x64]);
export const DELETION_VECTOR_BLOB_TYPE = 'deletion-vector-v1';

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE, as java.util.zip.CRC32) for Node versions without zlib.crc32 (< 20.15). */
export function crc32Fallback(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 of data, unsigned. */
export function crc32(data: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(data) >>> 0 : crc32Fallback(data);
}

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

/**
 * Decodes a whole `deletion-vector-v1` blob. Throws an Error starting with `name` when the length
 * field, magic, CRC or bitmap is wrong.
 */
export function decodeDeletionVector(blob: Uint8Array, name = 'deletion vector'): RoaringBitmap64 {
  if (blob.length < 4 + 4 + 8 + 4)
    throw new Error(`${name}: too short for a deletion vector (${blob.length} bytes)`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const length = view.getUint32(0, false);
  if (length !== blob.length - 8)
    throw new Error(
      `${name}: deletion vector length field says ${length} bytes of magic + bitmap, the blob holds ${blob.length - 8}`,
    );
  for (let i = 0; i < 4; i++) {
    if (blob[4 + i] !== DELETION_VECTOR_MAGIC[i])
      throw new Error(
        `${name}: not a deletion vector (magic ${hex(blob.subarray(4, 8))}, expected ${hex(DELETION_VECTOR_MAGIC)})`,
      );
  }
  const expected = view.getUint32(blob.length - 4, false);
  const actual = crc32(blob.subarray(4, blob.length - 4));
  if (expected !== actual)
    throw new Error(
      `${name}: invalid CRC in deletion vector: computed 0x${word(actual)}, blob says 0x${word(expected)}`,
    );
  return RoaringBitmap64.deserializePortable(blob.subarray(8, blob.length - 4), name);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

function word(x: number): string {
  return x.toString(16).padStart(8, '0');
}
