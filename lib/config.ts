/**
 * Configuration from environment variables (the README's configuration table lists them all).
 * Invalid values stop the process with a message naming the variable.
 */
import { type ApiLimits, DEFAULT_LIMITS } from '../functions/services.ts';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './engine/options.ts';
import { importRootsFromEnv } from './sources/import/import-errors.ts';

export interface ServiceConfig {
  port: number;
  host: string;
  dataDir: string;
  /** Log segment files open at once across tables (`MOONLINK_LOG_MAX_OPEN_FILES`). */
  logMaxOpenFiles?: number;
  engine: EngineOptions;
  limits: ApiLimits;
  /** MOONLINK_API_TOKEN: clients send it as a bearer token; required beyond loopback. */
  apiToken?: string;
  /** MOONLINK_IMPORT_ROOTS: local folders file:// imports may read (none by default). */
  importRoots: string[];
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, dflt: number, min = 0): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v.trim()) || Number(v) < min)
    throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function ratio(env: Env, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1)
    throw new Error(`${name} must be a number in (0, 1], got ${JSON.stringify(v)}`);
  return n;
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new Error(`${name} must be true or false, got ${JSON.stringify(v)}`);
}

export function engineOptionsFromEnv(env: Env = process.env): EngineOptions {
  const d = DEFAULT_ENGINE_OPTIONS;
  const compression = env.MOONLINK_DATA_COMPRESSION ?? d.dataCompression;
  if (!['zstd', 'snappy', 'lz4', 'none'].includes(compression)) {
    throw new Error(
      `MOONLINK_DATA_COMPRESSION must be zstd, snappy, lz4 or none, got ${JSON.stringify(compression)}`,
    );
  }
  return {
    memSliceMaxBytes: int(env, 'MOONLINK_MEMSLICE_MAX_BYTES', d.memSliceMaxBytes, 1024),
    memSliceMaxRows: int(env, 'MOONLINK_MEMSLICE_MAX_ROWS', d.memSliceMaxRows, 1),
    snapshotIntervalMs: int(env, 'MOONLINK_SNAPSHOT_INTERVAL_MS', d.snapshotIntervalMs, 10),
    commitIntervalMs: int(env, 'MOONLINK_COMMIT_INTERVAL_MS', d.commitIntervalMs, 100),
    schemaCommitDelayMs: int(env, 'MOONLINK_SCHEMA_COMMIT_DELAY_MS', d.schemaCommitDelayMs, 0),
    targetFileBytes: int(env, 'MOONLINK_TARGET_FILE_BYTES', d.targetFileBytes, 1024),
    compactDeletedRatio: ratio(env, 'MOONLINK_COMPACT_DELETED_RATIO', d.compactDeletedRatio),
    compactMinSmallFiles: int(env, 'MOONLINK_COMPACT_MIN_SMALL_FILES', d.compactMinSmallFiles, 2),
    compactSmallFileAgeMs: int(env, 'MOONLINK_COMPACT_SMALL_FILE_AGE_MS', d.compactSmallFileAgeMs, 0),
    compactYieldUtilization: ratio(env, 'MOONLINK_COMPACT_YIELD_UTILIZATION', d.compactYieldUtilization),
    indexMemoryBytes: int(env, 'MOONLINK_INDEX_MEMORY_BYTES', d.indexMemoryBytes, 0),
    indexMaxRuns: int(env, 'MOONLINK_INDEX_MAX_RUNS', d.indexMaxRuns, 2),
    leaseTtlMs: int(env, 'MOONLINK_LEASE_TTL_MS', d.leaseTtlMs, 1000),
    gcIntervalMs: int(env, 'MOONLINK_GC_INTERVAL_MS', d.gcIntervalMs, 0),
    candidateGraceMs: int(env, 'MOONLINK_GC_GRACE_MS', d.candidateGraceMs, 0),
    orphanGraceMs: int(env, 'MOONLINK_ORPHAN_GRACE_MS', d.orphanGraceMs, 0),
    idempotencyRetentionMs: int(env, 'MOONLINK_IDEMPOTENCY_RETENTION_MS', d.idempotencyRetentionMs, 1000),
    idempotencyMaxKeys: int(env, 'MOONLINK_IDEMPOTENCY_MAX_KEYS', d.idempotencyMaxKeys, 1),
    keepSnapshots: int(env, 'MOONLINK_KEEP_SNAPSHOTS', d.keepSnapshots, 1),
    maxSnapshotAgeMs: env.MOONLINK_MAX_SNAPSHOT_AGE_MS
      ? int(env, 'MOONLINK_MAX_SNAPSHOT_AGE_MS', 0, 1)
      : d.maxSnapshotAgeMs,
    orphanSweepIntervalMs: int(env, 'MOONLINK_ORPHAN_SWEEP_INTERVAL_MS', d.orphanSweepIntervalMs, 0),
    dataCompression: compression as EngineOptions['dataCompression'],
    compaction: bool(env, 'MOONLINK_COMPACTION', d.compaction),
    memoryBudgetBytes: int(env, 'MOONLINK_MEMORY_BUDGET_BYTES', d.memoryBudgetBytes, 1 << 20),
  };
}

export function limitsFromEnv(engine: EngineOptions, env: Env = process.env): ApiLimits {
  const d = DEFAULT_LIMITS;
  return {
    maxBodyBytes: int(env, 'MOONLINK_MAX_BODY_BYTES', d.maxBodyBytes, 1024),
    maxOpsPerRequest: int(env, 'MOONLINK_MAX_OPS_PER_REQUEST', d.maxOpsPerRequest, 1),
    rateLimitPerSecond: int(env, 'MOONLINK_RATE_LIMIT_RPS', d.rateLimitPerSecond, 0),
    maxWaitMs: int(env, 'MOONLINK_MAX_WAIT_MS', d.maxWaitMs, 0),
    defaultScanLimit: d.defaultScanLimit,
    maxScanLimit: int(env, 'MOONLINK_MAX_SCAN_LIMIT', d.maxScanLimit, 1),
    leaseTtlMs: engine.leaseTtlMs,
    leaseWindowMs: Math.floor(engine.candidateGraceMs / 2),
  };
}

export function serviceConfigFromEnv(env: Env = process.env): ServiceConfig {
  const engine = engineOptionsFromEnv(env);
  return {
    port: int(env, 'PORT', 8080, 0),
    host: env.HOST ?? '127.0.0.1',
    dataDir: env.MOONLINK_DATA_DIR ?? './data',
    logMaxOpenFiles: int(env, 'MOONLINK_LOG_MAX_OPEN_FILES', 256, 1),
    engine,
    limits: limitsFromEnv(engine, env),
    apiToken: env.MOONLINK_API_TOKEN || undefined,
    importRoots: importRootsFromEnv(env),
  };
}
