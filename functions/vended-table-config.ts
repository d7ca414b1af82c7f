/** The Iceberg REST catalog's table `config` on AWS (the tables function's; see aws-services.ts). */

import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsConfig } from '../lib/aws/aws-config.ts';
import { vendTableCredentials } from '../lib/aws/vended-credentials.ts';
import { tableRootOf } from '../lib/store/object-keys.ts';
import type { ObjectStore } from '../lib/store/object-store.ts';
import type { Services } from './services.ts';

/**
 * The `config` of the REST catalog's LoadTableResult on AWS: the region, and with vended
 * credentials asked for, read-only credentials for the table's prefix (lib/aws/vended-credentials.ts).
 */
export function icebergTableConfigFor(
  config: AwsConfig,
  store: ObjectStore,
  // Made on the first vended-credentials request (a client's set-up is not free).
  sts: () => Promise<STSClient> = async () =>
    new (await import('@aws-sdk/client-sts')).STSClient({ region: config.region }),
): NonNullable<Services['icebergTableConfig']> {
  let client: STSClient | undefined;
  return async (table, options) => {
    const base = { 'client.region': config.region };
    if (!options.vendedCredentials) return { config: base };
    // Without a read role (a deployment other than the stack's) the header is ignored, as the
    // spec allows: PyIceberg sends it by default, and its own credentials may well suffice.
    if (!config.vendedRoleArn) return { config: base };
    client ??= await sts();
    // s3://bucket/<prefix>tables/... → the key prefix within the bucket.
    const keyPrefix = `${store.uri(tableRootOf(table)).replace(/^s3:\/\/[^/]+\//, '')}/`;
    return vendTableCredentials(client, {
      roleArn: config.vendedRoleArn,
      bucket: config.bucket,
      keyPrefix,
      region: config.region,
    });
  };
}
