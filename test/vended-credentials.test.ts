/**
 * Vended credentials of the REST catalog on AWS (lib/aws/vended-credentials.ts and the
 * LoadTableResult config of functions/aws-services.ts). STS is mocked with aws-sdk-client-mock
 * (no STS emulator here): the test checks the exact AssumeRole request, above all the session
 * policy that limits the credentials to reading one table's prefix, and how they reach the
 * client. Not covered: AWS evaluating that policy (IAM cannot run here).
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { icebergTableConfigFor } from '../functions/vended-table-config.ts';
import type { AwsConfig } from '../lib/aws/aws-config.ts';
import { tableReadPolicy } from '../lib/aws/vended-credentials.ts';
import { S3ObjectStore } from '../lib/store/s3-object-store.ts';

const sts = mockClient(STSClient);
const config: AwsConfig = {
  region: 'eu-west-1',
  bucket: 'data-bucket',
  prefix: 'warehouse',
  catalogTable: 'c',
  stream: 's',
  endpoints: {},
  writerUrlTemplate: '',
  writerGroups: 1,
  writerGroup: 0,
  vendedRoleArn: 'arn:aws:iam::123456789012:role/moonlink-read',
};
const store = new S3ObjectStore({
  bucket: 'data-bucket',
  prefix: 'warehouse',
  clientConfig: { region: 'eu-west-1' },
});

beforeEach(() => {
  sts.reset();
  sts.on(AssumeRoleCommand).resolves({
    Credentials: {
      AccessKeyId: 'ASIAEXAMPLE',
      SecretAccessKey: 'secret',
      SessionToken: 'token',
      Expiration: new Date(1_900_000_000_000),
    },
  });
});

describe('vended credentials', () => {
  it('asks STS for the read role narrowed to the one table prefix, and hands the credentials to the client', async () => {
    const vend = icebergTableConfigFor(config, store, async () => new STSClient({ region: 'eu-west-1' }));
    const access = await vend({ name: 'analytics.events' }, { vendedCredentials: true });
    const calls = sts.commandCalls(AssumeRoleCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0].args[0].input;
    expect(input.RoleArn).toBe(config.vendedRoleArn);
    expect(input.DurationSeconds).toBe(3600);
    expect(JSON.parse(input.Policy!)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: ['s3:GetObject'],
          Resource: ['arn:aws:s3:::data-bucket/warehouse/tables/analytics/events/*'],
        },
        {
          Effect: 'Allow',
          Action: ['s3:ListBucket'],
          Resource: ['arn:aws:s3:::data-bucket'],
          Condition: { StringLike: { 's3:prefix': ['warehouse/tables/analytics/events/*'] } },
        },
      ],
    });
    const creds = {
      's3.access-key-id': 'ASIAEXAMPLE',
      's3.secret-access-key': 'secret',
      's3.session-token': 'token',
      's3.session-token-expires-at-ms': '1900000000000',
      'client.region': 'eu-west-1',
    };
    expect(access).toEqual({
      config: creds,
      storageCredentials: [{ prefix: 's3://data-bucket/warehouse/tables/analytics/events/', config: creds }],
    });
  });

  it('narrows to the stored location of a table (one renamed, or created where a renamed one lives)', async () => {
    const vend = icebergTableConfigFor(config, store, async () => new STSClient({ region: 'eu-west-1' }));
    const access = await vend(
      { name: 'archive.events', location: 'analytics/events' },
      { vendedCredentials: true },
    );
    expect(access.storageCredentials?.[0].prefix).toBe('s3://data-bucket/warehouse/tables/analytics/events/');
    const policy = JSON.parse(sts.commandCalls(AssumeRoleCommand)[0].args[0].input.Policy!);
    expect(policy.Statement[0].Resource).toEqual([
      'arn:aws:s3:::data-bucket/warehouse/tables/analytics/events/*',
    ]);
  });

  it('gives only the region without the header, or when no read role is configured', async () => {
    const vend = icebergTableConfigFor(config, store, async () => new STSClient({ region: 'eu-west-1' }));
    expect(await vend({ name: 'orders' }, { vendedCredentials: false })).toEqual({
      config: { 'client.region': 'eu-west-1' },
    });
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
    const none = icebergTableConfigFor({ ...config, vendedRoleArn: undefined }, store);
    expect(await none({ name: 'orders' }, { vendedCredentials: true })).toEqual({
      config: { 'client.region': 'eu-west-1' },
    });
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  it('the policy never widens: a prefix must end in / and hold no wildcard', () => {
    expect(() => tableReadPolicy('b', 'tables/x')).toThrow(/unsafe/);
    expect(() => tableReadPolicy('b', 'tables/*/')).toThrow(/unsafe/);
    // A default-namespace table's prefix cannot cover a namespace's (tables/ns/ vs tables/ns/x/):
    // lib/namespace-admin.ts refuses a namespace named like a default-namespace table.
    expect(JSON.stringify(tableReadPolicy('b', 'tables/orders/'))).toContain('tables/orders/*');
  });
});
