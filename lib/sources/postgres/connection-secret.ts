/**
 * Where a Postgres source's credentials come from. The `connection` given at attach is kept in
 * the catalog, so it should not hold a password:
 *
 * - `env:NAME` — the connection string is the environment variable NAME of the process that
 *   connects (the service, or on AWS the writer);
 * - `file:/path` — the connection string is the file's content (trimmed), read at every
 *   connect: a mounted secret (Docker, Kubernetes) that is rotated is picked up;
 * - `arn:aws:secretsmanager:…:secret:…` — an AWS Secrets Manager secret: either a connection
 *   string, or the JSON an RDS-managed secret holds (`host`, `port`, `username`, `password`,
 *   `dbname`). Read again after five minutes, so a rotated password is picked up;
 * - anything else — a libpq connection string, as it is.
 */
import { readFile } from 'node:fs/promises';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const CACHE_MS = 5 * 60_000;
const cache = new Map<string, { value: string; at: number }>();
let client: SecretsManagerClient | undefined;

/** For tests: the Secrets Manager client to use. */
export function useSecretsClient(c: SecretsManagerClient | undefined): void {
  client = c;
  cache.clear();
}

export class ConnectionSecretError extends Error {
  readonly code = 'connection_secret';
}

function fromSecret(text: string, arn: string): string {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return text; // a connection string
  }
  const s = j as {
    host?: string;
    port?: number | string;
    username?: string;
    password?: string;
    dbname?: string;
  };
  if (!s || typeof s !== 'object' || !s.host || !s.username)
    throw new ConnectionSecretError(
      `secret ${arn} is neither a connection string nor {host, username, password, …}`,
    );
  const user = encodeURIComponent(s.username);
  const pass = s.password === undefined ? '' : `:${encodeURIComponent(s.password)}`;
  return `postgres://${user}${pass}@${s.host}:${s.port ?? 5432}/${encodeURIComponent(s.dbname ?? 'postgres')}`;
}

export async function resolveConnection(
  connection: string,
  env: Record<string, string | undefined> = process.env,
): Promise<string> {
  if (connection.startsWith('env:')) {
    const name = connection.slice(4);
    const v = env[name];
    if (!v)
      throw new ConnectionSecretError(`the connection is the environment variable ${name}, which is not set`);
    return v;
  }
  if (connection.startsWith('file:')) {
    const file = connection.slice(5);
    let text: string;
    try {
      text = (await readFile(file, 'utf8')).trim();
    } catch (e) {
      throw new ConnectionSecretError(`could not read the connection file ${file}: ${(e as Error).message}`);
    }
    if (!text) throw new ConnectionSecretError(`the connection file ${file} is empty`);
    return text;
  }
  if (!connection.startsWith('arn:aws:secretsmanager:')) return connection;
  const hit = cache.get(connection);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.value;
  const sm = await import('@aws-sdk/client-secrets-manager');
  const region = connection.split(':')[3];
  client ??= new sm.SecretsManagerClient({ region });
  let text: string | undefined;
  try {
    text = (await client.send(new sm.GetSecretValueCommand({ SecretId: connection }))).SecretString;
  } catch (e) {
    throw new ConnectionSecretError(`could not read secret ${connection}: ${(e as Error).message}`);
  }
  if (!text) throw new ConnectionSecretError(`secret ${connection} has no string value`);
  const value = fromSecret(text, connection);
  cache.set(connection, { value, at: Date.now() });
  return value;
}
