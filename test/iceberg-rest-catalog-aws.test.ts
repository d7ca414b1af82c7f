/**
 * The Iceberg REST catalog of the AWS shape (`npm run local`: the tables function over
 * DynamoDB, S3 and the writer's internal API, on emulators), driven by the same outside clients
 * as the embedded one. Not covered here: IAM (SigV4) auth in front of it, which is API
 * Gateway's (infra.test.ts checks the routes and their authorizer).
 */
import { serviceConfigFromEnv } from '../lib/config.ts';
import { silentLogger } from '../lib/util/logger.ts';
import { startLocalAws } from '../localstack/local-aws.ts';
import { restCatalogContract } from './contract/rest-catalog-contract.ts';
import { s3ToEndpoint } from './support/location-fetch.ts';

restCatalogContract('AWS shape on emulators', async () => {
  const local = await startLocalAws(
    serviceConfigFromEnv({
      PORT: '0',
      MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
      MOONLINK_COMMIT_INTERVAL_MS: '600000',
      MOONLINK_MAX_WAIT_MS: '20000',
    }),
    silentLogger,
  );
  const prefix = `${local.config.prefix}/`;
  return {
    url: local.url,
    locations: s3ToEndpoint(local.emulators.s3.endpoint),
    listKeys: async (p) => {
      const keys: string[] = [];
      for await (const o of local.services.store.list(p)) keys.push(o.key);
      return keys.map((k) => (k.startsWith(prefix) ? k.slice(prefix.length) : k));
    },
    close: () => local.close(),
  };
});
