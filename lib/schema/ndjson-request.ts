/**
 * NDJSON bodies (`Content-Type: application/x-ndjson`): one operation per line, `{"op","row"}`,
 * or a bare row per line with `?op=insert|upsert|delete`. The lines become the JSON request
 * they stand for, byte for byte (`{"ops":[line,line,…]}`), so decoding, validation, exact
 * numbers and the log's record are those of a JSON body; errors name the line.
 */
import { InvalidTransactionError } from './errors.ts';

export const NDJSON = 'application/x-ndjson';
export type NdjsonOp = 'insert' | 'upsert' | 'delete' | undefined;

export function ndjsonOp(op: string | undefined): NdjsonOp {
  if (op === undefined || op === '') return undefined;
  if (op === 'insert' || op === 'upsert' || op === 'delete') return op;
  throw new InvalidTransactionError(`op must be "insert", "upsert" or "delete" (got ${JSON.stringify(op)})`);
}

const enc = new TextEncoder();

/** `{"ops":[...]}` from NDJSON bytes; blank lines are skipped. */
export function ndjsonToRequest(body: Uint8Array, op: NdjsonOp): Uint8Array {
  const parts: Uint8Array[] = [];
  const prefix = op ? enc.encode(`{"op":"${op}","row":`) : undefined;
  const suffix = enc.encode('}');
  let start = 0;
  let lines = 0;
  let size = 0;
  const push = (end: number): void => {
    let e = end;
    if (e > start && body[e - 1] === 0x0d) e--; // CRLF
    let s = start;
    while (s < e && (body[s] === 0x20 || body[s] === 0x09)) s++;
    while (e > s && (body[e - 1] === 0x20 || body[e - 1] === 0x09)) e--;
    if (e === s) return;
    if (body[s] !== 0x7b)
      throw new InvalidTransactionError(`line ${lines + 1}: expected a JSON object`, lines);
    const line = body.subarray(s, e);
    const part = prefix ? concat([prefix, line, suffix]) : line;
    parts.push(part);
    size += part.length + 1;
    lines++;
  };
  for (let i = 0; i < body.length; i++) {
    if (body[i] === 0x0a) {
      push(i);
      start = i + 1;
    }
  }
  push(body.length);
  if (lines === 0) throw new InvalidTransactionError('the NDJSON body has no lines');
  const out = new Uint8Array(size + 9);
  out.set(enc.encode('{"ops":['), 0);
  let at = 8;
  parts.forEach((p, i) => {
    if (i > 0) out[at++] = 0x2c;
    out.set(p, at);
    at += p.length;
  });
  out[at++] = 0x5d;
  out[at++] = 0x7d;
  return out.subarray(0, at);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
