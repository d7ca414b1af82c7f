/** Kinesis shards as a table's log sees them: the hash key of a table and its chain of shards. */
import { createHash } from 'node:crypto';
import type { Shard } from '@aws-sdk/client-kinesis';

/** The 128-bit hash key Kinesis derives from a partition key (MD5, big-endian). */
export function hashKeyOf(partitionKey: string): bigint {
  return BigInt(`0x${createHash('md5').update(partitionKey, 'utf8').digest('hex')}`);
}

/**
 * The shards that held or hold `hashKey`, oldest first: at any time one open shard covers a
 * hash key, and a closed shard's successor is the child that covers it.
 */
export function shardChain(shards: Shard[], hashKey: bigint): Shard[] {
  const covering = shards.filter((s) => {
    const r = s.HashKeyRange;
    return (
      r?.StartingHashKey &&
      r.EndingHashKey &&
      BigInt(r.StartingHashKey) <= hashKey &&
      hashKey <= BigInt(r.EndingHashKey)
    );
  });
  const startOf = (s: Shard): bigint => BigInt(s.SequenceNumberRange?.StartingSequenceNumber ?? '0');
  const remaining = new Map(covering.map((s) => [s.ShardId!, s]));
  const out: Shard[] = [];
  while (remaining.size > 0) {
    const ready = [...remaining.values()].filter(
      (s) =>
        !(s.ParentShardId && remaining.has(s.ParentShardId)) &&
        !(s.AdjacentParentShardId && remaining.has(s.AdjacentParentShardId)),
    );
    const pool = ready.length > 0 ? ready : [...remaining.values()];
    pool.sort((a, b) => (startOf(a) < startOf(b) ? -1 : startOf(a) > startOf(b) ? 1 : 0));
    out.push(pool[0]);
    remaining.delete(pool[0].ShardId!);
  }
  return out;
}

export function containsSeq(s: Shard, seq: bigint): boolean {
  const r = s.SequenceNumberRange;
  if (!r?.StartingSequenceNumber || BigInt(r.StartingSequenceNumber) > seq) return false;
  return r.EndingSequenceNumber === undefined || seq <= BigInt(r.EndingSequenceNumber);
}

export type IteratorSpec =
  | { type: 'TRIM_HORIZON' }
  | { type: 'AFTER_SEQUENCE_NUMBER'; seq: string }
  | { type: 'AT_TIMESTAMP'; at: number };
