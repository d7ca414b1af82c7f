/**
 * The replication protocol pieces on their own: pgoutput v2 decoding (including the stream
 * messages and the xid that data messages carry inside a stream block), the frames of the
 * replication connection and status updates, and the held-back operation buffer that a
 * rolled-back savepoint truncates (in memory and spilled to disk).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OpBuffer } from '../lib/sources/postgres/op-buffer.ts';
import {
  PgOutputDecoder,
  parseReplicationFrame,
  standbyStatusUpdate,
} from '../lib/sources/postgres/pgoutput.ts';
import type { DecodedOp } from '../lib/txn/transaction.ts';

/** Builds binary messages the way the server writes them. */
class W {
  parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  ch(c: string): this {
    return this.u8(c.charCodeAt(0));
  }
  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  i64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    this.parts.push(Buffer.from(`${s}\0`));
    return this;
  }
  text(s: string): this {
    const b = Buffer.from(s);
    return this.ch('t').i32(b.length).append(b);
  }
  append(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

describe('pgoutput decoding', () => {
  it('decodes a transaction sent whole', () => {
    const d = new PgOutputDecoder();
    expect(d.decode(new W().ch('B').i64(0x100n).i64(5n).i32(42).done())).toEqual({
      tag: 'begin',
      finalLsn: 0x100n,
      commitTime: 5n,
      xid: 42,
    });
    const rel = d.decode(
      new W()
        .ch('R')
        .i32(16384)
        .str('public')
        .str('t')
        .ch('f')
        .i16(2)
        .u8(1)
        .str('id')
        .i32(23)
        .i32(-1)
        .u8(0)
        .str('v')
        .i32(25)
        .i32(-1)
        .done(),
    );
    expect(rel).toMatchObject({
      tag: 'relation',
      oid: 16384,
      schema: 'public',
      name: 't',
      replicaIdentity: 'f',
    });
    expect(rel.tag === 'relation' && rel.columns.map((c) => c.name)).toEqual(['id', 'v']);
    expect(d.decode(new W().ch('I').i32(16384).ch('N').i16(2).text('1').ch('n').done())).toEqual({
      tag: 'insert',
      xid: undefined,
      oid: 16384,
      tuple: ['1', null],
    });
    // An update with the old row (REPLICA IDENTITY FULL) and an unchanged TOAST value.
    expect(
      d.decode(
        new W()
          .ch('U')
          .i32(16384)
          .ch('O')
          .i16(2)
          .text('1')
          .text('old')
          .ch('N')
          .i16(2)
          .text('2')
          .ch('u')
          .done(),
      ),
    ).toEqual({
      tag: 'update',
      xid: undefined,
      oid: 16384,
      oldKind: 'O',
      old: ['1', 'old'],
      tuple: ['2', undefined],
    });
    expect(d.decode(new W().ch('D').i32(16384).ch('K').i16(2).text('2').ch('n').done())).toEqual({
      tag: 'delete',
      xid: undefined,
      oid: 16384,
      oldKind: 'K',
      old: ['2', null],
    });
    expect(d.decode(new W().ch('T').i32(2).u8(1).i32(16384).i32(16390).done())).toEqual({
      tag: 'truncate',
      xid: undefined,
      options: 1,
      oids: [16384, 16390],
    });
    expect(d.decode(new W().ch('C').u8(0).i64(0x200n).i64(0x228n).i64(7n).done())).toEqual({
      tag: 'commit',
      flags: 0,
      commitLsn: 0x200n,
      endLsn: 0x228n,
      commitTime: 7n,
    });
  });

  it('decodes streamed transactions: data messages inside a stream block carry an xid', () => {
    const d = new PgOutputDecoder();
    expect(d.decode(new W().ch('S').i32(700).u8(1).done())).toEqual({
      tag: 'stream-start',
      xid: 700,
      first: true,
    });
    expect(d.decode(new W().ch('I').i32(701).i32(16384).ch('N').i16(1).text('x').done())).toEqual({
      tag: 'insert',
      xid: 701,
      oid: 16384,
      tuple: ['x'],
    });
    expect(d.decode(new W().ch('E').done())).toEqual({ tag: 'stream-stop' });
    // Outside the block there is no xid again.
    expect(d.decode(new W().ch('I').i32(16384).ch('N').i16(1).text('y').done())).toMatchObject({
      xid: undefined,
      oid: 16384,
    });
    expect(d.decode(new W().ch('A').i32(700).i32(701).done())).toEqual({
      tag: 'stream-abort',
      xid: 700,
      subxid: 701,
    });
    expect(d.decode(new W().ch('c').i32(700).u8(0).i64(0x300n).i64(0x330n).i64(9n).done())).toEqual({
      tag: 'stream-commit',
      xid: 700,
      flags: 0,
      commitLsn: 0x300n,
      endLsn: 0x330n,
      commitTime: 9n,
    });
  });

  it('reads replication frames and writes status updates that confirm only the durable LSN', () => {
    const data = new W().ch('w').i64(0x10n).i64(0x20n).i64(0n).ch('E').done();
    expect(parseReplicationFrame(data)).toMatchObject({ kind: 'xlog', walStart: 0x10n, walEnd: 0x20n });
    const ka = new W().ch('k').i64(0x99n).i64(0n).u8(1).done();
    expect(parseReplicationFrame(ka)).toEqual({ kind: 'keepalive', walEnd: 0x99n, replyRequested: true });
    const st = standbyStatusUpdate(0x99n, 0x40n, true);
    expect(st[0]).toBe('r'.charCodeAt(0));
    expect(st.readBigUInt64BE(1)).toBe(0x99n); // written: received
    expect(st.readBigUInt64BE(9)).toBe(0x40n); // flushed: durable in Iceberg
    expect(st.readBigUInt64BE(17)).toBe(0x40n); // applied
    expect(st[33]).toBe(1);
    // Never reports less written than flushed.
    expect(standbyStatusUpdate(0n, 0x40n).readBigUInt64BE(1)).toBe(0x40n);
  });
});

describe('held-back operations of a streamed transaction', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  });

  const op = (i: number): DecodedOp => ({
    op: 'insert',
    values: [BigInt(i), new Uint8Array([i & 0xff]), `v${i}`],
    key: String(i),
  });
  const ids = (b: OpBuffer) => [...b.batches()].flat().map((o) => Number(o.values[0] as bigint));

  it('keeps order and values across spills, and truncates inside a spilled chunk or in memory', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlopbuf-'));
    dirs.push(dir);
    const b = new OpBuffer(dir, 4);
    for (let i = 0; i < 23; i++) b.push(op(i));
    expect(b.length).toBe(23);
    expect((await fs.readdir(dir)).length).toBe(1);
    const all = [...b.batches()].flat();
    expect(all.map((o) => Number(o.values[0] as bigint))).toEqual([...Array(23).keys()]);
    expect(all[5].values[1]).toEqual(new Uint8Array([5]));
    expect(all[5].values[0]).toBe(5n);
    b.truncate(21); // in memory
    expect(ids(b)).toEqual([...Array(21).keys()]);
    b.truncate(10); // inside the third spilled chunk
    expect(ids(b)).toEqual([...Array(10).keys()]);
    for (let i = 100; i < 110; i++) b.push(op(i));
    expect(ids(b)).toEqual([...[...Array(10).keys()], ...Array.from({ length: 10 }, (_, i) => 100 + i)]);
    b.truncate(0);
    expect(b.length).toBe(0);
    expect(ids(b)).toEqual([]);
    b.dispose();
    expect(await fs.readdir(dir)).toEqual([]);
  });
});
