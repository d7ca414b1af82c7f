/**
 * The writer's own CloudWatch metrics on AWS, in the embedded metric format (Powertools
 * Metrics: one JSON line on stdout per interval; the task's awslogs driver sends it to
 * CloudWatch Logs, which turns it into metrics, no PutMetricData permission needed). Namespace
 * `POWERTOOLS_METRICS_NAMESPACE` (the stack sets `Moonlink`), dimension `WriterGroup`.
 *
 * Per interval: the main thread's event-loop delay (p99 and max over the interval: the one
 * thread that serves every table), memory held against the budget, resident memory, tables by
 * state, writes refused for backpressure, and over the group's tables the worst commit lag
 * (how long the oldest change not yet in an Iceberg commit has waited), records dead-lettered,
 * and the largest Postgres replication-slot lag — what the stack's alarms watch. Per table
 * (dimension `Table` beside `WriterGroup`): commit lag, rows, rows in memory, data files, dead
 * letters, and the source's lag where it has one.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Writer } from '../engine/writer.ts';
import type { Logger } from '../util/logger.ts';

export interface WriterMetricsOptions {
  namespace: string;
  writerGroup: number;
  /** How often metrics are published (default 60 s, CloudWatch's standard resolution). */
  intervalMs?: number;
  /** Per-table metrics too (default true; each costs as a custom metric: README "What it costs"). */
  perTable?: boolean;
}

export interface WriterMetrics {
  /** Publishes the interval's metrics now (the timer calls this; so does close). */
  publish(): void;
  close(): void;
}

export function startWriterMetrics(writer: Writer, o: WriterMetricsOptions, logger: Logger): WriterMetrics {
  const metrics = new Metrics({
    namespace: o.namespace,
    serviceName: 'moonlink-writer',
    defaultDimensions: { WriterGroup: String(o.writerGroup) },
  });
  let refusedBefore = writer.refusedWrites;
  const deadBefore = new Map<string, number>();
  // One EMF line per table and interval, its metrics under the Table dimension.
  const perTable = new Map<string, Metrics>();
  const tableMetrics = (table: string): Metrics => {
    let m = perTable.get(table);
    if (!m) {
      m = new Metrics({
        namespace: o.namespace,
        serviceName: 'moonlink-writer',
        defaultDimensions: { WriterGroup: String(o.writerGroup), Table: table },
      });
      perTable.set(table, m);
    }
    return m;
  };
  const publish = (): void => {
    try {
      const delay = writer.eventLoop.window();
      metrics.addMetric('EventLoopDelayP99', MetricUnit.Milliseconds, delay.p99Ms);
      metrics.addMetric('EventLoopDelayMax', MetricUnit.Milliseconds, delay.maxMs);
      const memory = writer.memoryStatus();
      metrics.addMetric('MemoryUsedBytes', MetricUnit.Bytes, memory.usedBytes);
      metrics.addMetric(
        'MemoryBudgetUsed',
        MetricUnit.Percent,
        (100 * memory.usedBytes) / memory.budgetBytes,
      );
      metrics.addMetric('ResidentMemoryBytes', MetricUnit.Bytes, process.memoryUsage.rss());
      const states = { open: 0, recovering: 0, damaged: 0, failed: 0 };
      for (const name of new Set([...writer.tableNames(), ...writer.problemTables()]))
        states[writer.tableState(name).state]++;
      metrics.addMetric('TablesOpen', MetricUnit.Count, states.open);
      metrics.addMetric('TablesRecovering', MetricUnit.Count, states.recovering);
      metrics.addMetric('TablesDamaged', MetricUnit.Count, states.damaged);
      metrics.addMetric('TablesFailed', MetricUnit.Count, states.failed);
      // How far each outside catalog (Glue) is behind the newest commit.
      for (const [name, lag] of Object.entries(writer.mirrorLagSeconds()))
        metrics.addMetric(`${name[0].toUpperCase()}${name.slice(1)}SyncLagSeconds`, MetricUnit.Seconds, lag);
      const refused = writer.refusedWrites;
      metrics.addMetric('BackpressureRefusals', MetricUnit.Count, refused - refusedBefore);
      refusedBefore = refused;
      let maxCommitLag = 0;
      let maxSlotLag = 0;
      let dead = 0;
      const open = new Set(writer.tableNames());
      for (const table of open) {
        const s = writer.handlerStatus(table);
        if (!s) continue;
        const commitLag = s.commitLagMs / 1000;
        const total = writer.deadLetteredByTable.get(table) ?? 0;
        const newly = total - (deadBefore.get(table) ?? 0);
        deadBefore.set(table, total);
        const lag = Number(writer.sourceStatus(table)?.lagBytes ?? Number.NaN);
        maxCommitLag = Math.max(maxCommitLag, commitLag);
        dead += newly;
        if (Number.isFinite(lag)) maxSlotLag = Math.max(maxSlotLag, lag);
        if (o.perTable === false) continue;
        const one = tableMetrics(table);
        one.addMetric('TableCommitLagSeconds', MetricUnit.Seconds, commitLag);
        one.addMetric('TableRows', MetricUnit.Count, s.rows);
        one.addMetric('TableMemRows', MetricUnit.Count, s.memRows);
        one.addMetric('TableDataFiles', MetricUnit.Count, s.dataFiles);
        one.addMetric('TableDeadLetters', MetricUnit.Count, newly);
        if (Number.isFinite(lag)) one.addMetric('TableSourceLagBytes', MetricUnit.Bytes, lag);
        one.publishStoredMetrics();
      }
      for (const table of perTable.keys()) if (!open.has(table)) perTable.delete(table);
      metrics.addMetric('CommitLagSeconds', MetricUnit.Seconds, maxCommitLag);
      metrics.addMetric('DeadLetters', MetricUnit.Count, dead);
      metrics.addMetric('PostgresSlotLagBytes', MetricUnit.Bytes, maxSlotLag);
      metrics.publishStoredMetrics();
    } catch (e) {
      logger.warn('writer metrics not published', { error: e });
    }
  };
  const timer = setInterval(publish, o.intervalMs ?? 60_000);
  timer.unref();
  return {
    publish,
    close: () => {
      clearInterval(timer);
      publish();
    },
  };
}
