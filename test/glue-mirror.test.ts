/**
 * Glue registration (lib/aws/glue-catalog-mirror.ts) against the Glue client mocked with
 * aws-sdk-client-mock: no Glue emulator runs here (s3rver, dynalite and kinesalite have none;
 * LocalStack needs Docker). Covered: the exact calls and their inputs, VersionId races, catching
 * up after an outage, a stale writer that stops, drops. Not covered: Glue's own validation of
 * the inputs and IAM (infra.test.ts checks the grants), and Athena reading the result.
 */

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ConcurrentModificationException,
  CreateDatabaseCommand,
  CreateTableCommand,
  DeleteTableCommand,
  EntityNotFoundException,
  GetTableCommand,
  GlueClient,
  InternalServiceException,
  UpdateTableCommand,
} from '@aws-sdk/client-glue';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GlueCatalogMirror, hiveType } from '../lib/aws/glue-catalog-mirror.ts';
import { MemoryCatalog } from '../lib/catalog/file-catalog.ts';
import type { MirroredTable } from '../lib/engine/catalog-mirror.ts';
import { engineOptions } from '../lib/engine/options.ts';
import { Writer } from '../lib/engine/writer.ts';
import { LocalLog } from '../lib/log/local-log.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { parseType } from '../lib/schema/iceberg-type.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { createTable, definitionFromBody, renameTable } from '../lib/table-admin.ts';
import type { Operations } from '../lib/txn/op-batch.ts';
import { silentLogger } from '../lib/util/logger.ts';

const glue = mockClient(GlueClient);
const schema = buildSchema(
  [
    { name: 'id', type: 'long' },
    { name: 'Note', type: 'string' },
    { name: 'amount', type: 'decimal(12,2)' },
    { name: 'tags', type: 'list<string>' },
  ],
  ['id'],
);
const uuid = '11111111-2222-3333-4444-555555555555';

function table(version: number, name = 'analytics.Orders', tableUuid = uuid): MirroredTable {
  return {
    table: name,
    tableUuid,
    tableLocation: 's3://bucket/wh/tables/analytics/Orders',
    metadataLocation: `s3://bucket/wh/tables/analytics/Orders/metadata/v${version}.metadata.json`,
    schema,
  };
}

const notFound = () => new EntityNotFoundException({ message: 'not found', $metadata: {} });

function glueTable(version: number, versionId: string, tableUuid = uuid) {
  return {
    Table: {
      Name: 'orders',
      DatabaseName: 'moonlink_analytics',
      VersionId: versionId,
      Parameters: {
        table_type: 'ICEBERG',
        metadata_location: table(version).metadataLocation,
        'moonlink.table-uuid': tableUuid,
      },
    },
  };
}

async function settle(m: GlueCatalogMirror, name = 'analytics.Orders'): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const s = m.status(name);
    if (s && (s.state === 'synced' || s.state === 'stopped')) return s;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`not settled: ${JSON.stringify(m.status(name))}`);
}

let mirror: GlueCatalogMirror;
beforeEach(() => {
  glue.reset();
  mirror = new GlueCatalogMirror({
    client: new GlueClient({ region: 'us-east-1' }),
    logger: silentLogger,
    retryBaseMs: 5,
    retryMaxMs: 20,
  });
});
afterEach(async () => {
  await mirror.close();
});

