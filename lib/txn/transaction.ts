/**
 * A write request is one transaction: `{"ops":[{"op":"insert"|"upsert"|"delete","row":{...}}]}`.
 * It is decoded and validated against the table's schema as a whole before anything is
 * accepted; the first bad operation is reported by index and column.
 */

import { isUtf8 } from 'node:buffer';
import { firstDuplicateKey } from '../schema/duplicate-keys.ts';
import { InvalidTransactionError } from '../schema/errors.ts';
import { JsonSyntaxError, parseExactJson, parseJson } from '../schema/exact-json.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import { InexactNumberError, isWellFormed, keyString, type Value, ValueError } from '../schema/values.ts';
import type { DecodedOp, Operations } from './op-batch.ts';
import { scanRequest } from './request-scanner.ts';
import { type RowCodec, rowCodec } from './row-codec.ts';

export { InvalidTransactionError } from '../schema/errors.ts';
export type { DecodedOp, OpKind } from './op-batch.ts';
export { type RowCodec, rowCodec } from './row-codec.ts';

export const DEFAULT_MAX_OPS = 100_000;

/**
 * Decodes one row object; `keyOnly` decodes just the key columns (for deletes). Without a
 * `path`, errors name the column only and no path text is built per value (the fast path: on an
 * error the caller decodes the row again with its path, for the message).
 */
export function decodeRow(
  codec: RowCodec,
  row: unknown,
  path: string | undefined,
  keyOnly: boolean,
): Value[] {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    throw new ValueError(path ?? 'row', 'expected a JSON object with one property per column');
  }
  const obj = row as Record<string, unknown>;
  const n = codec.decoders.length;
  const values: Value[] = new Array(n).fill(null);
  for (const name in obj) {
    if (!codec.columnIndex.has(name)) throw new ValueError(`${path}.${name}`, 'unknown column');
  }
  const fields = codec.schema.fields;
  if (keyOnly) {
    for (const c of codec.keyColumns) {
      const v = obj[fields[c].name];
      if (v === undefined || v === null)
        throw new ValueError(columnPath(codec, c, path), 'is part of the primary key and is required');
      values[c] = codec.decoders[c](v, columnPath(codec, c, path));
    }
    return values;
  }
  for (let c = 0; c < n; c++) {
    const v = obj[fields[c].name];
    values[c] = codec.decoders[c](v === undefined ? null : v, columnPath(codec, c, path));
  }
  return values;
}

function columnPath(codec: RowCodec, c: number, path: string | undefined): string {
  const name = codec.schema.fields[c].name;
  return path === undefined ? name : `${path}.${name}`;
}

export function keyOf(codec: RowCodec, values: Value[]): string | undefined {
  if (codec.keyColumns.length === 0) return undefined;
  if (codec.keyColumns.length === 1) return keyString([values[codec.keyColumns[0]]]);
  return keyString(codec.keyColumns.map((c) => values[c]));
}

/** Validates and decodes a transaction body. Throws {@link InvalidTransactionError}. */
export function decodeTransaction(schema: TableSchema, body: unknown, maxOps = DEFAULT_MAX_OPS): DecodedOp[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidTransactionError('body must be a JSON object {"ops":[...]}');
  }
  const ops = (body as { ops?: unknown }).ops;
  for (const k in body) {
    if (k !== 'ops')
      throw new InvalidTransactionError(`unknown property "${k}" in body; expected {"ops":[...]}`);
  }
  if (!Array.isArray(ops)) throw new InvalidTransactionError('"ops" must be an array of operations');
  if (ops.length === 0) throw new InvalidTransactionError('"ops" is empty');
  if (ops.length > maxOps)
    throw new InvalidTransactionError(`too many operations: ${ops.length} > ${maxOps}`);
  const codec = rowCodec(schema);
  const hasKey = codec.keyColumns.length > 0;
  const out: DecodedOp[] = new Array(ops.length);
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i] as { op?: unknown; row?: unknown };
    if (o === null || typeof o !== 'object' || Array.isArray(o)) {
      throw new InvalidTransactionError(`ops[${i}]: expected {"op": ..., "row": {...}}`, i);
    }
    for (const k in o) {
      if (k !== 'op' && k !== 'row')
        throw new InvalidTransactionError(`ops[${i}]: unknown property "${k}"`, i);
    }
    const op = o.op;
    if (op !== 'insert' && op !== 'upsert' && op !== 'delete') {
      throw new InvalidTransactionError(
        `ops[${i}].op: expected "insert", "upsert" or "delete", got ${JSON.stringify(op) ?? 'nothing'}`,
        i,
      );
    }
    if (!hasKey && op !== 'insert') {
      throw new InvalidTransactionError(
        `ops[${i}]: table has no primary key, so only "insert" is allowed (got "${op}")`,
        i,
      );
    }
    let values: Value[];
    try {
      values = decodeRow(codec, o.row, undefined, op === 'delete');
    } catch (e) {
      if (!(e instanceof ValueError)) throw e;
      // Again with the operation's path, for the message.
      try {
        decodeRow(codec, o.row, `ops[${i}].row`, op === 'delete');
      } catch (withPath) {
        if (withPath instanceof ValueError) throw new InvalidTransactionError(withPath.message, i);
        throw withPath;
      }
      throw new InvalidTransactionError(`ops[${i}].row.${e.message}`, i);
    }
    out[i] = { op, values, key: keyOf(codec, values) };
  }
  return out;
}

/** Parses and decodes a request body, re-parsing exactly only when a number needs it. */
export function decodeTransactionText(
  schema: TableSchema,
  text: string,
  maxOps = DEFAULT_MAX_OPS,
): DecodedOp[] {
  const dup = firstDuplicateKey(text);
  if (dup)
    throw new JsonSyntaxError(`duplicate object key ${JSON.stringify(dup.key)} at position ${dup.offset}`);
  try {
    return decodeTransaction(schema, parseJson(text), maxOps);
  } catch (e) {
    if (!(e instanceof InexactNumberError)) throw e;
    return decodeTransaction(schema, parseExactJson(text), maxOps);
  }
}

const keepBom = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Decodes a request body (UTF-8 bytes): into columns when it has the common shape (see
 * request-scanner.ts), else the general way. `text` is the body as a string, when the caller
 * has it; the general path decodes the bytes otherwise (or when the string is not well-formed
 * UTF-16, so that both paths see the text the bytes hold: the bytes are what the log keeps).
 */
export function decodeRequest(
  schema: TableSchema,
  body: Uint8Array,
  maxOps = DEFAULT_MAX_OPS,
  text?: string,
): Operations {
  const fast = scanRequest(rowCodec(schema), body, maxOps);
  if (fast) return fast;
  if (!isUtf8(body))
    throw new JsonSyntaxError(`request body is not valid UTF-8 (at byte ${firstInvalidUtf8(body)})`);
  const wellFormed = text !== undefined && isWellFormed(text);
  // A byte-order mark stays (and is refused, as JSON.parse refuses it in the text).
  return decodeTransactionText(schema, wellFormed ? text : keepBom.decode(body), maxOps);
}

/** The offset of the first byte of `body` that starts no valid UTF-8 sequence (RFC 3629). */
function firstInvalidUtf8(body: Uint8Array): number {
  for (let i = 0; i < body.length; ) {
    const c = body[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    // Length, and the allowed range of the second byte (no overlongs, surrogates or > U+10FFFF).
    let n = 0;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    if (i + n > body.length || body[i + 1] < lo || body[i + 1] > hi) return i;
    for (let k = 2; k < n; k++) if ((body[i + k] & 0xc0) !== 0x80) return i;
    i += n;
  }
  return body.length;
}
