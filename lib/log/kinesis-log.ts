/**
 * The durable log on Amazon Kinesis Data Streams. Record format, limits and errors are in
 * docs/kinesis-records.md and kinesis-records.ts: one transaction per record (split into parts
 * when larger than a record), partition key the table name, so a table's records share one
 * shard at a time (across resharding) and their order is total. A transaction's LSN is the
 * sequence number of the record (or part) that completes it.
 *
 * Exactly-once delivery. PutRecord is not idempotent: a request whose response was lost after
 * it succeeded is retried and lands twice. Every record carries the producer's transaction id
 * (`txn`), and the consumer skips a record (or part) whose `txn` it has already seen within
 * `dedupWindowMs` (kinesis-assembler.ts). The producer stops retrying after half that window,
 * so every duplicate falls inside it. When a subscription resumes after LSN L, it first
 * re-reads the window before L (AT_TIMESTAMP) without delivering, so a duplicate just after L
 * of a transaction applied at or before L is recognized too, and so are parts written before L
 * of a transaction completed after L. After a retry whose earlier attempt may have landed, the
 * producer looks up where the first copy landed and acknowledges that sequence number: the LSN
 * an append returns is the one the consumer delivers.
 *
 * Reading: one GetRecords loop per shard for all the tables subscribed in this process, each
 * record fanned out to its table (kinesis-shard-reader.ts); a table catching up reads on its
 * own until it reaches that loop.
 *
 * Malformed records (not JSON, no table, bad parts) do not stop a subscription: they are
 * delivered with the raw record bytes as payload, so the writer's decoder rejects them into the
 * dead-letter location.
 */
import { randomUUID } from 'node:crypto';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  type KinesisClientConfig,
  ListShardsCommand,
  PutRecordCommand,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { asLsn, type Lsn, ZERO_LSN } from '../lsn.ts';
import { TABLE_NAME_PATTERN } from '../schema/table-name.ts';
import { type ResolvedRetry, type RetryOptions, resolveRetry, sleep, withRetry } from '../util/aws-retry.ts';
import type { DurableLog, LogEntry, LogSubscription } from './durable-log.ts';
import { encodeTransaction, MAX_RECORD_BYTES, unwrapRecord } from './kinesis-records.ts';
import { type ReadingStats, ShardReaders } from './kinesis-shard-reader.ts';

export interface KinesisLogOptions {
  streamName: string;
  /** A ready client (use HTTP/1.1 `NodeHttpHandler` for kinesalite). The log retries itself. */
  client?: KinesisClient;
  /** Used to build a client when `client` is absent (SDK retries off, HTTP/1.1, timeouts). */
  clientConfig?: KinesisClientConfig;
  /** Wait between GetRecords calls that returned nothing (default 200 ms). */
  idleIntervalMs?: number;
  /** Record size limit, data plus partition key (default and maximum 1 MiB; smaller in tests). */
  maxRecordBytes?: number;
  /** Records per GetRecords call (default 10 000, the maximum). */
  getRecordsLimit?: number;
  /** Duplicates are recognized within this span of arrival time (default 120 s). */
  dedupWindowMs?: number;
  /** Producer retries (default 10 attempts); they stop after `dedupWindowMs / 2` in any case. */
  retry?: RetryOptions;
  /** Errors a subscription retried past (it never stops on its own), for logging. */
  onError?: (error: unknown, context: { table: string; action: string }) => void;
  /**
   * Compress payloads of at least 1 KiB with Brotli (`"z":"br"`, default true): a shard then
   * carries several times the rows. Readers take both forms; readers older than this do not
   * take compressed records (see docs/kinesis-records.md before an upgrade).
   */
  compress?: boolean;
  /**
   * Enhanced fan-out: the ARN of a stream consumer (RegisterStreamConsumer) the shard readers
   * subscribe as (SubscribeToShard over HTTP/2) instead of polling GetRecords.
   */
  consumerArn?: string;
  /** The client for those subscriptions (default: built from `clientConfig` with the SDK's HTTP/2 handler). */
  subscribeClient?: KinesisClient;
}

function withoutHandler(config: KinesisClientConfig | undefined): KinesisClientConfig {
  const { requestHandler: _, ...rest } = config ?? {};
  return rest;
}

export class KinesisLog<D = unknown> implements DurableLog<D> {
  readonly description: string;
  /** While it answers true, followers stop reading (the writer's memory budget). */
  holdBack: (() => boolean) | undefined;
  readonly streamName: string;
  readonly client: KinesisClient;
  private readonly ownsClient: boolean;
  readonly idleIntervalMs: number;
  readonly maxRecordBytes: number;
  readonly compress: boolean;
  readonly getRecordsLimit: number;
  readonly dedupWindowMs: number;
  private readonly retry: ResolvedRetry;
  /** Retries of reads (shard listing, iterators, locating a retried record). */
  readonly readRetry: ResolvedRetry;
  readonly fanOut: { consumerArn: string; client: KinesisClient } | undefined;
  private readonly subscribeClientGiven: boolean;
  /** Backoff of a subscription after failed reads (throttling included); it never gives up. */
  readonly readBackoff: ResolvedRetry;
  private readonly onError: KinesisLogOptions['onError'];
  private readonly last = new Map<string, Lsn>();
  private readonly readers = new ShardReaders(this);
  /** Decoded transactions appended here, handed to the subscriber that delivers them. */
  private readonly decodedByTxn = new Map<string, D>();
  private closed = false;

