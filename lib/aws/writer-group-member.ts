/**
 * One task of a writer group: the group's active writer while it holds the group's lease
 * (catalog/dynamodb-writer-lease.ts), a standby otherwise. A group runs two tasks, so a crash
 * or a rolling deploy never leaves it without a writer for longer than a takeover:
 *
 * - A standby polls the lease. Once it is free — released by a draining holder, or expired
 *   after a crash — it takes it and starts the writer, which opens the group's tables under new
 *   fencing epochs (so a holder that was only paused can commit nothing more) and replays the
 *   stream since their last commits.
 * - Meanwhile the standby answers on the same port: `/health/live` 200, `/health` 503
 *   (`standby`), and internal requests forwarded to the holder's URL from the lease, so a
 *   function that reached the standby (both tasks share the group's DNS name) is still served.
 *   With no holder to forward to it answers 503 `writer_standby` with Retry-After, which the
 *   functions retry (functions/writer-link-http.ts).
 * - The active writer renews the lease every third of its TTL. A renewal that finds the lease
 *   taken (this task was paused past it) ends the task (`onLeaseLost`): its tables are fenced
 *   already, and ECS starts it again as a standby.
 * - On SIGTERM the active writer drains (flushes and commits every table), then releases the
 *   lease, so a standby takes over within one poll.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import os from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbWriterLease, type WriterLeaseHolder } from '../catalog/dynamodb-writer-lease.ts';
import type { EngineOptions } from '../engine/options.ts';
import { sleep } from '../util/aws-retry.ts';
import type { Logger } from '../util/logger.ts';
import { clientConfigFor } from './aws-adapters.ts';
import type { AwsConfig } from './aws-config.ts';
import { type AwsWriter, startAwsWriter } from './aws-writer.ts';
import { type FrontServer, listenFront } from './writer-api.ts';

export type MemberRole = 'standby' | 'starting' | 'active' | 'closing' | 'closed';

export interface GroupMemberOptions {
  /** How long a lease lasts unless renewed (default 15 s). */
  leaseTtlMs?: number;
  /** How often a standby looks at the lease (default 1 s). */
  pollMs?: number;
  /** The URL other tasks reach this one's internal API at (default: its first private IPv4). */
  advertiseUrl?: string;
  /** The lease was taken over while this task was active (default: exit the process). */
  onLeaseLost?: () => void;
}

export interface WriterGroupMember {
  readonly id: string;
  readonly url: string;
  role(): MemberRole;
  /** The writer, once this task is active. */
  writer(): AwsWriter | undefined;
  /** Resolves when this task has become the active writer. */
  readonly active: Promise<AwsWriter>;
  /** Stops: an active writer drains (flushes unless told not to) and releases the lease. */
  close(options?: { flush?: boolean }): Promise<void>;
  /** Stops as a crash would: no flush, the lease left to expire (for tests). */
  crash(): Promise<void>;
}

/** Internal requests forwarded by a standby carry this header; a standby never forwards them again. */
const FORWARDED = 'x-moonlink-forwarded';

function privateUrl(host: string, port: number): string {
  if (host !== '0.0.0.0' && host !== '::') return `http://${host}:${port}`;
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return `http://${a.address}:${port}`;
  }
  return `http://127.0.0.1:${port}`;
}

function answer(res: http.ServerResponse, status: number, body: unknown, retry = false): void {
  res
    .writeHead(status, { 'content-type': 'application/json', ...(retry ? { 'retry-after': '1' } : {}) })
    .end(JSON.stringify(body));
}

