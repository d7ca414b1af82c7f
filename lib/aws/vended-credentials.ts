/**
 * Vended credentials for the Iceberg REST catalog: a client that sends
 * `X-Iceberg-Access-Delegation: vended-credentials` gets short-lived, read-only credentials for
 * that one table's prefix, so an engine without AWS grants of its own can read the files. They
 * come from STS AssumeRole on the stack's read role with a session policy that narrows it to
 * GetObject under the table's prefix and ListBucket of that prefix (the effective permissions
 * are the intersection of the role's and the session policy's).
 */
import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';

export interface VendOptions {
  roleArn: string;
  bucket: string;
  /** Key prefix of the table, ending in `/` (e.g. `warehouse/tables/analytics/events/`). */
  keyPrefix: string;
  region: string;
  /** Seconds the credentials last (default 3600; STS allows 900 up to the role's maximum). */
  durationSeconds?: number;
  partition?: string;
}

export interface TableAccess {
  config: Record<string, string>;
  storageCredentials: { prefix: string; config: Record<string, string> }[];
}

/** The session policy: read the table's objects and list its prefix, nothing else. */
export function tableReadPolicy(
  bucket: string,
  keyPrefix: string,
  partition = 'aws',
): Record<string, unknown> {
  if (!keyPrefix.endsWith('/') || /[*?]/.test(keyPrefix))
    throw new Error(`unsafe key prefix ${JSON.stringify(keyPrefix)}`);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['s3:GetObject'],
        Resource: [`arn:${partition}:s3:::${bucket}/${keyPrefix}*`],
      },
      {
        Effect: 'Allow',
        Action: ['s3:ListBucket'],
        Resource: [`arn:${partition}:s3:::${bucket}`],
        Condition: { StringLike: { 's3:prefix': [`${keyPrefix}*`] } },
      },
    ],
  };
}

export async function vendTableCredentials(sts: STSClient, o: VendOptions): Promise<TableAccess> {
  const res = await sts.send(
    new AssumeRoleCommand({
      RoleArn: o.roleArn,
      RoleSessionName: `moonlink-read-${Date.now()}`.slice(0, 64),
      DurationSeconds: o.durationSeconds ?? 3600,
      Policy: JSON.stringify(tableReadPolicy(o.bucket, o.keyPrefix, o.partition)),
    }),
  );
  const c = res.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken)
    throw new Error('STS returned no credentials');
  const creds: Record<string, string> = {
    's3.access-key-id': c.AccessKeyId,
    's3.secret-access-key': c.SecretAccessKey,
    's3.session-token': c.SessionToken,
    ...(c.Expiration ? { 's3.session-token-expires-at-ms': String(c.Expiration.getTime()) } : {}),
    'client.region': o.region,
  };
  return {
    config: creds,
    storageCredentials: [{ prefix: `s3://${o.bucket}/${o.keyPrefix}`, config: creds }],
  };
}