  constructor(options: KinesisLogOptions) {
    if (!options.streamName) throw new Error('KinesisLog: streamName is required');
    this.streamName = options.streamName;
    this.description = `kinesis:${options.streamName}`;
    this.ownsClient = !options.client;
    this.client =
      options.client ??
      new KinesisClient({
        // HTTP/1.1: works everywhere (kinesalite and LocalStack included); GetRecords is polled.
        requestHandler: new NodeHttpHandler({
          connectionTimeout: 3000,
          requestTimeout: 10_000,
          throwOnRequestTimeout: true,
        }),
        ...options.clientConfig,
        maxAttempts: options.clientConfig?.maxAttempts ?? 1,
      });
    this.idleIntervalMs = options.idleIntervalMs ?? 200;
    this.maxRecordBytes = Math.min(options.maxRecordBytes ?? MAX_RECORD_BYTES, MAX_RECORD_BYTES);
    this.compress = options.compress ?? true;
    this.getRecordsLimit = options.getRecordsLimit ?? 10_000;
    this.dedupWindowMs = options.dedupWindowMs ?? 120_000;
    const r = resolveRetry({ maxAttempts: 10, baseDelayMs: 50, maxDelayMs: 2000, ...options.retry });
    this.retry = { ...r, deadlineMs: Math.min(r.deadlineMs, this.dedupWindowMs / 2) };
    // Reads (shard listing, locating a retried record) retry alike, without the deadline.
    this.readRetry = { ...r, deadlineMs: Number.POSITIVE_INFINITY };
    this.readBackoff = { ...this.readRetry, maxAttempts: Number.POSITIVE_INFINITY };
    this.onError = options.onError;
    this.subscribeClientGiven = options.subscribeClient !== undefined;
    this.fanOut = options.consumerArn
      ? {
          consumerArn: options.consumerArn,
          // SubscribeToShard needs HTTP/2: the SDK's default handler, not an HTTP/1.1 one.
          client:
            options.subscribeClient ??
            new KinesisClient({ ...withoutHandler(options.clientConfig), maxAttempts: 1 }),
        }
      : undefined;
  }

  private checkTable(table: string): void {
    if (!TABLE_NAME_PATTERN.test(table)) throw new Error(`invalid table name ${JSON.stringify(table)}`);
  }

  private noteLsn(table: string, lsn: Lsn): void {
    const prev = this.last.get(table);
    if (prev === undefined || lsn > prev) this.last.set(table, lsn);
  }

  report(error: unknown, table: string, action: string): void {
    try {
      this.onError?.(error, { table, action });
    } catch {
      // a logging callback must not break the log
    }
  }

  // ---------------------------------------------------------------- append

  async append(table: string, payload: Uint8Array, decoded?: D): Promise<Lsn> {
    this.checkTable(table);
    if (this.closed) throw new Error('log is closed');
    const txn = randomUUID();
    const records = encodeTransaction(
      table,
      txn,
      payload,
      this.maxRecordBytes - Buffer.byteLength(table),
      this.compress,
    );
    // Held before the put: the subscriber may deliver the record before this call resumes.
    if (decoded !== undefined) {
      this.decodedByTxn.set(txn, decoded);
      if (this.decodedByTxn.size > 4096) this.decodedByTxn.delete(this.decodedByTxn.keys().next().value!);
    }
    const started = Date.now();
    let previous: string | undefined;
    let lsn = ZERO_LSN;
    try {
      for (let i = 0; i < records.length; i++) {
        // All parts of a transaction land within the retry deadline (the consumer's dedup
        // window is twice that).
        const deadlineMs = this.retry.deadlineMs - (Date.now() - started);
        if (deadlineMs <= 0) {
          throw new Error(`append to ${this.description} took longer than ${this.retry.deadlineMs} ms`);
        }
        const seq = await this.putOnce(table, records[i], txn, records.length > 1 ? i : undefined, previous, {
          ...this.retry,
          deadlineMs,
        });
        previous = seq;
        lsn = asLsn(BigInt(seq));
      }
    } catch (e) {
      this.decodedByTxn.delete(txn);
      throw e;
    }
    this.noteLsn(table, lsn);
    return lsn;
  }

