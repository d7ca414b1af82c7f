/**
 * pgoutput logical replication messages, protocol version 2 (streaming of in-progress
 * transactions), as documented in "Logical Replication Message Formats" of the Postgres manual.
 * Values stay in text form here (`null` for SQL NULL, `undefined` for an unchanged TOAST value);
 * type-aware decoding happens in pg-schema.ts.
 *
 * Inside a stream block (Stream Start … Stream Stop) data messages carry the xid of the
 * (sub)transaction that made the change; the decoder tracks whether it is in one.
 */
import { asLsn, type Lsn } from '../../lsn.ts';

export type TupleText = (string | null | undefined)[];

export interface RelationColumn {
  flags: number;
  name: string;
  typeOid: number;
  typmod: number;
}

export type PgOutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; commitTime: bigint; xid: number }
  | { tag: 'commit'; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint }
  | { tag: 'origin'; lsn: Lsn; name: string }
  | {
      tag: 'relation';
      xid?: number;
      oid: number;
      schema: string;
      name: string;
      replicaIdentity: string;
      columns: RelationColumn[];
    }
  | { tag: 'type'; xid?: number; oid: number; schema: string; name: string }
  | { tag: 'insert'; xid?: number; oid: number; tuple: TupleText }
  | {
      tag: 'update';
      xid?: number;
      oid: number;
      /** 'K': the old key columns only; 'O': the whole old row (REPLICA IDENTITY FULL). */
      oldKind?: 'K' | 'O';
      old?: TupleText;
      tuple: TupleText;
    }
  | { tag: 'delete'; xid?: number; oid: number; oldKind: 'K' | 'O'; old: TupleText }
  | { tag: 'truncate'; xid?: number; options: number; oids: number[] }
  | { tag: 'message'; xid?: number; flags: number; lsn: Lsn; prefix: string; content: Buffer }
  | { tag: 'stream-start'; xid: number; first: boolean }
  | { tag: 'stream-stop' }
  | {
      tag: 'stream-commit';
      xid: number;
      flags: number;
      commitLsn: Lsn;
      endLsn: Lsn;
      commitTime: bigint;
    }
  | { tag: 'stream-abort'; xid: number; subxid: number };

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  u8(): number {
    return this.buf.readUInt8(this.pos++);
  }
  i16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  lsn(): Lsn {
    return asLsn(this.u64());
  }

  i64(): bigint {
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  str(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new Error('pgoutput: unterminated string');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

function tuple(r: Reader): TupleText {
  const n = r.i16();
  const out: TupleText = new Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    switch (kind) {
      case 0x6e: // n
        out[i] = null;
        break;
      case 0x75: // u: unchanged TOASTed value, not sent
        out[i] = undefined;
        break;
      case 0x74: {
        // t
        const len = r.i32();
        out[i] = r.buf.toString('utf8', r.pos, r.pos + len);
        r.pos += len;
        break;
      }
      case 0x62: // b: binary, only with the `binary` option, which the source does not ask for
        throw new Error('pgoutput: binary tuple data is not supported');
      default:
        throw new Error(`pgoutput: unknown tuple data kind ${String.fromCharCode(kind)}`);
    }
  }
  return out;
}

/** Stateful decoder (it knows whether a stream block is open). */
export class PgOutputDecoder {
  private inStream = false;

  reset(): void {
    this.inStream = false;
  }

  decode(buf: Buffer): PgOutputMessage {
    const r = new Reader(buf);
    const tag = r.u8();
    const xid = (): number | undefined => (this.inStream ? r.u32() : undefined);
    switch (tag) {
      case 0x42: // B
        return { tag: 'begin', finalLsn: r.lsn(), commitTime: r.i64(), xid: r.u32() };
      case 0x43: // C
        return { tag: 'commit', flags: r.u8(), commitLsn: r.lsn(), endLsn: r.lsn(), commitTime: r.i64() };
      case 0x4f: // O
        return { tag: 'origin', lsn: r.lsn(), name: r.str() };
      case 0x52: {
        // R
        const x = xid();
        const oid = r.u32();
        const schema = r.str();
        const name = r.str();
        const replicaIdentity = String.fromCharCode(r.u8());
        const n = r.i16();
        const columns: RelationColumn[] = [];
        for (let i = 0; i < n; i++) {
          columns.push({ flags: r.u8(), name: r.str(), typeOid: r.u32(), typmod: r.i32() });
        }
        return { tag: 'relation', xid: x, oid, schema, name, replicaIdentity, columns };
      }
      case 0x59: {
        // Y
        const x = xid();
        return { tag: 'type', xid: x, oid: r.u32(), schema: r.str(), name: r.str() };
      }
      case 0x49: {
        // I
        const x = xid();
        const oid = r.u32();
        const n = r.u8();
        if (n !== 0x4e) throw new Error('pgoutput: insert without a new tuple');
        return { tag: 'insert', xid: x, oid, tuple: tuple(r) };
      }
      case 0x55: {
        // U
        const x = xid();
        const oid = r.u32();
        let kind = r.u8();
        let oldKind: 'K' | 'O' | undefined;
        let old: TupleText | undefined;
        if (kind === 0x4b || kind === 0x4f) {
          oldKind = kind === 0x4b ? 'K' : 'O';
          old = tuple(r);
          kind = r.u8();
        }
        if (kind !== 0x4e) throw new Error('pgoutput: update without a new tuple');
        return { tag: 'update', xid: x, oid, oldKind, old, tuple: tuple(r) };
      }
      case 0x44: {
        // D
        const x = xid();
        const oid = r.u32();
        const kind = r.u8();
        if (kind !== 0x4b && kind !== 0x4f) throw new Error('pgoutput: delete without an old tuple');
        return { tag: 'delete', xid: x, oid, oldKind: kind === 0x4b ? 'K' : 'O', old: tuple(r) };
      }
      case 0x54: {
        // T
        const x = xid();
        const n = r.i32();
        const options = r.u8();
        const oids: number[] = [];
        for (let i = 0; i < n; i++) oids.push(r.u32());
        return { tag: 'truncate', xid: x, options, oids };
      }
      case 0x4d: {
        // M
        const x = xid();
        const flags = r.u8();
        const lsn = r.lsn();
        const prefix = r.str();
        const len = r.i32();
        return { tag: 'message', xid: x, flags, lsn, prefix, content: r.bytes(len) };
      }
      case 0x53: {
        // S
        const m = { tag: 'stream-start' as const, xid: r.u32(), first: r.u8() === 1 };
        this.inStream = true;
        return m;
      }
      case 0x45: // E
        this.inStream = false;
        return { tag: 'stream-stop' };
      case 0x63: // c
        return {
          tag: 'stream-commit',
          xid: r.u32(),
          flags: r.u8(),
          commitLsn: r.lsn(),
          endLsn: r.lsn(),
          commitTime: r.i64(),
        };
      case 0x41: // A
        return { tag: 'stream-abort', xid: r.u32(), subxid: r.u32() };
      default:
        throw new Error(`pgoutput: unknown message type ${JSON.stringify(String.fromCharCode(tag))}`);
    }
  }
}

// ---- the replication protocol's own CopyData messages ---------------------------------------

/** Microseconds between 1970-01-01 and 2000-01-01 (Postgres's epoch). */
const PG_EPOCH_MICROS = 946_684_800_000_000n;

export type ReplicationFrame =
  | { kind: 'xlog'; walStart: Lsn; walEnd: Lsn; data: Buffer }
  | { kind: 'keepalive'; walEnd: Lsn; replyRequested: boolean };

export function parseReplicationFrame(chunk: Buffer): ReplicationFrame | undefined {
  if (chunk[0] === 0x77) {
    // w: XLogData
    return {
      kind: 'xlog',
      walStart: asLsn(chunk.readBigUInt64BE(1)),
      walEnd: asLsn(chunk.readBigUInt64BE(9)),
      data: chunk.subarray(25),
    };
  }
  if (chunk[0] === 0x6b) {
    // k: primary keepalive
    return { kind: 'keepalive', walEnd: asLsn(chunk.readBigUInt64BE(1)), replyRequested: chunk[17] === 1 };
  }
  return undefined;
}

/**
 * A Standby Status Update. `flushed` and `applied` are what an Iceberg commit made durable: the
 * slot's confirmed flush LSN follows `flushed` only, so Postgres keeps every WAL record a
 * restart needs. `written` is what this receiver has taken in (Postgres uses it for
 * pg_stat_replication and to let a shutting-down walsender finish: it waits until the receiver
 * has everything it sent), never for the slot.
 */
export function standbyStatusUpdate(written: bigint, flushed: bigint, replyRequested = false): Buffer {
  const b = Buffer.alloc(34);
  b[0] = 0x72; // r
  b.writeBigUInt64BE(written > flushed ? written : flushed, 1);
  b.writeBigUInt64BE(flushed, 9);
  b.writeBigUInt64BE(flushed, 17); // applied
  b.writeBigInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_MICROS, 25);
  b[33] = replyRequested ? 1 : 0;
  return b;
}
