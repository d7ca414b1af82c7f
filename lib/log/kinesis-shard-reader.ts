/**
 * Reading the stream for the tables of one process: one GetRecords loop per shard, shared by
 * every table whose records are in that shard, fanning each record out to its table. Kinesis
 * allows 5 GetRecords calls per second per shard for all its readers together, so a loop per
 * table would be throttled as soon as two tables share a shard.
 *
 * A subscription starts on an iterator of its own (catching up): from the dedup window before
 * its resume point, or the shard's start, along the chain of shards that held its hash key.
 * Once it has read as far as the shard's shared reader (its position at or past the reader's),
 * it hands over: the reader gives it every later record, and its own iterator is dropped. A
 * shard with no reader yet gets one when a subscription catches up to the shard's end — the
 * subscription's iterator becomes the reader's. So a table far behind (a new table read from
 * the shard's start, one resuming a long way back) reads on its own and never holds the others
 * back, and at rest a shard costs one call per idle interval however many tables it carries.
 *
 * Handing over is exact because both sides read one shard in sequence order: when the reader's
 * position is at or before the subscription's, every record after the subscription's position
 * is still ahead of the reader; the subscription skips what the reader gives it at or before
 * its own position. When a shard closes (resharding), its reader's subscriptions each go on to
 * the child that holds their hash key, catching up from the child's start.
 *
 * Enhanced fan-out (a stream consumer given): a shard's reader subscribes (SubscribeToShard,
 * HTTP/2) instead of polling, so it has the shard's 2 MiB/s to itself and records arrive as
 * they land; the subscription lasts five minutes and is made again after the last record read.
 * Subscriptions catching up still poll.
 */
import {
  type _Record,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  type KinesisClient,
  type Shard,
  SubscribeToShardCommand,
} from '@aws-sdk/client-kinesis';
import { asLsn, type Lsn } from '../lsn.ts';
import {
  backoffDelay,
  errorName,
  isRetryable,
  type ResolvedRetry,
  sleep,
  withRetry,
} from '../util/aws-retry.ts';
import type { LogEntry } from './durable-log.ts';
import { TableRecordAssembler } from './kinesis-assembler.ts';
import { recordTable } from './kinesis-records.ts';
import { containsSeq, hashKeyOf, type IteratorSpec, shardChain } from './kinesis-shards.ts';
import { deaggregate } from './kpl-records.ts';

/** What the readers need of the log they read for. */
export interface ShardReadHost {
  readonly streamName: string;
  readonly client: KinesisClient;
  readonly idleIntervalMs: number;
  readonly getRecordsLimit: number;
  readonly dedupWindowMs: number;
  /** Retries of reads (shard listing, iterators). */
  readonly readRetry: ResolvedRetry;
  /** Backoff after failed reads (throttling included); it never gives up. */
  readonly readBackoff: ResolvedRetry;
  /** While it answers true, nothing is read (the writer's memory budget). */
  readonly holdBack: (() => boolean) | undefined;
  /** Enhanced fan-out: the stream consumer the shard readers subscribe as, and its (HTTP/2) client. */
  readonly fanOut: { consumerArn: string; client: KinesisClient } | undefined;
  listShards(): Promise<Shard[]>;
  report(error: unknown, table: string, action: string): void;
  /** The decoded form of a transaction this process appended, if still held. */
  takeDecoded(txn: string | undefined): unknown;
}

/** How many subscriptions read on their own iterator and how many the shared readers feed. */
export interface ReadingStats {
  readers: number;
  catchingUp: number;
  shared: number;
}