  /** Puts one record; returns the sequence number of its first copy in the stream. */
  private async putOnce(
    table: string,
    data: Uint8Array,
    txn: string,
    part: number | undefined,
    orderAfter: string | undefined,
    policy: ResolvedRetry,
  ): Promise<string> {
    const firstAttemptAt = Date.now();
    const { res, uncertain } = await withRetry(policy, async ({ uncertain }) => ({
      res: await this.client.send(
        new PutRecordCommand({
          StreamName: this.streamName,
          PartitionKey: table,
          Data: data,
          SequenceNumberForOrdering: orderAfter,
        }),
      ),
      uncertain,
    }));
    if (!res.SequenceNumber || !res.ShardId) throw new Error('Kinesis returned no sequence number');
    if (!uncertain) return res.SequenceNumber;
    // An earlier attempt may have landed too: the consumer delivers the first copy, so
    // acknowledge that one.
    return this.firstCopy(res.ShardId, res.SequenceNumber, txn, part, firstAttemptAt).catch((e) => {
      this.report(e, table, 'locate first copy of a retried record');
      return res.SequenceNumber!;
    });
  }

  private async firstCopy(
    shardId: string,
    seq: string,
    txn: string,
    part: number | undefined,
    since: number,
  ): Promise<string> {
    const target = BigInt(seq);
    const at = Math.min(since - 10_000, Date.now() - 1000);
    let iterator = (
      await withRetry(this.readRetry, () =>
        this.client.send(
          new GetShardIteratorCommand({
            StreamName: this.streamName,
            ShardId: shardId,
            ShardIteratorType: 'AT_TIMESTAMP',
            Timestamp: new Date(at),
          }),
        ),
      )
    ).ShardIterator;
    for (let calls = 0; iterator && calls < 100; calls++) {
      const it = iterator;
      const page = await withRetry(this.readRetry, () =>
        this.client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 })),
      );
      for (const r of page.Records ?? []) {
        const rs = BigInt(r.SequenceNumber!);
        if (rs >= target) return seq;
        const u = unwrapRecord(r.Data ?? new Uint8Array(0), r.PartitionKey);
        if (u.kind === 'txn' && u.txn === txn && part === undefined) return r.SequenceNumber!;
        if (u.kind === 'part' && u.txn === txn && u.part === part) return r.SequenceNumber!;
      }
      iterator = page.NextShardIterator;
      if ((page.Records ?? []).length === 0) await sleep(this.idleIntervalMs);
    }
    return seq;
  }

  // ---------------------------------------------------------------- subscribe

  async subscribe(
    table: string,
    afterLsn: Lsn,
    onEntry: (entry: LogEntry<D>) => void,
  ): Promise<LogSubscription> {
    this.checkTable(table);
    if (this.closed) throw new Error('log is closed');
    // The shard readers carry entries of every table; `decoded` is what this log's appends
    // held (takeDecoded), so of type D.
    const stop = await this.readers.subscribe(table, afterLsn, (e) => {
      this.noteLsn(table, e.lsn);
      onEntry(e as LogEntry<D>);
    });
    return { stop };
  }

  /** How the subscriptions read: shared shard readers, and those still catching up on their own. */
  readingStats(): ReadingStats {
    return this.readers.stats();
  }

  /** Takes the decoded form of a transaction appended by this process, if still held. */
  takeDecoded(txn: string | undefined): D | undefined {
    if (txn === undefined) return undefined;
    const d = this.decodedByTxn.get(txn);
    if (d !== undefined) this.decodedByTxn.delete(txn);
    return d;
  }

  async listShards(): Promise<Shard[]> {
    const out: Shard[] = [];
    let token: string | undefined;
    do {
      const t = token;
      const page = await withRetry(this.readRetry, () =>
        this.client.send(new ListShardsCommand(t ? { NextToken: t } : { StreamName: this.streamName })),
      );
      out.push(...(page.Shards ?? []));
      token = page.NextToken;
    } while (token);
    return out;
  }

  /**
   * The newest sequence number this process appended or delivered for the table (0 if none).
   * Best effort: Kinesis has no cheap "last sequence number of a partition key", so after a
   * restart it is 0 until the subscription delivers something or this process appends.
   */
  /** Puts a marker record; its sequence number is after every record acknowledged before. */
  async barrier(table: string): Promise<Lsn> {
    return this.append(table, new TextEncoder().encode('{"marker":"barrier"}'));
  }

  pauseWhile(holdBack: () => boolean): void {
    this.holdBack = holdBack;
  }

  async lastLsn(table: string): Promise<Lsn> {
    return this.last.get(table) ?? ZERO_LSN;
  }

  /**
   * A no-op: Kinesis drops records by retention. Replays after a restart skip what is applied
   * (the writer resumes after its committed LSN and ignores LSNs at or below what it applied).
   */
  async truncate(): Promise<void> {}

  /** Stops the table's subscriptions. Its records stay in the stream until retention drops them. */
  async dropTable(table: string): Promise<void> {
    this.readers.dropTable(table);
    this.last.delete(table);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.readers.close();
    if (this.ownsClient) this.client.destroy();
    if (this.fanOut && !this.subscribeClientGiven) this.fanOut.client.destroy();
  }
}
