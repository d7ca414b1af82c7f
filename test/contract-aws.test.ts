/**
 * The adapter contracts against the AWS adapters, over local emulators (s3rver, dynalite,
 * kinesalite; see localstack/emulators.ts), started once for the file.
 *
 * Not covered here, because the emulators cannot show it:
 * - S3 conditional create (`If-None-Match: *`): s3rver ignores the header, so the contract's
 *   ifNoneMatch test is skipped; test/aws-faults.test.ts checks the adapter's side (header sent,
 *   412 mapped, lost-response check) with a request handler that enforces the condition.
 * - Listing order where a key sorts between a "folder" and its contents ("a-b" < "a/x"):
 *   s3rver walks its directories instead; real S3 lists in UTF-8 byte order.
 * - DynamoDB TTL expiry (dynalite has none): the catalog never relies on it.
 */

import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../lib/catalog/catalog.ts';
import { DynamoDbCatalog } from '../lib/catalog/dynamodb-catalog.ts';
import { SEAL_EXPIRY_MS } from '../lib/catalog/dynamodb-rename.ts';
import { KinesisLog } from '../lib/log/kinesis-log.ts';
import { asLsn } from '../lib/lsn.ts';
import { listAll } from '../lib/store/object-store.ts';
import { S3ObjectStore } from '../lib/store/s3-object-store.ts';
import { type Emulators, startEmulators, uniqueName } from '../localstack/emulators.ts';
import { catalogContract, tableDef, uniqueTable } from './contract/catalog-contract.ts';
import { logContract } from './contract/log-contract.ts';
import { objectStoreContract } from './contract/object-store-contract.ts';

let emu: Emulators;
beforeAll(async () => {
  emu = await startEmulators({ kinesisShards: 2 });
});
afterAll(async () => {
  await emu?.stop();
});

objectStoreContract(
  'S3ObjectStore on s3rver',
  async () => {
    const prefix = uniqueName('contract');
    const store = new S3ObjectStore({
      bucket: emu.s3.bucket,
      prefix,
      client: emu.clients.s3,
      // Small enough to take the multipart and paging paths with small test data.
      multipartThresholdBytes: 256 * 1024,
      partSizeBytes: 100 * 1024,
      listPageSize: 7,
      retry: { baseDelayMs: 5 },
    });
    return { store, cleanup: async () => store.deleteMany((await listAll(store, '')).map((o) => o.key)) };
  },
  {
    conditionalPutUnsupported: 's3rver ignores If-None-Match on PUT (covered in aws-faults.test.ts)',
    httpReadUrl: true,
    listByteOrderUnsupported:
      's3rver lists in directory-walk order, so "a-b" comes after "a/…" (S3 lists in byte order)',
    largeBodyBytes: 700 * 1024 + 17,
  },
);

catalogContract('DynamoDbCatalog on dynalite', async () => ({
  catalog: new DynamoDbCatalog({ tableName: emu.dynamodb.table, client: emu.clients.dynamodb }),
  cleanup: async () => undefined,
}));

logContract('KinesisLog on kinesalite', async () => {
  const log = new KinesisLog({
    streamName: emu.kinesis.stream,
    client: emu.clients.kinesis,
    idleIntervalMs: 25,
  });
  return { log, cleanup: () => log.close() };
});