/** One table's subscription: its assembler, its resume point, where in its shard chain it is. */
class TableSubscription {
  readonly assembler: TableRecordAssembler;
  readonly hashKey: bigint;
  chain: Shard[] = [];
  /** The shard being read: chain[idx]. */
  idx = 0;
  /** In this shard of the chain, records at or below afterLsn are read (for dedup) but not delivered. */
  resumeIdx = -1;
  /** The last record of the current shard taken into account (any table's); undefined before the first. */
  pos: Lsn | undefined;
  /** The shared reader feeding it, once it has handed over. */
  reader: ShardReader | undefined;
  /** Its own reading, while it catches up. */
  catchUp: CatchUp | undefined;
  /** Aborted when the subscription stops. */
  readonly abort = new AbortController();

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  constructor(
    private readonly host: ShardReadHost,
    readonly table: string,
    readonly afterLsn: Lsn,
    private readonly deliver: (e: LogEntry) => void,
  ) {
    this.assembler = new TableRecordAssembler(table, host.dedupWindowMs);
    this.hashKey = hashKeyOf(table);
  }

  get shard(): Shard {
    return this.chain[this.idx];
  }

  /** A record of the current shard, in sequence order; one at or before {@link pos} is skipped. */
  take(seq: Lsn, data: Uint8Array, partitionKey: string | undefined, arrival: number): void {
    if (this.stopped || (this.pos !== undefined && seq <= this.pos)) return;
    this.pos = seq;
    const entries = this.assembler.acceptAll({ seq, data, partitionKey, arrival });
    if (this.idx === this.resumeIdx && seq <= this.afterLsn) return;
    for (const got of entries) {
      const decoded = this.host.takeDecoded(got.txn);
      try {
        this.deliver(decoded === undefined ? got.entry : { ...got.entry, decoded });
      } catch (e) {
        this.host.report(e, this.table, `deliver entry ${got.entry.lsn}`);
      }
    }
  }

  /** Moves on to the shard after `shard` in the (refreshed) chain; waits until the child exists. */
  async toSuccessor(shard: Shard, shards: () => Promise<Shard[]>, signal: AbortSignal): Promise<void> {
    for (;;) {
      this.chain = shardChain(await shards(), this.hashKey);
      const at = this.chain.findIndex((s) => s.ShardId === shard.ShardId);
      if (at >= 0 && at + 1 < this.chain.length) return this.moveTo(at + 1);
      if (at < 0 && this.chain.length > 0) return this.moveTo(0);
      await sleep(this.host.idleIntervalMs, signal);
      if (signal.aborted) return;
    }
  }

  private moveTo(idx: number): void {
    this.idx = idx;
    this.pos = undefined;
  }
}

/** Every record of a page given to the subscriptions of the tables it is for. */
type Dispatch = (seq: Lsn, data: Uint8Array, partitionKey: string | undefined, arrival: number) => void;

/** Reads pages of one shard from an iterator until stopped; what each page means is the caller's. */
abstract class ShardLoop {
  protected readonly abort = new AbortController();

  constructor(protected readonly host: ShardReadHost) {}

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  stop(): void {
    this.abort.abort();
  }

  protected async iterator(shard: Shard, spec: IteratorSpec): Promise<string> {
    const input: GetShardIteratorCommandInput = {
      StreamName: this.host.streamName,
      ShardId: shard.ShardId,
      ShardIteratorType: spec.type,
    };
    if (spec.type === 'AFTER_SEQUENCE_NUMBER') input.StartingSequenceNumber = spec.seq;
    if (spec.type === 'AT_TIMESTAMP') input.Timestamp = new Date(spec.at);
    const res = await this.host.client.send(new GetShardIteratorCommand(input), {
      abortSignal: this.abort.signal,
    });
    if (!res.ShardIterator) throw new Error('Kinesis returned no shard iterator');
    return res.ShardIterator;
  }

