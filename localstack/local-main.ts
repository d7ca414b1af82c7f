/** `npm run local`: S3, DynamoDB and Kinesis emulators, the writer and the API on PORT. */
import { serviceConfigFromEnv } from '../lib/config.ts';
import { JsonLogger } from '../lib/util/logger.ts';
import { startLocalAws } from './local-aws.ts';

const logger = new JsonLogger({ service: 'moonlink-local' });
const local = await startLocalAws(serviceConfigFromEnv(), logger).catch((e) => {
  logger.error('could not start', { error: e });
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    logger.info('shutting down', { signal });
    local.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
