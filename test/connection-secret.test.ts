/**
 * Where Postgres credentials come from (lib/sources/postgres/connection-secret.ts): `env:NAME`,
 * `file:/path`, an AWS Secrets Manager ARN (the client mocked with aws-sdk-client-mock: no Secrets Manager
 * emulator here; IAM and rotation by AWS itself are not covered), or the string as it is. The
 * end-to-end attach with `env:` against a real Postgres is in postgres-cdc.test.ts.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createTableBody } from '../lib/schema/table-schema.ts';
import {
  ConnectionSecretError,
  resolveConnection,
  useSecretsClient,
} from '../lib/sources/postgres/connection-secret.ts';

const sm = mockClient(SecretsManagerClient);
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:moonlink/shop-AbCdEf';
afterEach(() => {
  sm.reset();
  useSecretsClient(undefined);
});

describe('Postgres connection secrets', () => {
  it('takes a connection string as it is, and env:NAME from the environment', async () => {
    expect(await resolveConnection('postgres://u@h/db')).toBe('postgres://u@h/db');
    expect(await resolveConnection('env:PG_SHOP', { PG_SHOP: 'postgres://a:b@h/db' })).toBe(
      'postgres://a:b@h/db',
    );
    await expect(resolveConnection('env:PG_MISSING', {})).rejects.toThrow(/PG_MISSING, which is not set/);
  });

  it('reads file:/path at every connect (a mounted secret, rotated)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlsecret-'));
    const file = path.join(dir, 'pg');
    await fs.writeFile(file, 'postgres://a:b@h/db\n');
    expect(await resolveConnection(`file:${file}`)).toBe('postgres://a:b@h/db');
    await fs.writeFile(file, 'postgres://a:rotated@h/db');
    expect(await resolveConnection(`file:${file}`)).toBe('postgres://a:rotated@h/db');
    await fs.writeFile(file, '  \n');
    await expect(resolveConnection(`file:${file}`)).rejects.toThrow(/is empty/);
    await expect(resolveConnection(`file:${dir}/missing`)).rejects.toThrow(ConnectionSecretError);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('reads an RDS-style secret (escaping the password) or a connection string, and caches it', async () => {
    useSecretsClient(new SecretsManagerClient({ region: 'eu-west-1' }));
    sm.on(GetSecretValueCommand, { SecretId: ARN }).resolves({
      SecretString: JSON.stringify({
        engine: 'postgres',
        host: 'db.internal',
        port: 5433,
        username: 'moon',
        password: 'p@ss/w:rd',
        dbname: 'shop',
      }),
    });
    expect(await resolveConnection(ARN)).toBe('postgres://moon:p%40ss%2Fw%3Ard@db.internal:5433/shop');
    expect(await resolveConnection(ARN)).toBe('postgres://moon:p%40ss%2Fw%3Ard@db.internal:5433/shop');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    useSecretsClient(new SecretsManagerClient({ region: 'eu-west-1' }));
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'postgres://x:y@h:5432/d' });
    expect(await resolveConnection(ARN)).toBe('postgres://x:y@h:5432/d');
  });

  it('says clearly when the secret cannot be read or has no usable value', async () => {
    useSecretsClient(new SecretsManagerClient({ region: 'eu-west-1' }));
    sm.on(GetSecretValueCommand).rejects(new Error('AccessDeniedException: not allowed'));
    await expect(resolveConnection(ARN)).rejects.toThrow(ConnectionSecretError);
    useSecretsClient(new SecretsManagerClient({ region: 'eu-west-1' }));
    sm.on(GetSecretValueCommand).resolves({ SecretString: '{"user":"x"}' });
    await expect(resolveConnection(ARN)).rejects.toThrow(/neither a connection string nor/);
  });

  it('takes source.postgres.secretArn as the connection it names, and exactly one of the two', () => {
    const body = (postgres: Record<string, unknown>) =>
      createTableBody.safeParse({ name: 't', source: { postgres } });
    const ok = body({ secretArn: ARN, table: 'public.orders' });
    expect(ok.success && ok.data.source?.postgres).toEqual({ connection: ARN, table: 'public.orders' });
    const both = body({ secretArn: ARN, connection: 'env:PG', table: 'public.orders' });
    expect(both.success).toBe(false);
    expect(JSON.stringify(both.error?.issues)).toContain('exactly one of');
    expect(body({ table: 'public.orders' }).success).toBe(false);
    const notArn = body({ secretArn: 'moonlink/shop', table: 'public.orders' });
    expect(JSON.stringify(notArn.error?.issues)).toContain('must be a Secrets Manager secret ARN');
  });
});