  /** One GetRecords call (after waiting out the memory budget), its records passed to `each`. */
  protected async page(iterator: string, each: Dispatch): Promise<GetRecordsCommandOutput | undefined> {
    // Past the writer's memory budget: no more records until it has flushed (an iterator that
    // expires meanwhile is renewed from the last sequence number).
    await this.heldBack();
    const page = await this.host.client.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: this.host.getRecordsLimit }),
      { abortSignal: this.abort.signal },
    );
    return this.each(page.Records, each) ? page : undefined;
  }

  /** Passes records to `each` in order; false if stopped meanwhile. */
  protected each(records: _Record[] | undefined, each: Dispatch): boolean {
    for (const r of records ?? []) {
      if (this.stopped) return false;
      each(
        asLsn(BigInt(r.SequenceNumber!)),
        r.Data ?? new Uint8Array(0),
        r.PartitionKey,
        r.ApproximateArrivalTimestamp?.getTime() ?? Date.now(),
      );
    }
    return true;
  }

  /** Waits while the writer is past its memory budget. */
  protected async heldBack(): Promise<void> {
    while (this.host.holdBack?.() && !this.stopped) await sleep(100, this.abort.signal);
  }

  /**
   * After a failed GetRecords: true when the iterator must be renewed — at once when it expired,
   * else after backing off, for an error that is not a retryable one.
   */
  protected async recover(e: unknown, failures: number, who: string): Promise<boolean> {
    if (errorName(e) === 'ExpiredIteratorException') return true;
    await this.failed(e, failures, who);
    return !isRetryable(e);
  }

  /** After a failed call: reported unless retryable, then backed off. */
  protected async failed(e: unknown, failures: number, who: string): Promise<void> {
    if (!isRetryable(e)) this.host.report(e, who, 'read records');
    await sleep(
      Math.max(this.host.idleIntervalMs, backoffDelay(failures, this.host.readBackoff)),
      this.abort.signal,
    );
  }
}

/** One subscription reading on its own iterator until it hands over to its shard's reader. */
class CatchUp extends ShardLoop {
  constructor(
    host: ShardReadHost,
    private readonly readers: ShardReaders,
    private readonly sub: TableSubscription,
    /** Where to start in the current shard when the subscription has no position there. */
    private spec: IteratorSpec,
    /** A shard the subscription has read to its end: go on to its child first. */
    private readonly after?: Shard,
  ) {
    super(host);
  }

  start(): void {
    void this.run().catch((e) => this.host.report(e, this.sub.table, 'subscription stopped'));
  }

  private async run(): Promise<void> {
    const sub = this.sub;
    const take: Dispatch = (seq, data, pk, arrival) => sub.take(seq, data, pk, arrival);
    if (this.after) await sub.toSuccessor(this.after, this.readers.shards, sub.abort.signal);
    let iterator: string | undefined;
    let failures = 0;
    while (!this.stopped) {
      const shard = sub.shard;
      try {
        if (!iterator) {
          try {
            iterator = await this.iterator(
              shard,
              sub.pos !== undefined ? { type: 'AFTER_SEQUENCE_NUMBER', seq: sub.pos.toString() } : this.spec,
            );
          } catch (e) {
            // A start the shard refuses (a timestamp ahead of its clock, a trimmed sequence
            // number): fall back to the resume point, then to what the shard holds.
            if (errorName(e) !== 'InvalidArgumentException' || this.spec.type === 'TRIM_HORIZON' || sub.pos)
              throw e;
            this.spec =
              this.spec.type === 'AT_TIMESTAMP' && sub.afterLsn > 0n
                ? { type: 'AFTER_SEQUENCE_NUMBER', seq: sub.afterLsn.toString() }
                : { type: 'TRIM_HORIZON' };
            continue;
          }
        }
        const page = await this.page(iterator, take);
        if (!page) return;
        failures = 0;
        const records = page.Records ?? [];
        if (!page.NextShardIterator) {
          // The shard was closed (resharding) and is read to its end: go on to its child.
          await sub.toSuccessor(shard, this.readers.shards, sub.abort.signal);
          iterator = undefined;
          this.spec = { type: 'TRIM_HORIZON' };
          continue;
        }
        iterator = page.NextShardIterator;
        const atEnd = records.length === 0 || page.MillisBehindLatest === 0;
        if (this.readers.handOver(sub, iterator, atEnd)) return;
        if (records.length === 0) await sleep(this.host.idleIntervalMs, this.abort.signal);
      } catch (e) {
        if (this.stopped) return;
        if (errorName(e) !== 'ExpiredIteratorException') failures++;
        if (await this.recover(e, failures, sub.table)) iterator = undefined;
      }
    }
  }
}

