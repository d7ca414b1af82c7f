/**
 * Which task of a writer group is its active writer: a lease item in the catalog table
 * (`pk WRITER#<group>`, `sk WRITER_LEASE`) naming its holder, the URL of the holder's internal
 * API and when the lease ends unless renewed. The other tasks of the group are standbys: they
 * forward internal requests to the holder and take the lease over once it is released (a drain)
 * or has expired (a crash).
 *
 * The lease is for liveness, not safety: two tasks that both believe they are active (a clock
 * far off, a task paused past its lease) are kept apart by the tables' fencing epochs, which
 * every commit checks (pointer-keeper.ts). So the lease only has to make a takeover happen
 * soon after the holder is gone and not while it lives.
 */
import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { type Item, isConditionFailed, n, num, s, str } from './dynamodb-item.ts';

export interface WriterLeaseHolder {
  id: string;
  url: string;
  /** Epoch ms. */
  expiresAt: number;
}

export interface WriterLeaseOptions {
  client: DynamoDBClient;
  tableName: string;
  group: number;
  /** This task: a unique id and the URL of its internal API. */
  self: { id: string; url: string };
  ttlMs: number;
  now?: () => number;
}

export class DynamoDbWriterLease {
  private readonly key: Item;
  private readonly now: () => number;

  constructor(private readonly o: WriterLeaseOptions) {
    this.key = { pk: s(`WRITER#${o.group}`), sk: s('WRITER_LEASE') };
    this.now = o.now ?? Date.now;
  }

  get self(): { id: string; url: string } {
    return this.o.self;
  }

  /** The current holder, if its lease has not ended (by this task's clock). */
  async holder(): Promise<WriterLeaseHolder | undefined> {
    const r = await this.o.client.send(
      new GetItemCommand({ TableName: this.o.tableName, Key: this.key, ConsistentRead: true }),
    );
    const item = r.Item;
    const id = item && str(item, 'holder');
    const url = item && str(item, 'url');
    const expiresAt = item && num(item, 'expiresAt');
    if (!id || !url || expiresAt === undefined || expiresAt <= this.now()) return undefined;
    return { id, url, expiresAt };
  }

  /** Takes the lease if no one holds it (or its holder's lease has ended, or it is ours). */
  async acquire(): Promise<boolean> {
    const now = this.now();
    try {
      await this.o.client.send(
        new PutItemCommand({
          TableName: this.o.tableName,
          Item: this.item(now),
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now OR holder = :me',
          ExpressionAttributeValues: { ':now': n(now), ':me': s(this.o.self.id) },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailed(e)) return false;
      throw e;
    }
  }

  /** Extends our lease; false when it is no longer ours (another task took it over). */
  async renew(): Promise<boolean> {
    const now = this.now();
    try {
      await this.o.client.send(
        new UpdateItemCommand({
          TableName: this.o.tableName,
          Key: this.key,
          UpdateExpression: 'SET expiresAt = :until, renewedAt = :now',
          ConditionExpression: 'holder = :me',
          ExpressionAttributeValues: {
            ':until': n(now + this.o.ttlMs),
            ':now': n(now),
            ':me': s(this.o.self.id),
          },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailed(e)) return false;
      throw e;
    }
  }

  /** Gives the lease up (if it is still ours), so a standby takes over at once. */
  async release(): Promise<void> {
    try {
      await this.o.client.send(
        new DeleteItemCommand({
          TableName: this.o.tableName,
          Key: this.key,
          ConditionExpression: 'holder = :me',
          ExpressionAttributeValues: { ':me': s(this.o.self.id) },
        }),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
  }

  private item(now: number): Item {
    return {
      ...this.key,
      holder: s(this.o.self.id),
      url: s(this.o.self.url),
      expiresAt: n(now + this.o.ttlMs),
      renewedAt: n(now),
    };
  }
}
