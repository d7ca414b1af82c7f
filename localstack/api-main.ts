/**
 * The public API as the Lambda functions serve it — the same handlers, the same `awsServices`
 * built from the environment (MOONLINK_BUCKET, MOONLINK_CATALOG_TABLE, MOONLINK_STREAM, the
 * MOONLINK_*_ENDPOINT emulator endpoints, MOONLINK_WRITER_URL_TEMPLATE) — behind the local HTTP
 * adapter on PORT instead of API Gateway: the `api` service of localstack/docker-compose.yml, or
 * any machine that should serve the API of an AWS-shaped deployment without Lambda.
 */
import { routeGroups } from '../functions/all-routes.ts';
import { createApiHandler } from '../functions/api.ts';
import { awsServices } from '../functions/aws-services.ts';
import { startLocalServer } from '../functions/local-adapter.ts';
import { icebergTableConfigFor } from '../functions/vended-table-config.ts';

const services = awsServices(process.env, icebergTableConfigFor);
const port = Number(process.env.PORT ?? '8080');
const host = process.env.HOST ?? '127.0.0.1';
const handler = createApiHandler(
  services,
  routeGroups(['health', 'tables', 'ingest', 'read', 'flush', 'catalog']),
);
startLocalServer(handler, {
  port,
  host,
  maxBodyBytes: services.limits.maxBodyBytes,
  token: process.env.MOONLINK_API_TOKEN || undefined,
}).then(
  (server) => services.logger.info('API serving', { url: server.url }),
  (e) => {
    services.logger.error('API could not start', { error: e });
    process.exit(1);
  },
);