/** The one loop reading a shard for every subscription that has handed over to it. */
class ShardReader extends ShardLoop {
  private readonly byTable = new Map<string, Set<TableSubscription>>();
  private count = 0;

  constructor(
    host: ShardReadHost,
    private readonly readers: ShardReaders,
    readonly shard: Shard,
    private iteratorAtStart: string,
    /** The last record read (any table's). */
    public pos: Lsn,
  ) {
    super(host);
  }

  get subscriptions(): number {
    return this.count;
  }

  add(sub: TableSubscription): void {
    const set = this.byTable.get(sub.table) ?? new Set<TableSubscription>();
    this.byTable.set(sub.table, set);
    set.add(sub);
    sub.reader = this;
    sub.catchUp = undefined;
    this.count++;
  }

  remove(sub: TableSubscription): void {
    const set = this.byTable.get(sub.table);
    if (!set?.delete(sub)) return;
    if (set.size === 0) this.byTable.delete(sub.table);
    sub.reader = undefined;
    if (--this.count === 0) this.readers.retire(this);
  }

  start(): void {
    const fanOut = this.host.fanOut;
    void (fanOut ? this.runSubscribed(fanOut) : this.run()).catch((e) =>
      this.host.report(e, `shard ${this.shard.ShardId}`, 'shard reader stopped'),
    );
  }

  /** Enhanced fan-out: the shard's records pushed over one subscription after another. */
  private async runSubscribed(fanOut: { consumerArn: string; client: KinesisClient }): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const out = await fanOut.client.send(
          new SubscribeToShardCommand({
            ConsumerARN: fanOut.consumerArn,
            ShardId: this.shard.ShardId,
            // After the last record read: every record after it, whatever ended the last subscription.
            StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: this.pos.toString() },
          }),
          { abortSignal: this.abort.signal },
        );
        for await (const event of out.EventStream ?? []) {
          if (this.stopped) return;
          const e = event.SubscribeToShardEvent;
          if (!e) {
            // An error delivered in the stream (ResourceInUse, KMS, internal): the stream ends.
            const name = Object.keys(event).find((k) => k !== '$unknown') ?? 'UnknownEvent';
            throw Object.assign(new Error(`SubscribeToShard: ${name}`), { name });
          }
          failures = 0;
          await this.heldBack();
          if (!this.each(e.Records, this.dispatch)) return;
          if (!e.ContinuationSequenceNumber) {
            // The shard was closed (resharding) and is read to its end.
            this.readers.shardClosed(
              this,
              [...this.byTable.values()].flatMap((s) => [...s]),
            );
            return;
          }
        }
        // Ended (every five minutes, or the service closed it): subscribe again.
      } catch (e) {
        if (this.stopped) return;
        failures++;
        await this.failed(e, failures, `shard ${this.shard.ShardId}`);
      }
    }
  }

  /** A record to the subscriptions of the table (or tables, if KPL-aggregated) it is for. */
  private readonly dispatch: Dispatch = (seq, data, partitionKey, arrival) => {
    this.pos = seq;
    const users = deaggregate(data);
    if (!users) {
      const set = this.byTable.get(recordTable(data, partitionKey) ?? '');
      if (set) for (const sub of set) sub.take(seq, data, partitionKey, arrival);
      return;
    }
    const tables = new Set(users.map((u) => recordTable(u.data, u.partitionKey) ?? ''));
    for (const t of tables) {
      const set = this.byTable.get(t);
      if (set) for (const sub of set) sub.take(seq, data, partitionKey, arrival);
    }
  };

  private async run(): Promise<void> {
    let iterator: string | undefined = this.iteratorAtStart;
    let failures = 0;
    while (!this.stopped) {
      try {
        iterator ??= await this.iterator(this.shard, {
          type: 'AFTER_SEQUENCE_NUMBER',
          seq: this.pos.toString(),
        });
        const page = await this.page(iterator, this.dispatch);
        if (!page) return;
        failures = 0;
        if (!page.NextShardIterator) {
          // Closed and read to its end: each subscription goes on to its own child shard.
          this.readers.shardClosed(
            this,
            [...this.byTable.values()].flatMap((s) => [...s]),
          );
          return;
        }
        iterator = page.NextShardIterator;
        if ((page.Records ?? []).length === 0) await sleep(this.host.idleIntervalMs, this.abort.signal);
      } catch (e) {
        if (this.stopped) return;
        if (errorName(e) !== 'ExpiredIteratorException') failures++;
        // A new iterator after any error that is not a retryable one (the position is kept).
        if (await this.recover(e, failures, `shard ${this.shard.ShardId}`)) iterator = undefined;
      }
    }
  }
}

