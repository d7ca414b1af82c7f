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
import { afterAll, beforeAll } from 'vitest';
import { DynamoDbCatalog } from '../lib/catalog/dynamodb-catalog.ts';
import { KinesisLog } from '../lib/log/kinesis-log.ts';
import { listAll } from '../lib/store/object-store.ts';
import { S3ObjectStore } from '../lib/store/s3-object-store.ts';
import { type Emulators, startEmulators, uniqueName } from '../localstack/emulators.ts';
import { catalogContract } from './contract/catalog-contract.ts';
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