describe('Glue catalog mirror', () => {
  it('creates the database of a new namespace and the table, as Iceberg GlueCatalog does', async () => {
    glue.on(GetTableCommand).rejects(notFound());
    glue.on(CreateTableCommand).rejectsOnce(notFound()).resolves({});
    glue.on(CreateDatabaseCommand).resolves({});
    mirror.committed(table(1));
    const status = await settle(mirror);
    expect(status).toMatchObject({
      state: 'synced',
      database: 'moonlink_analytics',
      table: 'orders',
      syncedLocation: table(1).metadataLocation,
      lagSeconds: 0,
    });
    expect(glue.commandCalls(CreateDatabaseCommand)[0].args[0].input).toEqual({
      CatalogId: undefined,
      DatabaseInput: { Name: 'moonlink_analytics', Description: 'Moonlink namespace analytics' },
    });
    const created = glue.commandCalls(CreateTableCommand);
    expect(created).toHaveLength(2);
    expect(created[1].args[0].input).toEqual({
      DatabaseName: 'moonlink_analytics',
      CatalogId: undefined,
      TableInput: {
        Name: 'orders',
        TableType: 'EXTERNAL_TABLE',
        Parameters: {
          table_type: 'ICEBERG',
          metadata_location: table(1).metadataLocation,
          'moonlink.table': 'analytics.Orders',
          'moonlink.table-uuid': uuid,
        },
        StorageDescriptor: {
          Location: 's3://bucket/wh/tables/analytics/Orders',
          Columns: [
            {
              Name: 'id',
              Type: 'bigint',
              Parameters: {
                'iceberg.field.id': '1',
                'iceberg.field.optional': 'false',
                'iceberg.field.current': 'true',
              },
            },
            {
              Name: 'note',
              Type: 'string',
              Parameters: {
                'iceberg.field.id': '2',
                'iceberg.field.optional': 'true',
                'iceberg.field.current': 'true',
              },
            },
            {
              Name: 'amount',
              Type: 'decimal(12,2)',
              Parameters: {
                'iceberg.field.id': '3',
                'iceberg.field.optional': 'true',
                'iceberg.field.current': 'true',
              },
            },
            {
              Name: 'tags',
              Type: 'array<string>',
              Parameters: {
                'iceberg.field.id': '4',
                'iceberg.field.optional': 'true',
                'iceberg.field.current': 'true',
              },
            },
          ],
        },
      },
    });
  });

  it('updates on the VersionId it read, with the previous location, and re-reads after a race', async () => {
    glue.on(GetTableCommand).resolvesOnce(glueTable(1, '7')).resolves(glueTable(1, '8'));
    glue
      .on(UpdateTableCommand)
      .rejectsOnce(new ConcurrentModificationException({ message: 'raced', $metadata: {} }))
      .resolves({});
    mirror.committed(table(2));
    expect((await settle(mirror)).syncedLocation).toBe(table(2).metadataLocation);
    const updates = glue.commandCalls(UpdateTableCommand).map((c) => c.args[0].input);
    expect(updates.map((u) => u.VersionId)).toEqual(['7', '8']);
    expect(updates[1].TableInput?.Parameters).toMatchObject({
      metadata_location: table(2).metadataLocation,
      previous_metadata_location: table(1).metadataLocation,
    });
    expect(glue.commandCalls(CreateTableCommand)).toHaveLength(0);
  });

  it('keeps committing through a Glue outage and catches up to the newest location in one update', async () => {
    let down = true;
    glue.on(GetTableCommand).callsFake(async () => {
      if (down) throw new InternalServiceException({ message: 'Glue is down', $metadata: {} });
      return glueTable(1, '3');
    });
    glue.on(UpdateTableCommand).resolves({});
    mirror.committed(table(2));
    await new Promise((r) => setTimeout(r, 30));
    mirror.committed(table(3));
    mirror.committed(table(4));
    const during = mirror.status('analytics.Orders')!;
    expect(during.state).toBe('retrying');
    expect(during.lastError).toMatchObject({ code: 'InternalServiceException', message: 'Glue is down' });
    expect(mirror.lagSeconds()).toBeGreaterThan(0);
    down = false;
    const after = await settle(mirror);
    expect(after.syncedLocation).toBe(table(4).metadataLocation);
    expect(after.lastError).toBeUndefined();
    expect(mirror.lagSeconds()).toBe(0);
    const updates = glue
      .commandCalls(UpdateTableCommand)
      .map((c) => c.args[0].input.TableInput?.Parameters?.metadata_location);
    expect(updates).toEqual([table(4).metadataLocation]);
  });

  it('a stale writer never moves the pointer back, and stops syncing the table', async () => {
    glue.on(GetTableCommand).resolves(glueTable(9, '12'));
    mirror.committed(table(5));
    const s = await settle(mirror);
    expect(s.state).toBe('stopped');
    expect(s.lastError).toMatchObject({ code: 'NewerInGlue' });
    expect(glue.commandCalls(UpdateTableCommand)).toHaveLength(0);
    mirror.committed(table(6));
    await new Promise((r) => setTimeout(r, 20));
    expect(glue.commandCalls(UpdateTableCommand)).toHaveLength(0);
  });

  it('a table re-created under the same name (new uuid) replaces the old registration', async () => {
    glue.on(GetTableCommand).resolves(glueTable(9, '4', 'old-uuid'));
    glue.on(UpdateTableCommand).resolves({});
    mirror.committed(table(1));
    expect((await settle(mirror)).state).toBe('synced');
    expect(glue.commandCalls(UpdateTableCommand)[0].args[0].input.VersionId).toBe('4');
  });

  it('a released table (fenced writer) is not synced any more; drop deletes it, missing or not', async () => {
    glue.on(GetTableCommand).rejects(notFound());
    glue.on(CreateTableCommand).resolves({});
    mirror.committed(table(1));
    await settle(mirror);
    mirror.released('analytics.Orders');
    glue.resetHistory();
    glue
      .on(DeleteTableCommand)
      .rejectsOnce(new InternalServiceException({ message: 'x', $metadata: {} }))
      .rejects(notFound());
    await mirror.dropped('analytics.Orders');
    expect(glue.commandCalls(DeleteTableCommand).map((c) => c.args[0].input)).toEqual([
      { DatabaseName: 'moonlink_analytics', Name: 'orders', CatalogId: undefined },
      { DatabaseName: 'moonlink_analytics', Name: 'orders', CatalogId: undefined },
    ]);
    expect(mirror.status('analytics.Orders')).toBeUndefined();
  });

  it('default-namespace tables go to the stack database; Hive types for every Iceberg type', async () => {
    expect(mirror.glueNames('orders')).toEqual({ database: 'moonlink_default', name: 'orders' });
    const cases: [string, string][] = [
      ['boolean', 'boolean'],
      ['int', 'int'],
      ['long', 'bigint'],
      ['float', 'float'],
      ['double', 'double'],
      ['date', 'date'],
      ['time', 'string'],
      ['timestamp', 'timestamp'],
      ['timestamptz', 'timestamp'],
      ['string', 'string'],
      ['uuid', 'string'],
      ['binary', 'binary'],
      ['fixed[16]', 'binary'],
      ['decimal(38,10)', 'decimal(38,10)'],
      ['map<string,long>', 'map<string,bigint>'],
      ['struct<a:int,b:list<double>>', 'struct<a:int,b:array<double>>'],
    ];
    for (const [iceberg, hive] of cases) expect(hiveType(parseType(iceberg)), iceberg).toBe(hive);
  });
});