/** The shared readers of one log, by shard, and the subscriptions they and the catch-ups serve. */
export class ShardReaders {
  private readonly readers = new Map<string, ShardReader>();
  private readonly subscriptions = new Set<TableSubscription>();
  private listing: { at: number; shards: Promise<Shard[]> } | undefined;

  constructor(private readonly host: ShardReadHost) {}

  /** The stream's shards, listed at most once per idle interval for all subscriptions. */
  readonly shards = (): Promise<Shard[]> => {
    const now = Date.now();
    if (!this.listing || now - this.listing.at >= this.host.idleIntervalMs) {
      const shards = this.host.listShards();
      this.listing = { at: now, shards };
      shards.catch(() => {
        if (this.listing?.shards === shards) this.listing = undefined;
      });
    }
    return this.listing.shards;
  };

  /** Subscribes a table; fails here, not later, when the stream does not exist. */
  async subscribe(table: string, afterLsn: Lsn, deliver: (e: LogEntry) => void): Promise<() => void> {
    const sub = new TableSubscription(this.host, table, afterLsn, deliver);
    sub.chain = shardChain(await this.shards(), sub.hashKey);
    if (sub.chain.length === 0)
      throw new Error(`no shard of ${this.host.streamName} covers table "${table}"`);
    this.subscriptions.add(sub);
    void this.startAt(sub).catch((e) => this.host.report(e, table, 'subscription stopped'));
    return () => this.unsubscribe(sub);
  }

  /** Where a subscription starts: after its resume point, the dedup window before it read back. */
  private async startAt(sub: TableSubscription): Promise<void> {
    let spec: IteratorSpec = { type: 'TRIM_HORIZON' };
    if (sub.afterLsn > 0n) {
      const at = sub.chain.findIndex((s) => containsSeq(s, sub.afterLsn));
      if (at >= 0) {
        sub.idx = at;
        sub.resumeIdx = at;
        const arrival = await this.arrivalOf(sub, sub.chain[at], sub.afterLsn);
        spec =
          arrival !== undefined
            ? { type: 'AT_TIMESTAMP', at: Math.max(0, arrival - this.host.dedupWindowMs) }
            : { type: 'AFTER_SEQUENCE_NUMBER', seq: sub.afterLsn.toString() };
      } else {
        // The resume point's shard is gone (retention): start at the first newer shard.
        const later = sub.chain.findIndex(
          (s) => BigInt(s.SequenceNumberRange?.StartingSequenceNumber ?? '0') > sub.afterLsn,
        );
        sub.idx = later >= 0 ? later : sub.chain.length - 1;
        sub.resumeIdx = sub.idx;
      }
    }
    if (sub.stopped) return;
    this.catchUp(sub, spec);
  }

