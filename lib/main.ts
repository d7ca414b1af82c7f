/** `npm start`: the embedded service. SIGTERM/SIGINT stop it cleanly (flushing every table). */
import { serviceConfigFromEnv } from './config.ts';
import { startEmbedded } from './embedded/embedded-service.ts';
import { JsonLogger } from './util/logger.ts';

const logger = new JsonLogger();
let config: ReturnType<typeof serviceConfigFromEnv>;
try {
  config = serviceConfigFromEnv();
} catch (e) {
  logger.error('invalid configuration', { error: (e as Error).message });
  process.exit(2);
}

const service = await startEmbedded(config, logger).catch((e) => {
  logger.error('could not start', { error: e });
  process.exit(1);
});

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    service.close({ flush: true }).then(
      () => process.exit(0),
      (e) => {
        logger.error('shutdown failed', { error: e });
        process.exit(1);
      },
    );
  });
}