describe('DynamoDbCatalog rename interrupted by a crash (dynalite: no TransactWriteItems)', () => {
  const WRITES = new Set([
    'PutItemCommand',
    'UpdateItemCommand',
    'DeleteItemCommand',
    'BatchWriteItemCommand',
  ]);
  // The rename is a sequence of single-item writes with its intent recorded first
  // (lib/catalog/dynamodb-rename.ts): stopped before any of them, finishRenames completes it
  // or (stopped before the intent) it never happened. Never both names, never neither.
  it.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'stops before write %i of 7; finishRenames settles it',
    async (crashAt) => {
      const real = new DynamoDbCatalog({ tableName: emu.dynamodb.table, client: emu.clients.dynamodb });
      const from = uniqueTable('crf');
      const to = uniqueTable('crt');
      const def = tableDef(from);
      await real.createTable(def);
      const epoch = await real.acquireEpoch(from);
      await real.updatePointer(from, 0, epoch, { lsn: asLsn(5n), committedLsn: asLsn(5n), metadataKey: 'k' });
      await real.putLease({
        leaseId: `${from}.x`,
        table: from,
        snapshotKey: 's',
        expiresAt: Date.now() + 1e5,
      });
      let writes = 0;
      const crashing = {
        send: (cmd: { constructor: { name: string } }) => {
          if (WRITES.has(cmd.constructor.name) && ++writes === crashAt) throw new Error('crashed');
          return emu.clients.dynamodb.send(cmd as never);
        },
      } as unknown as DynamoDBClient;
      const faulty = new DynamoDbCatalog({
        tableName: emu.dynamodb.table,
        client: crashing,
        retry: { maxAttempts: 1 },
      });
      const renamed = { ...def, name: to, location: from };
      const crashed = await faulty.renameTable(from, renamed, epoch, asLsn(9n)).then(
        () => false,
        () => true,
      );
      expect(crashed).toBe(crashAt <= 7);
      await real.finishRenames();
      const [oldDef, newDef] = [await real.getTable(from), await real.getTable(to)];
      if (crashAt === 1) {
        expect(oldDef).toEqual(def);
        expect(newDef).toBeUndefined();
        expect((await real.getPointer(from))?.lsn).toBe(asLsn(5n));
        return;
      }
      expect(oldDef).toBeUndefined();
      expect(newDef).toEqual(renamed);
      expect(await real.getPointer(from)).toBeUndefined();
      expect(await real.getPointer(to)).toMatchObject({
        table: to,
        epoch,
        lsn: asLsn(9n),
        committedLsn: asLsn(9n),
        metadataKey: 'k',
      });
      const names = (await real.listTables()).map((d) => d.name);
      expect(names).toContain(to);
      expect(names).not.toContain(from);
      // Finished: running it again changes nothing.
      await real.finishRenames();
      expect(await real.getTable(to)).toEqual(renamed);
    },
  );
});

describe('DynamoDbCatalog rename seal', () => {
  it('hides the old name while sealed; unseal restores it; a stale seal is undone by finishRenames', async () => {
    const catalog = new DynamoDbCatalog({ tableName: emu.dynamodb.table, client: emu.clients.dynamodb });
    const t = uniqueTable('seal');
    const def = tableDef(t);
    await catalog.createTable(def);
    await catalog.sealRename(t, `${t}_new`);
    expect(await catalog.getTable(t)).toBeUndefined();
    expect((await catalog.listTables()).some((d) => d.name === t)).toBe(false);
    await expect(catalog.sealRename(t, 'other')).rejects.toBeInstanceOf(ConflictError);
    // A fresh seal is a rename under way: finishRenames leaves it alone.
    await catalog.finishRenames();
    expect(await catalog.getTable(t)).toBeUndefined();
    await catalog.unsealRename(t);
    expect(await catalog.getTable(t)).toEqual(def);
    // A seal whose writer died (older than SEAL_EXPIRY_MS) is undone.
    await catalog.sealRename(t, `${t}_new`);
    await emu.clients.dynamodb.send(
      new UpdateItemCommand({
        TableName: emu.dynamodb.table,
        Key: { pk: { S: `TABLE#${t}` }, sk: { S: 'DEF' } },
        UpdateExpression: 'SET renameSealedAt = :at',
        ExpressionAttributeValues: { ':at': { N: String(Date.now() - SEAL_EXPIRY_MS - 1000) } },
      }),
    );
    await catalog.finishRenames();
    expect(await catalog.getTable(t)).toEqual(def);
  });
});
