/**
 * `npm run local`: S3, DynamoDB and Kinesis emulators, the writer and the API on PORT. The
 * emulators keep their data under MOONLINK_DATA_DIR (emulators/), so a restart — after a crash
 * too — finds every acknowledged write; one process at a time holds the folder.
 *
 * `npm run local -- --endpoint http://localhost:4566` runs the writer and the API against
 * services that already run instead (LocalStack: its bucket, table and stream as
 * localstack/init creates them); `--s3-endpoint`, `--dynamodb-endpoint`, `--kinesis-endpoint`
 * name them one by one, `--bucket`, `--catalog-table`, `--stream` their resources.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { lockDir } from '../lib/util/dir-lock.ts';
import { JsonLogger } from '../lib/util/logger.ts';
import { startLocalAws } from './local-aws.ts';

const logger = new JsonLogger({ service: 'moonlink-local' });
const config = serviceConfigFromEnv();
const { values: args } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    's3-endpoint': { type: 'string' },
    'dynamodb-endpoint': { type: 'string' },
    'kinesis-endpoint': { type: 'string' },
    bucket: { type: 'string' },
    'catalog-table': { type: 'string' },
    stream: { type: 'string' },
  },
});
const s3 = args['s3-endpoint'] ?? args.endpoint;
const dynamodb = args['dynamodb-endpoint'] ?? args.endpoint;
const kinesis = args['kinesis-endpoint'] ?? args.endpoint;
if ((s3 || dynamodb || kinesis) && !(s3 && dynamodb && kinesis)) {
  logger.error('give --endpoint, or all of --s3-endpoint, --dynamodb-endpoint and --kinesis-endpoint');
  process.exit(2);
}
const endpoints =
  s3 && dynamodb && kinesis
    ? {
        s3,
        dynamodb,
        kinesis,
        bucket: args.bucket,
        catalogTable: args['catalog-table'],
        stream: args.stream,
      }
    : undefined;
const dataDir = path.resolve(config.dataDir);
const started = lockDir(dataDir).then(async (unlock) => ({
  unlock,
  local: await startLocalAws(config, logger, { emulatorDataDir: path.join(dataDir, 'emulators'), endpoints }),
}));
const { local, unlock } = await started.catch((e) => {
  logger.error('could not start', { error: e });
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    logger.info('shutting down', { signal });
    local
      .close()
      .then(unlock)
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}
