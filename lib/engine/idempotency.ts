/**
 * Idempotent writes. A write with an `Idempotency-Key` goes to the log wrapped with its key and
 * a hash of its body: `0x1E {"k": key, "h": hash} 0x1E body` (0x1E starts no JSON and no Arrow
 * stream, so a record says by its first byte whether it is wrapped). The table applies the first
 * record with a key and skips later ones with the same key, at apply time (so two copies racing
 * through the log are still applied once); the keys it applied — their LSN, operation count and
 * body hash — are kept for the retention window, written with every Iceberg commit (an object
 * the snapshot summary names, holding only keys of records the commit covers) and rebuilt on
 * replay from the log for the rest. So a retry after a crash, a restart or a failover to another
 * writer answers the original `{lsn, count}` and applies nothing.
 */
import { createHash } from 'node:crypto';
import { type Lsn, lsnFromText } from '../lsn.ts';

const RS = 0x1e;
const enc = new TextEncoder();
const dec = new TextDecoder();

export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface IdempotentWrite {
  key: string;
  hash: string;
}

export interface IdempotencyRecord {
  lsn: Lsn;
  count: number;
  hash: string;
  /** When it was applied (ms since the epoch); kept for the retention window from then. */
  at: number;
}

/** The request's identity for its key: what was sent, how (content type, op), not just the bytes. */
export function requestHash(contentType: string, query: string, body: Uint8Array): string {
  return createHash('sha256').update(`${contentType}\n${query}\n`).update(body).digest('base64url');
}

/**
 * What a log record says of itself in its header: the write's idempotency key and body hash,
 * and the schema id its body was validated in (a schema change may come between the check and
 * the record's place in the log: the writer decodes it in that schema, then carries it over).
 */
export interface RecordHeader {
  idem?: IdempotentWrite;
  schemaId?: number;
}

/** The body with its header (`0x1E {json} 0x1E body`), or the body itself when there is none. */
export function wrapRecord(h: RecordHeader, body: Uint8Array): Uint8Array {
  const fields: Record<string, unknown> = {};
  if (h.idem) {
    fields.k = h.idem.key;
    fields.h = h.idem.hash;
  }
  if (h.schemaId !== undefined) fields.s = h.schemaId;
  if (Object.keys(fields).length === 0) return body;
  const header = enc.encode(JSON.stringify(fields));
  const out = new Uint8Array(header.length + 2 + body.length);
  out[0] = RS;
  out.set(header, 1);
  out[header.length + 1] = RS;
  out.set(body, header.length + 2);
  return out;
}

export function wrapIdempotent(w: IdempotentWrite, body: Uint8Array): Uint8Array {
  return wrapRecord({ idem: w }, body);
}

/** A record's header and body (an empty header for a plain one). */
export function unwrapRecord(payload: Uint8Array): RecordHeader & { body: Uint8Array } {
  if (payload.length === 0 || payload[0] !== RS) return { body: payload };
  const end = payload.indexOf(RS, 1);
  if (end < 0) throw new Error('log record without the end of its header');
  const h = JSON.parse(dec.decode(payload.subarray(1, end))) as { k?: string; h?: string; s?: number };
  return {
    ...(typeof h.k === 'string' && typeof h.h === 'string' ? { idem: { key: h.k, hash: h.h } } : {}),
    ...(typeof h.s === 'number' ? { schemaId: h.s } : {}),
    body: payload.subarray(end + 1),
  };
}

export interface IdempotencyOptions {
  retentionMs: number;
  /** Most keys kept per table; the oldest go first beyond it. */
  maxKeys: number;
}

/** The keys a table applied, within the retention window. */
export class IdempotencyKeys {
  private readonly keys = new Map<string, IdempotencyRecord>();
  /** Changes since the last commit took a copy. */
  version = 0;

  constructor(private readonly o: IdempotencyOptions) {}

  get size(): number {
    return this.keys.size;
  }

  get(key: string, now = Date.now()): IdempotencyRecord | undefined {
    const r = this.keys.get(key);
    return r && now - r.at <= this.o.retentionMs ? r : undefined;
  }

  add(key: string, r: IdempotencyRecord): void {
    this.keys.delete(key);
    this.keys.set(key, r); // insertion order = application order: the oldest first
    this.version++;
    while (this.keys.size > this.o.maxKeys) this.keys.delete(this.keys.keys().next().value!);
  }

  /** The keys of records at or below `lsn` still within the window, as the commit keeps them. */
  serialize(throughLsn: Lsn, now = Date.now()): { bytes: Uint8Array; complete: boolean } {
    const out: [string, string, number, string, number][] = [];
    let complete = true;
    for (const [k, r] of this.keys) {
      if (r.lsn > throughLsn) complete = false;
      else if (now - r.at <= this.o.retentionMs) out.push([k, r.lsn.toString(), r.count, r.hash, r.at]);
    }
    return { bytes: enc.encode(JSON.stringify({ format: 'moonlink-idempotency-1', keys: out })), complete };
  }

  static parse(bytes: Uint8Array, o: IdempotencyOptions, now = Date.now()): IdempotencyKeys {
    const j = JSON.parse(dec.decode(bytes)) as {
      format: string;
      keys: [string, string, number, string, number][];
    };
    if (j.format !== 'moonlink-idempotency-1')
      throw new Error(`not an idempotency object (${String(j.format)})`);
    const keys = new IdempotencyKeys(o);
    for (const [k, lsn, count, hash, at] of j.keys)
      if (now - at <= o.retentionMs) keys.keys.set(k, { lsn: lsnFromText(lsn), count, hash, at });
    return keys;
  }
}
