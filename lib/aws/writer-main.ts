/**
 * The writer container's entry point (see Dockerfile): a member of its writer group, active
 * while it holds the group's lease, a standby otherwise (writer-group-member.ts). SIGTERM
 * drains: an active writer flushes every table and releases the lease, then the process exits.
 */
import { engineOptionsFromEnv } from '../config.ts';
import { JsonLogger } from '../util/logger.ts';
import { awsConfigFromEnv } from './aws-config.ts';
import { startWriterGroupMember } from './writer-group-member.ts';

const logger = new JsonLogger({ service: 'moonlink-writer' });

function positive(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    logger.error(`${name} must be a positive integer (milliseconds)`, { value: v });
    process.exit(1);
  }
  return n;
}

async function main(): Promise<void> {
  const member = await startWriterGroupMember(
    awsConfigFromEnv(),
    engineOptionsFromEnv(),
    logger,
    { port: Number(process.env.PORT ?? '8081'), host: process.env.HOST ?? '0.0.0.0' },
    {
      leaseTtlMs: positive('MOONLINK_WRITER_LEASE_TTL_MS'),
      pollMs: positive('MOONLINK_WRITER_LEASE_POLL_MS'),
    },
  ).catch((e) => {
    logger.error('writer could not start', { error: e });
    process.exit(1);
  });
  member.active.catch((e) => {
    if (member.role() === 'closing' || member.role() === 'closed') return;
    logger.error('writer could not start', { error: e });
    process.exit(1);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info('draining', { signal, role: member.role() });
      member.close({ flush: true }).then(
        () => process.exit(0),
        (e) => {
          logger.error('drain failed', { error: e });
          process.exit(1);
        },
      );
    });
  }
}

void main();
