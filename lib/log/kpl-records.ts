/**
 * KPL-aggregated Kinesis records (what the Kinesis Producer Library and most high-rate
 * producers send): one Kinesis record holding many user records, each with its own partition
 * key. The format (amazon-kinesis-producer's aggregation-format.md): the magic bytes
 * `F3 89 9A C2`, a protobuf `AggregatedRecord`, and the MD5 of that protobuf message.
 *
 *   message AggregatedRecord { repeated string partition_key_table = 1;
 *                              repeated string explicit_hash_key_table = 2;
 *                              repeated Record records = 3; }
 *   message Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2;
 *                    required bytes data = 3; repeated Tag tags = 4; }
 *
 * As the KCL does, a record with the magic but a wrong MD5 (or unreadable protobuf) is not
 * aggregated: it is taken as it is.
 */
import { createHash } from 'node:crypto';

const MAGIC = [0xf3, 0x89, 0x9a, 0xc2];
const MD5_BYTES = 16;

export interface UserRecord {
  partitionKey: string;
  data: Uint8Array;
}

export function isAggregated(data: Uint8Array): boolean {
  return data.length > MAGIC.length + MD5_BYTES && MAGIC.every((b, i) => data[i] === b);
}

class Reader {
  at: number;
  constructor(
    readonly b: Uint8Array,
    readonly start: number,
    readonly end: number,
  ) {
    this.at = start;
  }
  get done(): boolean {
    return this.at >= this.end;
  }
  varint(): bigint {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (this.at >= this.end || shift > 63n) throw new Error('bad varint');
      const c = this.b[this.at++];
      v |= BigInt(c & 0x7f) << shift;
      if ((c & 0x80) === 0) return v;
    }
  }
  /** The bytes of a length-delimited field. */
  bytes(): [number, number] {
    const n = Number(this.varint());
    const s = this.at;
    if (s + n > this.end) throw new Error('truncated field');
    this.at = s + n;
    return [s, s + n];
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.at += 8;
    else if (wire === 5) this.at += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The user records of an aggregated record, or undefined when it is not one (or not intact). */
export function deaggregate(data: Uint8Array): UserRecord[] | undefined {
  if (!isAggregated(data)) return undefined;
  const body = data.subarray(MAGIC.length, data.length - MD5_BYTES);
  const md5 = createHash('md5').update(body).digest();
  for (let i = 0; i < MD5_BYTES; i++) if (md5[i] !== data[data.length - MD5_BYTES + i]) return undefined;
  try {
    const keys: string[] = [];
    const records: { key: number; data: [number, number] }[] = [];
    const r = new Reader(body, 0, body.length);
    while (!r.done) {
      const tag = Number(r.varint());
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === 1 && wire === 2) {
        const [s, e] = r.bytes();
        keys.push(utf8.decode(body.subarray(s, e)));
      } else if (field === 3 && wire === 2) {
        const [s, e] = r.bytes();
        const rec = new Reader(body, s, e);
        let key = -1;
        let span: [number, number] | undefined;
        while (!rec.done) {
          const t = Number(rec.varint());
          if (t >>> 3 === 1 && (t & 7) === 0) key = Number(rec.varint());
          else if (t >>> 3 === 3 && (t & 7) === 2) span = rec.bytes();
          else rec.skip(t & 7);
        }
        if (key < 0 || !span) throw new Error('a record without its partition key index or data');
        records.push({ key, data: span });
      } else r.skip(wire);
    }
    return records.map((x) => {
      const partitionKey = keys[x.key];
      if (partitionKey === undefined) throw new Error(`partition key index ${x.key} out of range`);
      return { partitionKey, data: body.subarray(x.data[0], x.data[1]) };
    });
  } catch {
    return undefined;
  }
}