export async function startWriterGroupMember(
  config: AwsConfig,
  engine: EngineOptions,
  logger: Logger,
  listen: { port: number; host: string; syncIntervalMs?: number },
  options: GroupMemberOptions = {},
): Promise<WriterGroupMember> {
  const ttlMs = options.leaseTtlMs ?? 15_000;
  const pollMs = options.pollMs ?? 1000;
  const id = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const client = new DynamoDBClient({
    ...clientConfigFor(config, config.endpoints.dynamodb),
    maxAttempts: 3,
  });
  const stop = new AbortController();
  let role: MemberRole = 'standby';
  let writer: AwsWriter | undefined;
  let starting: Promise<void> | undefined;
  let renewals: NodeJS.Timeout | undefined;
  let known: { holder: WriterLeaseHolder | undefined; at: number } | undefined;
  let lease: DynamoDbWriterLease;

  const holder = async (): Promise<WriterLeaseHolder | undefined> => {
    if (!known || Date.now() - known.at > 500) known = { holder: await lease.holder(), at: Date.now() };
    return known.holder;
  };

  const unavailable = (res: http.ServerResponse, message: string) =>
    answer(res, 503, { error: { code: 'writer_standby', message } }, true);

  /** A standby's answers; internal requests go on to the active writer. */
  const standby: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://writer');
    if (url.pathname === '/health/live') return answer(res, 200, { status: 'alive', role });
    if (url.pathname === '/health')
      return answer(res, 503, {
        status: role === 'standby' ? 'standby' : role,
        activeWriter: known?.holder?.url ?? null,
      });
    if (role !== 'standby' || req.headers[FORWARDED])
      return unavailable(res, `writer ${role === 'standby' ? 'standby' : role}: no active writer answered`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => {
      void (async () => {
        const h = await holder().catch(() => undefined);
        if (!h || h.id === id) return unavailable(res, 'no active writer yet; a takeover is under way');
        try {
          const r = await fetch(h.url + (req.url ?? '/'), {
            method: req.method,
            headers: {
              [FORWARDED]: '1',
              ...(req.headers['content-type'] ? { 'content-type': String(req.headers['content-type']) } : {}),
            },
            body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
            signal: AbortSignal.timeout(30_000),
          });
          const body = Buffer.from(await r.arrayBuffer());
          const type = r.headers.get('content-type');
          const retry = r.headers.get('retry-after');
          res.writeHead(r.status, {
            ...(type ? { 'content-type': type } : {}),
            ...(retry ? { 'retry-after': retry } : {}),
          });
          res.end(body);
        } catch (e) {
          known = undefined;
          unavailable(res, `the active writer did not answer: ${(e as Error).message}`);
        }
      })();
    });
  };

  const front: FrontServer = await listenFront(listen.port, listen.host, standby);
  const url =
    options.advertiseUrl ?? process.env.MOONLINK_WRITER_ADVERTISE_URL ?? privateUrl(listen.host, front.port);
  lease = new DynamoDbWriterLease({
    client,
    tableName: config.catalogTable,
    group: config.writerGroup,
    self: { id, url },
    ttlMs,
  });

  let resolveActive: (w: AwsWriter) => void = () => undefined;
  let rejectActive: (e: unknown) => void = () => undefined;
  const active = new Promise<AwsWriter>((resolve, reject) => {
    resolveActive = resolve;
    rejectActive = reject;
  });
  active.catch(() => undefined);

  const lost = (why: string) => {
    if (role === 'closing' || role === 'closed') return;
    logger.error('writer lease lost: another task took the group over', { group: config.writerGroup, why });
    clearInterval(renewals);
    (options.onLeaseLost ?? (() => process.exit(1)))();
  };

  const startRenewals = () => {
    let renewedAt = Date.now();
    renewals = setInterval(
      () => {
        lease.renew().then(
          (ok) => {
            if (ok) renewedAt = Date.now();
            else lost('renewal refused');
          },
          (e) => {
            logger.warn('writer lease renewal failed', { error: e });
            if (Date.now() - renewedAt >= ttlMs) lost('not renewed within its TTL');
          },
        );
      },
      Math.max(50, Math.floor(ttlMs / 3)),
    );
    renewals.unref();
  };

  const takeOver = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      try {
        const h = await lease.holder();
        known = { holder: h, at: Date.now() };
        if ((!h || h.id === id) && (await lease.acquire())) break;
      } catch (e) {
        logger.warn('writer lease unreadable', { error: e });
      }
      await sleep(pollMs, stop.signal);
    }
    if (stop.signal.aborted) return;
    role = 'starting';
    startRenewals();
    logger.info('writer lease taken: starting the writer', { group: config.writerGroup, id, url });
    writer = await startAwsWriter(config, engine, logger, { ...listen, front });
    if (role !== 'starting') return; // closed while starting: shutdown closes it
    role = 'active';
    resolveActive(writer);
  };
  starting = takeOver().catch((e) => {
    logger.error('writer could not start', { error: e });
    rejectActive(e);
    throw e;
  });
  starting.catch(() => undefined);
  logger.info('writer group member up', { group: config.writerGroup, id, url });

  const shutdown = async (drain: boolean, flush: boolean): Promise<void> => {
    const wasActive = role === 'starting' || role === 'active';
    role = 'closing';
    stop.abort();
    await starting?.catch(() => undefined);
    if (writer) await writer.close({ flush: drain && flush });
    clearInterval(renewals);
    if (drain && (wasActive || writer))
      await lease.release().catch((e) => logger.warn('lease release failed', { error: e }));
    await front.close();
    client.destroy();
    role = 'closed';
    rejectActive(new Error('closed before becoming active'));
  };

  return {
    id,
    url,
    role: () => role,
    writer: () => writer,
    active,
    close: (o = {}) => shutdown(true, o.flush ?? true),
    crash: () => shutdown(false, false),
  };
}