describe('the writer and its Glue mirror', () => {
  it('registers a table when it opens, follows every commit, and removes it on drop', async () => {
    // A small model of Glue's table store: VersionId checked on update, as Glue does.
    let stored:
      | {
          Parameters: Record<string, string>;
          VersionId: string;
          Columns?: { Name?: string; Type?: string }[];
        }
      | undefined;
    const calls: string[] = [];
    glue.on(GetTableCommand).callsFake(async () => {
      calls.push('get');
      if (!stored) throw notFound();
      return { Table: { Name: 'orders', ...structuredClone(stored) } };
    });
    glue.on(CreateTableCommand).callsFake(async (input) => {
      calls.push('create');
      stored = { Parameters: input.TableInput.Parameters, VersionId: '1' };
      return {};
    });
    glue.on(CreateDatabaseCommand).resolves({});
    glue.on(UpdateTableCommand).callsFake(async (input) => {
      calls.push('update');
      if (!stored || input.VersionId !== stored.VersionId)
        throw new ConcurrentModificationException({ message: 'version', $metadata: {} });
      stored = {
        Parameters: input.TableInput.Parameters,
        VersionId: String(Number(stored.VersionId) + 1),
        Columns: input.TableInput.StorageDescriptor?.Columns,
      };
      return {};
    });
    glue.on(DeleteTableCommand).callsFake(async () => {
      calls.push('delete');
      stored = undefined;
      return {};
    });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlglue-'));
    const store = new LocalObjectStore(path.join(dir, 'objects'));
    const catalog = new MemoryCatalog();
    const log = new LocalLog<Operations>(path.join(dir, 'log'), { logger: silentLogger });
    const pool = new ParquetWorkerPool(1);
    const writer = new Writer({
      store,
      catalog,
      log,
      pool,
      options: engineOptions({ commitIntervalMs: 600_000 }),
      logger: silentLogger,
      spillDir: path.join(dir, 'spill'),
      mirrors: [mirror],
    });
    try {
      await writer.start();
      const def = definitionFromBody({
        name: 'analytics.orders',
        columns: [
          { name: 'id', type: 'long' },
          { name: 'v', type: 'string' },
        ],
        primaryKey: ['id'],
      });
      await createTable(store, catalog, def, log);
      await writer.open(def.name);
      await settle(mirror, def.name);
      expect(stored?.Parameters.metadata_location).toBe(
        (await catalog.getPointer(def.name))?.metadataLocation,
      );
      for (let round = 0; round < 3; round++) {
        const ops = [{ op: 'upsert', row: { id: round, v: `r${round}` } }];
        await log.append(def.name, new TextEncoder().encode(JSON.stringify({ ops })));
        const committed = await writer.commit(def.name);
        for (let i = 0; i < 200 && stored?.Parameters.metadata_location !== committed.metadataLocation; i++)
          await new Promise((r) => setTimeout(r, 5));
        expect(stored?.Parameters.metadata_location).toBe(committed.metadataLocation);
      }
      expect(stored?.Parameters.previous_metadata_location).toMatch(/v3\.metadata\.json$/);
      expect(stored?.VersionId).toBe('4');
      // A schema change reaches Glue's columns with its commit (Athena sees the new column).
      await writer.changeSchema(def.name, {
        changes: [
          { action: 'add-column', name: 'note', type: 'string' },
          { action: 'rename-column', name: 'v', newName: 'label' },
        ],
      });
      const evolved = await writer.commit(def.name);
      for (let i = 0; i < 200 && stored?.Parameters.metadata_location !== evolved.metadataLocation; i++)
        await new Promise((r) => setTimeout(r, 5));
      expect(stored?.Columns?.map((c) => `${c.Name}:${c.Type}`)).toEqual([
        'id:bigint',
        'label:string',
        'note:string',
      ]);
      await settle(mirror, def.name);
      expect(writer.catalogStatus(def.name)?.glue).toMatchObject({ state: 'synced', lagSeconds: 0 });
      expect(writer.mirrorLagSeconds()).toEqual({ glue: 0 });
      await writer.drop(def.name);
      expect(stored).toBeUndefined();
      expect(calls.filter((c) => c !== 'get')).toEqual([
        'create',
        'update',
        'update',
        'update',
        'update',
        'delete',
      ]);
    } finally {
      await writer.close();
      await log.close();
      await pool.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('on a rename, removes the old name and registers the new one at the same location', async () => {
    // Glue's tables by database and name, VersionId checked on update.
    const stored = new Map<
      string,
      { Parameters: Record<string, string>; VersionId: string; Location?: string }
    >();
    const keyOf = (i: { DatabaseName?: string; Name?: string }) => `${i.DatabaseName}.${i.Name}`;
    glue.on(GetTableCommand).callsFake(async (input) => {
      const t = stored.get(keyOf(input));
      if (!t) throw notFound();
      return { Table: { Name: input.Name, ...structuredClone(t) } };
    });
    glue.on(CreateTableCommand).callsFake(async (input) => {
      stored.set(`${input.DatabaseName}.${input.TableInput.Name}`, {
        Parameters: input.TableInput.Parameters,
        VersionId: '1',
        Location: input.TableInput.StorageDescriptor?.Location,
      });
      return {};
    });
    glue.on(CreateDatabaseCommand).resolves({});
    glue.on(UpdateTableCommand).callsFake(async (input) => {
      const k = `${input.DatabaseName}.${input.TableInput.Name}`;
      const t = stored.get(k);
      if (!t || input.VersionId !== t.VersionId)
        throw new ConcurrentModificationException({ message: 'version', $metadata: {} });
      stored.set(k, {
        ...t,
        Parameters: input.TableInput.Parameters,
        VersionId: String(Number(t.VersionId) + 1),
      });
      return {};
    });
    glue.on(DeleteTableCommand).callsFake(async (input) => {
      stored.delete(keyOf(input));
      return {};
    });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlglue-'));
    const store = new LocalObjectStore(path.join(dir, 'objects'));
    const catalog = new MemoryCatalog();
    const log = new LocalLog<Operations>(path.join(dir, 'log'), { logger: silentLogger });
    const pool = new ParquetWorkerPool(1);
    const writer = new Writer({
      store,
      catalog,
      log,
      pool,
      options: engineOptions({ commitIntervalMs: 600_000 }),
      logger: silentLogger,
      spillDir: path.join(dir, 'spill'),
      mirrors: [mirror],
    });
    try {
      await writer.start();
      const def = definitionFromBody({ name: 'analytics.orders', columns: [{ name: 'id', type: 'long' }] });
      await createTable(store, catalog, def, log);
      await writer.open(def.name);
      await log.append(
        def.name,
        new TextEncoder().encode(JSON.stringify({ ops: [{ op: 'insert', row: { id: 1 } }] })),
      );
      await writer.commit(def.name);
      await settle(mirror, def.name);
      const before = stored.get('moonlink_analytics.orders');
      expect(before).toBeDefined();
      await renameTable(catalog, (f, t) => writer.rename(f, t), def.name, 'archive.orders_2023');
      await settle(mirror, 'archive.orders_2023');
      expect(stored.has('moonlink_analytics.orders')).toBe(false);
      const after = stored.get('moonlink_archive.orders_2023');
      expect(after?.Parameters.metadata_location).toBe(
        (await catalog.getPointer('archive.orders_2023'))?.metadataLocation,
      );
      expect(after?.Location).toBe(before?.Location);
    } finally {
      await writer.close();
      await log.close();
      await pool.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
