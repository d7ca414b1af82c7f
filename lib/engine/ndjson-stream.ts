/**
 * NDJSON bodies decoded as they arrive (the embedded server feeds the request's chunks): the
 * lines received so far are cut at the last newline every 256 KiB and decoded as a JSON body
 * of their own (ndjson-request.ts), so decoding overlaps receiving and a large body's work is
 * spread over its chunks. At the end the pieces are one {@link Operations}, the same as the whole
 * body decoded at once. A piece that fails to decode (or too many operations) stops the
 * stream: the route then decodes the whole body the usual way, for the usual error.
 */
import { type NdjsonOp, ndjsonToRequest } from '../schema/ndjson-request.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import { OpBatch, type Operations } from '../txn/op-batch.ts';
import { decodeRequest } from '../txn/transaction.ts';

const PIECE_BYTES = 256 * 1024;

export class NdjsonStreamDecoder {
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private readonly pieces: Operations[] = [];
  private count = 0;
  /** Set once a piece failed: the body is decoded whole instead. */
  failed = false;

  /** Operations decoded so far (before the body ended, too). */
  get decoded(): number {
    return this.count;
  }

  constructor(
    readonly schema: TableSchema,
    private readonly op: NdjsonOp,
    private readonly maxOps: number,
  ) {}

  push(chunk: Uint8Array): void {
    if (this.failed) return;
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes < PIECE_BYTES) return;
    const all = concat(this.held, this.heldBytes);
    const nl = all.lastIndexOf(0x0a);
    if (nl < 0) {
      this.held = [all];
      return;
    }
    this.decode(all.subarray(0, nl + 1));
    const rest = all.subarray(nl + 1);
    this.held = rest.length > 0 ? [rest] : [];
    this.heldBytes = rest.length;
  }

  /** The operations of the whole body, or undefined when it must be decoded whole. */
  end(): Operations | undefined {
    if (!this.failed && this.heldBytes > 0) this.decode(concat(this.held, this.heldBytes));
    this.held = [];
    if (this.failed || this.count === 0) return undefined;
    if (this.pieces.length === 1) return this.pieces[0];
    if (this.pieces.every((p) => p instanceof OpBatch)) {
      const out = new OpBatch(this.schema);
      for (const p of this.pieces as OpBatch[]) out.append(p);
      return out;
    }
    return this.pieces.flatMap((p) => (p instanceof OpBatch ? p.ops() : p));
  }

  private decode(bytes: Uint8Array): void {
    if (isBlank(bytes)) return;
    try {
      const ops = decodeRequest(this.schema, ndjsonToRequest(bytes, this.op), this.maxOps - this.count);
      this.count += ops.length;
      this.pieces.push(ops);
    } catch {
      this.failed = true;
      this.pieces.length = 0;
    }
  }
}

function isBlank(b: Uint8Array): boolean {
  for (const c of b) if (c !== 0x0a && c !== 0x0d && c !== 0x20 && c !== 0x09) return false;
  return true;
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
