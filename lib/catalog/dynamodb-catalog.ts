/**
 * The catalog on DynamoDB: one table, single-table design (docs/dynamodb-catalog.md has more).
 *
 *   pk (S)            sk (S)              attributes
 *   ───────────────── ─────────────────── ───────────────────────────────────────────────────────
 *   TABLE#<name>      DEF                 name, tableUuid, def (S: TableDefinition as JSON),
 *                                         createdAt
 *   TABLE#<name>      POINTER             table, tableUuid, epoch (N), epochTokens (L of S),
 *                                         version (N; 0 = no snapshot yet), lsn, committedLsn,
 *                                         snapshotKey?, metadataLocation?, metadataKey?,
 *                                         checkpoints? (S: JSON, key order kept), updatedAt
 *   TABLE#<name>      LEASE#<leaseId>     leaseId, table, snapshotKey, expiresAt (N, ms),
 *                                         ttl (N, s: DynamoDB TTL tidy-up only),
 *                                         releasedBy? (S: set while a delete is under way)
 *   NAMESPACE#<ns>    NS                  name, properties (S: JSON), createdAt,
 *                                         rev (N: compare-and-swap token of property updates)
 *
 * The fencing epoch lives on the POINTER item so one conditional write checks version and epoch
 * together (`epoch = :epoch AND version = :expected`): no transactions are needed.
 *
 * Retries and lost responses. Every call is retried on throttling, 5xx, timeouts and resets
 * (lib/util/aws-retry.ts). A request whose response was lost after it succeeded is sent again
 * and then fails its condition, so:
 * - updatePointer reports that as ConflictError (as any version mismatch); the caller
 *   (lib/engine/pointer-keeper.ts) reads the pointer back and recognizes its own write.
 * - createTable: a create that finds an identical definition already stored succeeds.
 * - acquireEpoch writes `epoch = :next` on condition `epoch = :previous`, and appends
 *   `"<next>:<random token>"` to `epochTokens` (the last 16 increments). On a condition failure
 *   it re-reads: our token in the list means our increment landed (even if other writers have
 *   taken epochs since); otherwise it reads the new epoch and tries again.
 * - putLease is an unconditional put (idempotent).
 * - deleteLease first marks the lease `releasedBy = :token` (condition: exists and not marked by
 *   someone else; a retry of our own mark passes), then deletes it. It returns true exactly when
 *   this call's mark landed, however many times the requests were retried.
 *
 * Consistency: reads use ConsistentRead. listTables is a Scan filtered on sk = DEF (catalogs
 * hold few tables; leases are short-lived and TTL removes the leftovers).
 */
