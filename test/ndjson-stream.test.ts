/**
 * NDJSON bodies decoded as they arrive (lib/engine/ndjson-stream.ts): the same operations as
 * the whole body decoded at once, whatever the chunking (lines split across chunks, CRLF, blank
 * lines, bare rows with ?op=), decoding under way before the body ends, and any bad piece
 * handing the body back to the whole decode (which gives the usual error).
 */
import { describe, expect, it } from 'vitest';
import { NdjsonStreamDecoder } from '../lib/engine/ndjson-stream.ts';
import { ndjsonToRequest } from '../lib/schema/ndjson-request.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { OpBatch, type Operations } from '../lib/txn/op-batch.ts';
import { decodeRequest } from '../lib/txn/transaction.ts';

const schema = buildSchema(
  [
    { name: 'id', type: 'long' },
    { name: 'name', type: 'string' },
    { name: 'amount', type: 'decimal(12,2)', nullable: true },
  ],
  ['id'],
);
const enc = new TextEncoder();
const show = (ops: Operations) =>
  JSON.stringify(
    (ops instanceof OpBatch ? ops.ops() : ops).map((o) => [o.op, o.key, o.values]),
    (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
  );

function body(n: number, seed: number, bare: boolean): Uint8Array {
  let x = seed;
  const rand = (k: number) => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % k;
  };
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const row = {
      id: i,
      name: `n${i}`.repeat(1 + rand(20)),
      amount: rand(3) === 0 ? null : `${rand(9999)}.${rand(99)}`,
    };
    lines.push(bare ? JSON.stringify(row) : JSON.stringify({ op: rand(4) === 0 ? 'upsert' : 'insert', row }));
    if (rand(50) === 0) lines.push('');
  }
  return enc.encode(lines.join(rand(2) === 0 ? '\n' : '\r\n'));
}

describe('NDJSON decoded as it arrives', () => {
  it('equals the whole decode for any chunking, and decodes before the end', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const bare = seed % 3 === 0;
      const op = bare ? 'upsert' : undefined;
      const b = body(3000 + seed * 500, seed, bare);
      const whole = decodeRequest(schema, ndjsonToRequest(b, op), 1e6);
      const d = new NdjsonStreamDecoder(schema, op, 1e6);
      let at = 0;
      let before = 0;
      while (at < b.length) {
        const n = 1 + ((seed * 7919 + at) % 70_000);
        d.push(b.subarray(at, at + n));
        at += n;
        if (at < b.length) before = d.decoded;
      }
      expect(before, `seed ${seed}`).toBeGreaterThan(0);
      const streamed = d.end();
      expect(streamed, `seed ${seed}`).toBeDefined();
      expect(show(streamed!)).toBe(show(whole));
    }
  });

  it('hands a body with a bad line, or too many operations, back to the whole decode', () => {
    const good = body(4000, 5, false);
    const bad = new Uint8Array([...good, ...enc.encode('\n{"op":"insert","row":{"id":"x"}}\n')]);
    const d = new NdjsonStreamDecoder(schema, undefined, 1e6);
    d.push(bad);
    expect(d.end()).toBeUndefined();
    expect(d.failed).toBe(true);
    const few = new NdjsonStreamDecoder(schema, undefined, 100);
    few.push(good);
    expect(few.end()).toBeUndefined();
    expect(() => decodeRequest(schema, ndjsonToRequest(good, undefined), 100)).toThrow();
    // Empty or blank bodies: the route decodes them (and refuses them).
    const blank = new NdjsonStreamDecoder(schema, undefined, 1e6);
    blank.push(enc.encode('\n\n  \n'));
    expect(blank.end()).toBeUndefined();
  });
});
