/**
 * Operations of a streamed transaction held back by the source because a subtransaction could
 * still roll them back (Postgres streams a transaction's changes before it knows whether a
 * savepoint will be rolled back; a Stream Abort with a subtransaction xid then cancels every
 * change from that subtransaction's first one on). Past `memoryOps` the buffer spills to a
 * local file in chunks (v8 serialization keeps bigints and bytes), so memory stays bounded.
 */

import { randomUUID } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { deserialize, serialize } from 'node:v8';
import type { DecodedOp } from '../../txn/transaction.ts';

interface Chunk {
  offset: number;
  bytes: number;
  count: number;
}

export class OpBuffer {
  private mem: DecodedOp[] = [];
  private readonly chunks: Chunk[] = [];
  private fd: number | undefined;
  private file: string | undefined;
  private fileBytes = 0;
  private spilledCount = 0;

  constructor(
    private readonly dir: string,
    private readonly memoryOps = 20_000,
  ) {}

  get length(): number {
    return this.spilledCount + this.mem.length;
  }

  push(op: DecodedOp): void {
    this.mem.push(op);
    if (this.mem.length >= this.memoryOps) this.spill();
  }

  private spill(): void {
    if (this.fd === undefined) {
      this.file = path.join(this.dir, `pg-stream-${randomUUID()}.ops`);
      this.fd = openSync(this.file, 'w+');
    }
    const data = serialize(this.mem);
    writeSync(this.fd, data, 0, data.length, this.fileBytes);
    this.chunks.push({ offset: this.fileBytes, bytes: data.length, count: this.mem.length });
    this.fileBytes += data.length;
    this.spilledCount += this.mem.length;
    this.mem = [];
  }

  private readChunk(c: Chunk): DecodedOp[] {
    const b = Buffer.alloc(c.bytes);
    readSync(this.fd!, b, 0, c.bytes, c.offset);
    return deserialize(b) as DecodedOp[];
  }

  /** Drops every operation from position `n` on. */
  truncate(n: number): void {
    if (n >= this.length) return;
    if (n >= this.spilledCount) {
      this.mem.length = n - this.spilledCount;
      return;
    }
    // The cut falls in a spilled chunk: keep its head in memory, cut the file before it.
    let before = 0;
    let i = 0;
    while (before + this.chunks[i].count <= n) before += this.chunks[i++].count;
    const c = this.chunks[i];
    const head = this.readChunk(c).slice(0, n - before);
    this.chunks.length = i;
    this.fileBytes = c.offset;
    this.spilledCount = before;
    ftruncateSync(this.fd!, this.fileBytes);
    this.mem = head;
  }

  /** Every operation in order, in batches. */
  *batches(): Generator<DecodedOp[]> {
    for (const c of this.chunks) yield this.readChunk(c);
    if (this.mem.length > 0) yield this.mem;
  }

  dispose(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
      rmSync(this.file!, { force: true });
    }
    this.mem = [];
    this.chunks.length = 0;
    this.spilledCount = 0;
    this.fileBytes = 0;
  }
}
