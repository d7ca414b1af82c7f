/**
 * A Postgres connection in logical replication mode (`replication=database`), on top of `pg`:
 * replication commands (CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT, START_REPLICATION) and the
 * CopyBoth stream they open, with the socket paused and resumed for back-pressure.
 */

import pg from 'pg';
import type { Lsn } from '../../lsn.ts';
import { resolveConnection } from './connection-secret.ts';
import { quoteIdent } from './pg-schema.ts';
import { PG_SESSION_OPTIONS, parsePgLsn } from './pg-text.ts';

interface PgConnectionInternals {
  on(event: 'copyData', fn: (msg: { chunk: Buffer }) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { pause(): void; resume(): void };
}

/** A regular connection with the session settings the text decoders expect. */
export async function connectPg(connection: string, applicationName = 'moonlink'): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: await resolveConnection(connection),
    options: PG_SESSION_OPTIONS,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  });
  client.on('error', () => undefined); // surfaced through the failing query instead
  await client.connect();
  return client;
}

export class ReplicationClient {
  private ended = false;
  private constructor(private readonly client: pg.Client) {}

  static async connect(connection: string, applicationName: string): Promise<ReplicationClient> {
    const client = new pg.Client({
      connectionString: await resolveConnection(connection),
      options: PG_SESSION_OPTIONS,
      application_name: applicationName,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      replication: 'database',
    } as pg.ClientConfig & { replication: string });
    const rc = new ReplicationClient(client);
    client.on('error', () => undefined);
    client.on('end', () => {
      rc.ended = true;
    });
    await client.connect();
    return rc;
  }

  private get conn(): PgConnectionInternals {
    return (this.client as unknown as { connection: PgConnectionInternals }).connection;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** `CREATE_REPLICATION_SLOT … LOGICAL pgoutput EXPORT_SNAPSHOT`: the slot's consistent point and snapshot. */
  async createSlot(slot: string): Promise<{ consistentPoint: Lsn; snapshotName: string }> {
    const r = await this.client.query(
      `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`,
    );
    const row = r.rows[0] as { consistent_point: string; snapshot_name: string };
    return { consistentPoint: parsePgLsn(row.consistent_point), snapshotName: row.snapshot_name };
  }

  /**
   * START_REPLICATION with pgoutput protocol 2 and streaming of in-progress transactions. Each
   * CopyData message goes to `onData`; resolves when the stream ends, rejects on an error.
   */
  startReplication(
    slot: string,
    startLsn: string,
    publication: string,
    onData: (chunk: Buffer) => void,
  ): Promise<void> {
    this.conn.on('copyData', (msg) => onData(msg.chunk));
    const pub = `"${publication.replace(/"/g, '""')}"`;
    const sql =
      `START_REPLICATION SLOT ${quoteIdent(slot)} LOGICAL ${startLsn} ` +
      `(proto_version '2', streaming 'on', publication_names '${pub.replace(/'/g, "''")}')`;
    return this.client.query(sql).then(() => undefined);
  }

  send(chunk: Buffer): void {
    if (!this.ended) this.conn.sendCopyFromChunk(chunk);
  }

  pause(): void {
    this.conn.stream.pause();
  }

  resume(): void {
    this.conn.stream.resume();
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const timeout = new Promise((r) => setTimeout(r, 2000).unref());
    await Promise.race([this.client.end().catch(() => undefined), timeout]);
    // A server that stopped answering: close the socket ourselves.
    (this.conn.stream as unknown as { destroy?: () => void }).destroy?.();
  }
}