  private catchUp(sub: TableSubscription, spec: IteratorSpec, after?: Shard): void {
    const c = new CatchUp(this.host, this, sub, spec, after);
    sub.catchUp = c;
    c.start();
  }

  /**
   * Called by a catching-up subscription after each page: hands it over to its shard's reader
   * when that reader has not read past it, or makes its iterator the shard's reader when the
   * shard has none and the subscription has read to the shard's end. True: it has handed over.
   */
  handOver(sub: TableSubscription, iterator: string, atEnd: boolean): boolean {
    if (sub.stopped || sub.pos === undefined) return false;
    const id = sub.shard.ShardId!;
    const reader = this.readers.get(id);
    if (reader) {
      if (reader.pos > sub.pos) return false;
      reader.add(sub);
      return true;
    }
    if (!atEnd) return false;
    const created = new ShardReader(this.host, this, sub.shard, iterator, sub.pos);
    this.readers.set(id, created);
    created.add(sub);
    created.start();
    return true;
  }

  /** A shard's reader has no subscription left: it stops. */
  retire(reader: ShardReader): void {
    reader.stop();
    if (this.readers.get(reader.shard.ShardId!) === reader) this.readers.delete(reader.shard.ShardId!);
  }

  /** A reader's shard was closed and read to its end: its subscriptions go on to their children. */
  shardClosed(reader: ShardReader, subs: TableSubscription[]): void {
    if (this.readers.get(reader.shard.ShardId!) === reader) this.readers.delete(reader.shard.ShardId!);
    reader.stop();
    for (const sub of subs) {
      sub.reader = undefined;
      if (!sub.stopped) this.catchUp(sub, { type: 'TRIM_HORIZON' }, reader.shard);
    }
  }

  private unsubscribe(sub: TableSubscription): void {
    sub.abort.abort();
    sub.catchUp?.stop();
    sub.catchUp = undefined;
    sub.reader?.remove(sub);
    this.subscriptions.delete(sub);
  }

  /** Stops the table's subscriptions. */
  dropTable(table: string): void {
    for (const sub of [...this.subscriptions]) if (sub.table === table) this.unsubscribe(sub);
  }

  close(): void {
    for (const sub of [...this.subscriptions]) this.unsubscribe(sub);
    for (const r of [...this.readers.values()]) this.retire(r);
  }

  stats(): ReadingStats {
    let shared = 0;
    let catchingUp = 0;
    for (const sub of this.subscriptions) {
      if (sub.reader) shared++;
      else catchingUp++;
    }
    return { readers: this.readers.size, catchingUp, shared };
  }

  /** Arrival time of the record at `seq` (or the first one after it), if it can be read. */
  private async arrivalOf(sub: TableSubscription, shard: Shard, seq: Lsn): Promise<number | undefined> {
    const signal = sub.abort.signal;
    const client = this.host.client;
    try {
      let it: string | undefined = (
        await withRetry(
          this.host.readRetry,
          () =>
            client.send(
              new GetShardIteratorCommand({
                StreamName: this.host.streamName,
                ShardId: shard.ShardId,
                ShardIteratorType: 'AT_SEQUENCE_NUMBER',
                StartingSequenceNumber: seq.toString(),
              }),
              { abortSignal: signal },
            ),
          { signal },
        )
      ).ShardIterator;
      for (let k = 0; it && k < 5 && !sub.stopped; k++) {
        const current: string = it;
        const page: GetRecordsCommandOutput = await withRetry(
          this.host.readRetry,
          () =>
            client.send(new GetRecordsCommand({ ShardIterator: current, Limit: 1 }), { abortSignal: signal }),
          { signal },
        );
        const r = page.Records?.[0];
        if (r) return r.ApproximateArrivalTimestamp?.getTime();
        it = page.NextShardIterator;
      }
    } catch (e) {
      if (!sub.stopped) this.host.report(e, sub.table, 'read arrival time of the resume point');
    }
    return undefined;
  }
}
