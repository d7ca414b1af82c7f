/**
 * Decoding JSON transactions on a worker thread (lib/txn/decode-job.ts through
 * decodeRequestIn): the operations rebuilt from the worker's columns are the ones decoding on
 * this thread gives, for every type, nulls, deletes and keyless tables; a body the worker
 * refuses comes back undefined (the route decodes it itself, for the error).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { decodeRequestIn } from '../lib/engine/worker-jobs.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { hash64 } from '../lib/schema/key-hash.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { decodeToParts, operationsFromParts } from '../lib/txn/decode-job.ts';
import { OpBatch, type Operations } from '../lib/txn/op-batch.ts';
import { decodeRequest } from '../lib/txn/transaction.ts';

const pool = new ParquetWorkerPool(1);
afterAll(() => pool.close());

const keyed = buildSchema(
  [
    { name: 'k', type: 'string', nullable: false },
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'd', type: 'double' },
    { name: 'b', type: 'boolean' },
    { name: 'tz', type: 'timestamptz' },
    { name: 's', type: 'string' },
    { name: 'dec', type: 'decimal(10,2)' },
    { name: 'li', type: 'list<int>' },
  ],
  ['k'],
);
// Scalars only: the request scanner's columns (the other schema takes the general path).
const scalar = buildSchema(
  [
    { name: 'k', type: 'string', nullable: false },
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'd', type: 'double' },
    { name: 'b', type: 'boolean' },
    { name: 'tz', type: 'timestamptz' },
    { name: 's', type: 'string' },
  ],
  ['k'],
);
const keyless = buildSchema([
  { name: 'n', type: 'long' },
  { name: 's', type: 'string' },
]);

function body(ops: unknown[]): Uint8Array {
  return Buffer.from(JSON.stringify({ ops }));
}

const rows = Array.from({ length: 3000 }, (_, i) => ({
  op: i % 7 === 3 ? 'delete' : i % 2 ? 'upsert' : 'insert',
  row:
    i % 7 === 3
      ? { k: `key-${i - 1}` }
      : {
          k: `key-${i}`,
          i: i % 5 === 0 ? null : i - 1500,
          l: i % 11 === 0 ? null : String(2n ** 62n + BigInt(i)),
          d: i / 7,
          b: i % 3 === 0 ? null : i % 2 === 0,
          tz: i % 13 === 0 ? null : `2024-05-0${1 + (i % 9)}T12:00:00.${String(i).padStart(6, '0')}Z`,
          s: i % 17 === 0 ? null : `héllo ${i} ✓`,
          dec: `${i}.25`,
          li: i % 4 === 0 ? null : [i, null, -i],
        },
}));

const plain = (ops: Operations) => (ops instanceof OpBatch ? ops.ops() : ops);

describe('decoding on a worker', () => {
  it('rebuilds the operations decoding here gives: every type, nulls, deletes, keyless tables, key hashes', async () => {
    for (const [schema, bytes] of [
      [keyed, body(rows)],
      [scalar, body(rows.map((r) => ({ ...r, row: { ...r.row, dec: undefined, li: undefined } })))],
      [
        scalar,
        body(rows.slice(0, 1).map((r) => ({ ...r, row: { ...r.row, dec: undefined, li: undefined } }))),
      ],
      [
        keyless,
        body(
          Array.from({ length: 500 }, (_, i) => ({ op: 'insert', row: { n: i, s: i % 3 ? `s${i}` : null } })),
        ),
      ],
    ] as const) {
      const here = decodeRequest(schema, bytes, 100_000);
      // In this thread, through the parts, and on the pool's worker.
      const parts = decodeToParts({
        schemaKey: `test-${schema.fields.length}-${bytes.length}`,
        schema,
        bytes,
        maxOps: 100_000,
      });
      expect(parts.kind).not.toBe('refused');
      expect(plain(operationsFromParts(schema, parts)!)).toEqual(plain(here));
      const there = await decodeRequestIn(pool, schema, bytes, 100_000);
      expect(there instanceof OpBatch).toBe(here instanceof OpBatch);
      expect(plain(there!)).toEqual(plain(here));
      if (!(here instanceof OpBatch)) continue;
      // The worker hashed each key as the table's thread would; a keyless batch has no hashes.
      const hashes = (there as OpBatch).keyHashes;
      if (here.keys) {
        expect(hashes).toBeDefined();
        here.keys.forEach((k, i) => {
          expect([hashes!.hi[i], hashes!.lo[i]]).toEqual(hash64(k));
        });
      } else expect(hashes).toBeUndefined();
      // The rebuilt batch takes further operations (a streamed transaction appends batches).
      const grown = there as OpBatch;
      grown.append(here as OpBatch);
      expect(grown.length).toBe(2 * (here as OpBatch).length);
      expect(grown.keyHashes).toBeUndefined(); // its hashes no longer cover every operation
      expect(grown.op(grown.length - 1)).toEqual((here as OpBatch).op((here as OpBatch).length - 1));
    }
  });

  it('reads a body in shared memory in place, as the local server keeps large ones', async () => {
    const bytes = body(
      rows.slice(0, 400).map((r) => ({ ...r, row: { ...r.row, dec: undefined, li: undefined } })),
    );
    const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
    shared.set(bytes);
    const there = await decodeRequestIn(pool, scalar, shared, 100_000);
    expect(plain(there!)).toEqual(plain(decodeRequest(scalar, bytes, 100_000)));
    expect(shared).toEqual(new Uint8Array(bytes)); // still there for the log
  });

  it('refuses what decoding here refuses (the caller then decodes it, for the error)', async () => {
    for (const bytes of [
      Buffer.from('{"ops":[{"op":"insert","row":{"k":"a","i":"not a number"}}]}'),
      Buffer.from('{"ops":[{"op":"insert","row":{"k":"a","nope":1}}]}'),
      Buffer.from('{"ops":['),
      Buffer.from([0xff, 0xfe]),
      body(rows.slice(0, 20)),
    ]) {
      const tooMany = bytes.length > 1000;
      const maxOps = tooMany ? 5 : 100;
      expect(() => decodeRequest(keyed, bytes, maxOps)).toThrow();
      expect(await decodeRequestIn(pool, keyed, bytes, maxOps)).toBeUndefined();
    }
  });
});
