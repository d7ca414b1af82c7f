/** The writer container's entry point (see Dockerfile). SIGTERM flushes every table, then exits. */
import { engineOptionsFromEnv } from '../config.ts';
import { JsonLogger } from '../util/logger.ts';
import { awsConfigFromEnv } from './aws-config.ts';
import { startAwsWriter } from './aws-writer.ts';

const logger = new JsonLogger({ service: 'moonlink-writer' });

async function main(): Promise<void> {
  const writer = await startAwsWriter(awsConfigFromEnv(), engineOptionsFromEnv(), logger, {
    port: Number(process.env.PORT ?? '8081'),
    host: process.env.HOST ?? '0.0.0.0',
  }).catch((e) => {
    logger.error('writer could not start', { error: e });
    process.exit(1);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info('draining', { signal });
      writer.close({ flush: true }).then(
        () => process.exit(0),
        (e) => {
          logger.error('drain failed', { error: e });
          process.exit(1);
        },
      );
    });
  }
}

void main();