import { randomUUID } from 'node:crypto';
import {
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { type Lsn, lsnFromText, lsnToText } from '../lsn.ts';
import { NAME_PART, TABLE_NAME_PATTERN } from '../schema/table-name.ts';
import type { TableDefinition } from '../schema/table-schema.ts';
import { type ResolvedRetry, type RetryOptions, resolveRetry, sleep, withRetry } from '../util/aws-retry.ts';
import {
  type Catalog,
  ConflictError,
  FencedError,
  type Lease,
  type NamespaceEntry,
  NamespaceExistsError,
  NoSuchTableError,
  type PointerUpdate,
  TableExistsError,
  type TablePointer,
  tableOfLease,
} from './catalog.ts';
import {
  DEF,
  type Item,
  isConditionFailed,
  key,
  LEASE,
  NS,
  n,
  num,
  POINTER,
  pk,
  s,
  str,
} from './dynamodb-item.ts';
import {
  finishRenames,
  type RenameContext,
  renameIntentOf,
  renameTable,
  sealRename,
  unsealRename,
} from './dynamodb-rename.ts';

export interface DynamoDbCatalogOptions {
  /** The DynamoDB table (key schema: pk S HASH, sk S RANGE). */
  tableName: string;
  /** A ready client. The catalog retries itself: give it `maxAttempts: 1` to avoid nested retries. */
  client?: DynamoDBClient;
  /** Used to build a client when `client` is absent (SDK retries off, HTTP/1.1, timeouts). */
  clientConfig?: DynamoDBClientConfig;
  /** Retry policy: attempts (default 8), backoff base (default 25 ms) and ceiling in ms. */
  retry?: RetryOptions;
  /** Seconds after a lease's expiry at which DynamoDB TTL may delete it (default 3600). */
  leaseTtlGraceSeconds?: number;
}

/** Tokens of the latest epoch increments kept on the POINTER item (to recognize our own). */
const EPOCH_TOKENS = 16;

const OPTIONAL_POINTER_FIELDS = ['snapshotKey', 'metadataLocation', 'metadataKey', 'checkpoints'] as const;

function pointerFromItem(table: string, item: Item): TablePointer | undefined {
  const version = num(item, 'version') ?? 0;
  if (version === 0) return undefined;
  const p: TablePointer = {
    lsn: lsnFromText(str(item, 'lsn') ?? '0'),
    committedLsn: lsnFromText(str(item, 'committedLsn') ?? '0'),
    table,
    version,
    epoch: num(item, 'epoch') ?? 0,
    updatedAt: str(item, 'updatedAt') ?? '',
  };
  const snapshotKey = str(item, 'snapshotKey');
  if (snapshotKey !== undefined) p.snapshotKey = snapshotKey;
  const metadataLocation = str(item, 'metadataLocation');
  if (metadataLocation !== undefined) p.metadataLocation = metadataLocation;
  const metadataKey = str(item, 'metadataKey');
  if (metadataKey !== undefined) p.metadataKey = metadataKey;
  const checkpoints = str(item, 'checkpoints');
  if (checkpoints !== undefined) p.checkpoints = JSON.parse(checkpoints) as Record<string, string>;
  return p;
}

function namespaceFromItem(item: Item): NamespaceEntry {
  return {
    name: str(item, 'name') ?? '',
    properties: JSON.parse(str(item, 'properties') ?? '{}') as Record<string, string>,
    createdAt: str(item, 'createdAt') ?? '',
  };
}

function leaseFromItem(item: Item): Lease | undefined {
  if (item.releasedBy) return undefined;
  return {
    leaseId: str(item, 'leaseId') ?? '',
    table: str(item, 'table') ?? '',
    snapshotKey: str(item, 'snapshotKey') ?? '',
    expiresAt: num(item, 'expiresAt') ?? 0,
  };
}

export class DynamoDbCatalog implements Catalog {
  readonly description: string;
  readonly tableName: string;
  readonly client: DynamoDBClient;
  private readonly ownsClient: boolean;
  private readonly retry: ResolvedRetry;
  private readonly ttlGrace: number;

  constructor(options: DynamoDbCatalogOptions) {
    if (!options.tableName) throw new Error('DynamoDbCatalog: tableName is required');
    this.tableName = options.tableName;
    this.description = `dynamodb:${options.tableName}`;
    this.ownsClient = !options.client;
    this.client =
      options.client ??
      new DynamoDBClient({
        requestHandler: new NodeHttpHandler({
          connectionTimeout: 3000,
          requestTimeout: 10_000,
          throwOnRequestTimeout: true,
        }),
        ...options.clientConfig,
        maxAttempts: options.clientConfig?.maxAttempts ?? 1,
      });
    this.retry = resolveRetry({ baseDelayMs: 25, ...options.retry });
    this.ttlGrace = options.leaseTtlGraceSeconds ?? 3600;
  }

  private send<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(this.retry, fn);
  }

  private async getItem(table: string, sk: string, projection?: string): Promise<Item | undefined> {
    const res = await this.send(() =>
      this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: key(table, sk),
          ConsistentRead: true,
          ProjectionExpression: projection,
        }),
      ),
    );
    return res.Item;
  }

  // ------------------------------------------------------------------ namespaces

  private nsKey(name: string): Item {
    if (!NAME_PART.test(name)) throw new Error(`invalid namespace ${JSON.stringify(name)}`);
    return { pk: s(`NAMESPACE#${name}`), sk: s(NS) };
  }

  async createNamespace(ns: NamespaceEntry): Promise<void> {
    const props = JSON.stringify(ns.properties);
    try {
      await this.send(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: {
              ...this.nsKey(ns.name),
              name: s(ns.name),
              properties: s(props),
              createdAt: s(ns.createdAt),
              rev: n(0),
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
      // Our own create whose response was lost stores exactly what we sent.
      const stored = await this.getNamespace(ns.name);
      if (!stored || stored.createdAt !== ns.createdAt || JSON.stringify(stored.properties) !== props)
        throw new NamespaceExistsError(ns.name);
    }
  }

  private async namespaceItem(name: string): Promise<Item | undefined> {
    if (!NAME_PART.test(name)) return undefined;
    const res = await this.send(() =>
      this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: this.nsKey(name), ConsistentRead: true }),
      ),
    );
    return res.Item;
  }

  async getNamespace(name: string): Promise<NamespaceEntry | undefined> {
    const item = await this.namespaceItem(name);
    return item ? namespaceFromItem(item) : undefined;
  }

  async listNamespaces(): Promise<NamespaceEntry[]> {
    const out = (await this.scanSortKey(NS)).map(namespaceFromItem);
    return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  /** Every item with this sort key (a paged, consistent Scan), optionally only some attributes. */
  private async scanSortKey(sk: string, attributes?: string[]): Promise<Item[]> {
    const out: Item[] = [];
    let start: Item | undefined;
    do {
      const page = await this.send(() =>
        this.client.send(
          new ScanCommand({
            TableName: this.tableName,
            FilterExpression: 'sk = :sk',
            ExpressionAttributeValues: { ':sk': s(sk) },
            ...(attributes
              ? {
                  ProjectionExpression: attributes.map((_, i) => `#a${i}`).join(', '),
                  ExpressionAttributeNames: Object.fromEntries(attributes.map((n, i) => [`#a${i}`, n])),
                }
              : {}),
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        ),
      );
      out.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async updateNamespace(
    name: string,
    change: (props: Record<string, string>) => Record<string, string>,
  ): Promise<NamespaceEntry | undefined> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const item = await this.namespaceItem(name);
      if (!item) return undefined;
      const current = namespaceFromItem(item);
      const rev = num(item, 'rev') ?? 0;
      const next = { ...current, properties: change({ ...current.properties }) };
      try {
        // A lost response retried by withRetry fails the condition; the loop re-reads and
        // applies the change again, which for set/remove gives the same result.
        await this.send(() =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.tableName,
              Key: this.nsKey(name),
              UpdateExpression: 'SET properties = :p, rev = :next',
              ConditionExpression: 'rev = :rev',
              ExpressionAttributeValues: {
                ':p': s(JSON.stringify(next.properties)),
                ':rev': n(rev),
                ':next': n(rev + 1),
              },
            }),
          ),
        );
        return next;
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
        await sleep(10 * 2 ** Math.min(attempt, 6));
      }
    }
    throw new ConflictError(`namespace "${name}" is being updated concurrently; retry`);
  }

  async dropNamespace(name: string): Promise<void> {
    if (!NAME_PART.test(name)) return;
    await this.send(() =>
      this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: this.nsKey(name) })),
    );
  }

  // ------------------------------------------------------------------ tables

  async createTable(def: TableDefinition): Promise<void> {
    const json = JSON.stringify(def);
    try {
      await this.send(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: {
              ...key(def.name, DEF),
              name: s(def.name),
              tableUuid: s(def.tableUuid),
              def: s(json),
              createdAt: s(def.createdAt),
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
      // Either the table exists, or this is our own create whose response was lost.
      const stored = await this.getItem(def.name, DEF);
      if (!stored || str(stored, 'def') !== json) throw new TableExistsError(def.name);
    }
    await this.ensurePointer(def.name, def.tableUuid);
  }

  /** Creates the POINTER item of a table (epoch 0, no snapshot), replacing a stale one. */
  private async ensurePointer(table: string, tableUuid: string): Promise<void> {
    try {
      await this.send(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: {
              ...key(table, POINTER),
              table: s(table),
              tableUuid: s(tableUuid),
              epoch: n(0),
              version: n(0),
              lsn: s('0'),
              committedLsn: s('0'),
              updatedAt: s(new Date().toISOString()),
            },
            // A pointer left by a dropped table of the same name is replaced; ours is kept.
            ConditionExpression: 'attribute_not_exists(pk) OR tableUuid <> :uuid',
            ExpressionAttributeValues: { ':uuid': s(tableUuid) },
          }),
        ),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
  }

  async getTable(name: string): Promise<TableDefinition | undefined> {
    if (!TABLE_NAME_PATTERN.test(name)) return undefined;
    const item = await this.getItem(name, DEF);
    const json = item && !renameIntentOf(item) && str(item, 'renamingTo') === undefined && str(item, 'def');
    return json ? (JSON.parse(json) as TableDefinition) : undefined;
  }

  async listTables(): Promise<TableDefinition[]> {
    const out: TableDefinition[] = [];
    for (const item of await this.scanSortKey(DEF, ['def', 'renamingTo'])) {
      const json = str(item, 'def');
      // A table being renamed has left its old name already (dynamodb-rename.ts).
      if (json && str(item, 'renamingTo') === undefined) out.push(JSON.parse(json) as TableDefinition);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async updateDefinition(def: TableDefinition): Promise<void> {
    try {
      await this.send(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: key(def.name, DEF),
            UpdateExpression: 'SET #d = :def, schemaId = :sid, specId = :spec',
            // The same table, not being renamed, and only forward (a stale writer changes nothing):
            // a newer schema, or the same schema and a newer partition spec.
            ConditionExpression:
              'attribute_exists(pk) AND tableUuid = :uuid AND attribute_not_exists(renamingTo) AND (attribute_not_exists(schemaId) OR schemaId < :sid OR (schemaId = :sid AND (attribute_not_exists(specId) OR specId < :spec)))',
            ExpressionAttributeNames: { '#d': 'def' },
            ExpressionAttributeValues: {
              ':def': s(JSON.stringify(def)),
              ':sid': n(def.schema.schemaId),
              ':spec': n(def.partitionVersion ?? 0),
              ':uuid': s(def.tableUuid),
            },
          }),
        ),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
  }

  async renameTable(from: string, def: TableDefinition, epoch: number, lsn: Lsn): Promise<void> {
    await renameTable(this.renameContext(), from, def, epoch, lsn);
  }

  async sealRename(from: string, to: string): Promise<void> {
    await sealRename(this.renameContext(), from, to);
  }

  async unsealRename(from: string): Promise<void> {
    await unsealRename(this.renameContext(), from);
  }

  async finishRenames(): Promise<void> {
    const items = await this.scanSortKey(DEF, [
      'pk',
      'renamingTo',
      'renamedDef',
      'renameLsn',
      'renamedFrom',
      'renameSealedAt',
    ]);
    const started = items.filter((i) => i.renamingTo !== undefined || i.renamedFrom !== undefined);
    if (started.length > 0) await finishRenames(this.renameContext(), started);
  }

  private renameContext(): RenameContext {
    return {
      client: this.client,
      tableName: this.tableName,
      send: (fn) => this.send(fn),
      getItem: (table, sk) => this.getItem(table, sk),
      deleteTableItems: (table) => this.dropTable(table),
    };
  }

  async dropTable(name: string): Promise<void> {
    if (!TABLE_NAME_PATTERN.test(name)) return;
    // The pointer goes first (a writer's next update fails), the definition last (a drop that
    // stops half-way leaves the table listed, and dropping it again finishes the job).
    await this.send(() =>
      this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: key(name, POINTER) })),
    );
    const rest: Item[] = [];
    let start: Item | undefined;
    do {
      const page = await this.send(() =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': s(pk(name)) },
            ProjectionExpression: 'pk, sk',
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        ),
      );
      for (const item of page.Items ?? []) if (str(item, 'sk') !== DEF) rest.push(item);
      start = page.LastEvaluatedKey;
    } while (start);
    await this.batchDelete(rest);
    await this.send(() =>
      this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: key(name, DEF) })),
    );
  }

  /** BatchWriteItem deletes, 25 at a time, sending unprocessed items again with backoff. */
  private async batchDelete(items: Item[]): Promise<void> {
    for (let i = 0; i < items.length; i += 25) {
      let requests: WriteRequest[] = items
        .slice(i, i + 25)
        .map((it) => ({ DeleteRequest: { Key: { pk: it.pk, sk: it.sk } } }));
      for (let round = 1; requests.length > 0; round++) {
        const batch = requests;
        const res = await this.send(() =>
          this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.tableName]: batch } })),
        );
        requests = res.UnprocessedItems?.[this.tableName] ?? [];
        if (requests.length > 0) {
          if (round >= this.retry.maxAttempts * 4) throw new Error('DynamoDB left items unprocessed');
          await sleep(Math.random() * Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** round));
        }
      }
    }
  }

  // ------------------------------------------------------------------ epochs and pointers

  async acquireEpoch(table: string): Promise<number> {
    for (let round = 0; round < 1000; round++) {
      const [defItem, p] = await Promise.all([this.getItem(table, DEF), this.getItem(table, POINTER)]);
      if (!defItem) throw new NoSuchTableError(table);
      if (!p) {
        // The create stopped between the definition and the pointer: finish it.
        await this.ensurePointer(table, str(defItem, 'tableUuid') ?? '');
        continue;
      }
      const previous = num(p, 'epoch') ?? 0;
      const next = previous + 1;
      const mine = `${next}:${randomUUID()}`;
      // The condition holds only if nothing changed the epoch (or the token list) since the read.
      const tokens = [...(p.epochTokens?.L ?? []).slice(1 - EPOCH_TOKENS), s(mine)];
      try {
        await this.send(() =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.tableName,
              Key: key(table, POINTER),
              UpdateExpression: 'SET #e = :next, #t = :tokens',
              ConditionExpression: 'attribute_exists(pk) AND #e = :prev',
              ExpressionAttributeNames: { '#e': 'epoch', '#t': 'epochTokens' },
              ExpressionAttributeValues: { ':next': n(next), ':prev': n(previous), ':tokens': { L: tokens } },
            }),
          ),
        );
        return next;
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
        // Our increment may have landed with its response lost (and others may have taken
        // epochs since): the token list tells.
        const now = await this.getItem(table, POINTER);
        if (now?.epochTokens?.L?.some((t) => t.S === mine)) return next;
        // Another writer took an epoch meanwhile: take the next one.
      }
    }
    throw new ConflictError(`could not acquire an epoch for table "${table}"`);
  }

  async getPointer(table: string): Promise<TablePointer | undefined> {
    if (!TABLE_NAME_PATTERN.test(table)) return undefined;
    const item = await this.getItem(table, POINTER);
    return item ? pointerFromItem(table, item) : undefined;
  }

  async updatePointer(
    table: string,
    expectedVersion: number,
    epoch: number,
    update: PointerUpdate,
  ): Promise<TablePointer> {
    const names: Record<string, string> = {
      '#v': 'version',
      '#e': 'epoch',
      '#lsn': 'lsn',
      '#c': 'committedLsn',
      '#u': 'updatedAt',
    };
    const values: Item = {
      ':next': n(expectedVersion + 1),
      ':expected': n(expectedVersion),
      ':epoch': n(epoch),
      ':lsn': s(lsnToText(update.lsn)),
      ':c': s(lsnToText(update.committedLsn)),
      ':u': s(new Date().toISOString()),
    };
    const sets = ['#v = :next', '#lsn = :lsn', '#c = :c', '#u = :u'];
    const removes: string[] = [];
    OPTIONAL_POINTER_FIELDS.forEach((field, i) => {
      const v = update[field];
      names[`#o${i}`] = field;
      if (v === undefined) {
        removes.push(`#o${i}`);
      } else {
        values[`:o${i}`] = s(field === 'checkpoints' ? JSON.stringify(v) : (v as string));
        sets.push(`#o${i} = :o${i}`);
      }
    });
    try {
      const res = await this.send(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: key(table, POINTER),
            UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
            ConditionExpression: 'attribute_exists(pk) AND #e = :epoch AND #v = :expected',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      const p = res.Attributes ? pointerFromItem(table, res.Attributes) : undefined;
      if (!p) throw new Error(`DynamoDB returned no pointer for "${table}"`);
      return p;
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
      // Why did the condition fail? (After a lost response it is our own write: a version
      // mismatch, which the caller settles by reading the pointer back.)
      const now = await this.getItem(table, POINTER);
      if (!now) throw new ConflictError(`table "${table}" does not exist`);
      const currentEpoch = num(now, 'epoch') ?? 0;
      if (currentEpoch !== epoch) throw new FencedError(table, epoch, currentEpoch);
      throw new ConflictError(
        `pointer of "${table}" is at version ${num(now, 'version') ?? 0}, expected ${expectedVersion}`,
      );
    }
  }

  // ------------------------------------------------------------------ leases

  async putLease(lease: Lease): Promise<void> {
    if (tableOfLease(lease.leaseId) !== lease.table) {
      throw new Error(`lease id ${JSON.stringify(lease.leaseId)} does not name table "${lease.table}"`);
    }
    const put = this.send(() =>
      this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            ...key(lease.table, LEASE + lease.leaseId),
            leaseId: s(lease.leaseId),
            table: s(lease.table),
            snapshotKey: s(lease.snapshotKey),
            expiresAt: n(lease.expiresAt),
            ttl: n(Math.ceil(lease.expiresAt / 1000) + this.ttlGrace),
          },
        }),
      ),
    );
    // Check the table exists at the same time (one round trip on the read path).
    const [def] = await Promise.all([this.getItem(lease.table, DEF, 'pk'), put]);
    if (!def) {
      await this.send(() =>
        this.client.send(
          new DeleteItemCommand({ TableName: this.tableName, Key: key(lease.table, LEASE + lease.leaseId) }),
        ),
      );
      throw new ConflictError(`table "${lease.table}" does not exist`);
    }
  }

  async getLease(leaseId: string): Promise<Lease | undefined> {
    const table = tableOfLease(leaseId);
    if (!table || !TABLE_NAME_PATTERN.test(table)) return undefined;
    const item = await this.getItem(table, LEASE + leaseId);
    return item ? leaseFromItem(item) : undefined;
  }

  async deleteLease(leaseId: string): Promise<boolean> {
    const table = tableOfLease(leaseId);
    if (!table || !TABLE_NAME_PATTERN.test(table)) return false;
    const token = randomUUID();
    try {
      await this.send(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: key(table, LEASE + leaseId),
            UpdateExpression: 'SET #r = :token',
            ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#r) OR #r = :token)',
            ExpressionAttributeNames: { '#r': 'releasedBy' },
            ExpressionAttributeValues: { ':token': s(token) },
          }),
        ),
      );
    } catch (e) {
      if (isConditionFailed(e)) return false; // no such lease, or another call is deleting it
      throw e;
    }
    await this.send(() =>
      this.client.send(
        new DeleteItemCommand({ TableName: this.tableName, Key: key(table, LEASE + leaseId) }),
      ),
    );
    return true;
  }

  async listLeases(table: string): Promise<Lease[]> {
    if (!TABLE_NAME_PATTERN.test(table)) return [];
    const out: Lease[] = [];
    let start: Item | undefined;
    do {
      const page = await this.send(() =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :lease)',
            ExpressionAttributeValues: { ':pk': s(pk(table)), ':lease': s(LEASE) },
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const l = leaseFromItem(item);
        if (l) out.push(l);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }
}
