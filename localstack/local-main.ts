/**
 * `npm run local`: S3, DynamoDB and Kinesis emulators, the writer and the API on PORT. The
 * emulators keep their data under MOONLINK_DATA_DIR (emulators/), so a restart — after a crash
 * too — finds every acknowledged write; one process at a time holds the folder.
 */
import path from 'node:path';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { lockDir } from '../lib/util/dir-lock.ts';
import { JsonLogger } from '../lib/util/logger.ts';
import { startLocalAws } from './local-aws.ts';

const logger = new JsonLogger({ service: 'moonlink-local' });
const config = serviceConfigFromEnv();
const dataDir = path.resolve(config.dataDir);
const started = lockDir(dataDir).then(async (unlock) => ({
  unlock,
  local: await startLocalAws(config, logger, { emulatorDataDir: path.join(dataDir, 'emulators') }),
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
