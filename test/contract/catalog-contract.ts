/**
 * The behaviour every Catalog adapter must show. `catalogContract(name, make)` defines a describe
 * block; `make` is called for every test. Table names are unique per test, so a shared backend
 * (one DynamoDB table) works: listings are checked on the test's own tables only.
 */

import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Catalog,
  ConflictError,
  FencedError,
  type Lease,
  NamespaceExistsError,
  type PointerUpdate,
  TableExistsError,
} from '../../lib/catalog/catalog.ts';
import { asLsn, lsnFromText } from '../../lib/lsn.ts';
import { buildSchema, type TableDefinition } from '../../lib/schema/table-schema.ts';

export interface CatalogFixture {
  catalog: Catalog;
  cleanup(): Promise<void>;
}

export function uniqueTable(prefix = 'c'): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

export function tableDef(name: string): TableDefinition {
  return {
    name,
    tableUuid: randomUUID(),
    schema: buildSchema(
      [
        { name: 'id', type: 'long' },
        { name: 'v', type: 'string' },
        { name: 'amount', type: 'decimal(38,10)' },
      ],
      ['id'],
    ),
    formatVersion: 2,
    createdAt: new Date().toISOString(),
  };
}

function update(lsn: string, extra: Partial<PointerUpdate> = {}): PointerUpdate {
  return { lsn: lsnFromText(lsn), committedLsn: asLsn(0n), snapshotKey: `t/snapshots/${lsn}.json`, ...extra };
}

export function catalogContract(name: string, make: () => Promise<CatalogFixture>): void {
  describe(`Catalog contract: ${name}`, () => {
    let f: CatalogFixture;
    let catalog: Catalog;
    beforeEach(async () => {
      f = await make();
      catalog = f.catalog;
    });
    afterEach(async () => {
      await f.cleanup();
    });

    it('namespaces: create, read, list, update properties, refuse a second create, drop', async () => {
      const a = uniqueTable('ns');
      const b = uniqueTable('ns');
      const createdAt = new Date().toISOString();
      await catalog.createNamespace({ name: b, properties: { owner: 'x' }, createdAt });
      await catalog.createNamespace({ name: a, properties: {}, createdAt });
      await expect(
        catalog.createNamespace({ name: a, properties: { o: '1' }, createdAt }),
      ).rejects.toBeInstanceOf(NamespaceExistsError);
      expect(await catalog.getNamespace(b)).toEqual({ name: b, properties: { owner: 'x' }, createdAt });
      expect(await catalog.getNamespace(uniqueTable('ns'))).toBeUndefined();
      const mine = (await catalog.listNamespaces()).filter((n) => n.name === a || n.name === b);
      expect(mine.map((n) => n.name)).toEqual([a, b].sort());
      const updated = await catalog.updateNamespace(b, (p) => {
        delete p.owner;
        return { ...p, team: 'data', 'k.v': 'w' };
      });
      expect(updated?.properties).toEqual({ team: 'data', 'k.v': 'w' });
      expect((await catalog.getNamespace(b))?.properties).toEqual({ team: 'data', 'k.v': 'w' });
      expect(await catalog.updateNamespace(uniqueTable('ns'), (p) => p)).toBeUndefined();
      // Concurrent updates each land (compare-and-swap, re-read on conflict).
      await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          catalog.updateNamespace(a, (p) => ({ ...p, [`k${i}`]: String(i) })),
        ),
      );
      expect(Object.keys((await catalog.getNamespace(a))?.properties ?? {}).sort()).toEqual([
        'k0',
        'k1',
        'k2',
        'k3',
        'k4',
      ]);
      await catalog.dropNamespace(a);
      await catalog.dropNamespace(b);
      expect(await catalog.getNamespace(a)).toBeUndefined();
      expect((await catalog.listNamespaces()).some((n) => n.name === a || n.name === b)).toBe(false);
    });

    it('holds tables of a namespace (ns.name) apart from the default namespace', async () => {
      const ns = uniqueTable('ns');
      const t = uniqueTable();
      await catalog.createTable(tableDef(`${ns}.${t}`));
      await catalog.createTable(tableDef(t));
      expect((await catalog.getTable(`${ns}.${t}`))?.name).toBe(`${ns}.${t}`);
      const names = (await catalog.listTables()).map((d) => d.name).filter((n) => n.endsWith(t));
      expect(names).toEqual([t, `${ns}.${t}`].sort());
      await catalog.dropTable(`${ns}.${t}`);
      expect(await catalog.getTable(`${ns}.${t}`)).toBeUndefined();
      expect((await catalog.getTable(t))?.name).toBe(t);
      await catalog.dropTable(t);
    });

    it('creates, reads, lists (sorted) and refuses a second create', async () => {
      const prefix = uniqueTable('ls');
      const names = [`${prefix}_b`, `${prefix}_a`, `${prefix}_c`];
      const defs = names.map(tableDef);
      for (const d of defs) await catalog.createTable(d);
      expect(await catalog.getTable(names[0])).toEqual(defs[0]);
      const listed = (await catalog.listTables()).filter((d) => d.name.startsWith(prefix));
      expect(listed.map((d) => d.name)).toEqual([...names].sort());
      expect(listed.find((d) => d.name === names[1])).toEqual(defs[1]);
      const again = tableDef(names[0]);
      await expect(catalog.createTable(again)).rejects.toBeInstanceOf(TableExistsError);
      expect(await catalog.getTable(names[0])).toEqual(defs[0]);
      expect(await catalog.getTable(uniqueTable('missing'))).toBeUndefined();
      expect(await catalog.getPointer(names[0])).toBeUndefined();
    });

    it('fences with epochs: each acquire is higher, a stale writer is refused', async () => {
      const t = uniqueTable();
      await catalog.createTable(tableDef(t));
      const e1 = await catalog.acquireEpoch(t);
      const e2 = await catalog.acquireEpoch(t);
      expect(e2).toBe(e1 + 1);
      const p = await catalog.updatePointer(t, 0, e2, update('10'));
      const e3 = await catalog.acquireEpoch(t);
      expect(e3).toBe(e2 + 1);
      const err = await catalog.updatePointer(t, p.version, e2, update('11')).catch((e) => e);
      expect(err).toBeInstanceOf(FencedError);
      expect((err as FencedError).epoch).toBe(e2);
      expect((err as FencedError).currentEpoch).toBe(e3);
      // The epoch is checked before the version.
      expect(await catalog.updatePointer(t, 99, e1, update('11')).catch((e) => e)).toBeInstanceOf(
        FencedError,
      );
      const p2 = await catalog.updatePointer(t, p.version, e3, update('11'));
      expect(p2.epoch).toBe(e3);
      await expect(catalog.acquireEpoch(uniqueTable('missing'))).rejects.toThrow();
    });

    it('updates the pointer by compare-and-swap on its version', async () => {
      const t = uniqueTable();
      await catalog.createTable(tableDef(t));
      const epoch = await catalog.acquireEpoch(t);
      await expect(catalog.updatePointer(t, 1, epoch, update('1'))).rejects.toBeInstanceOf(ConflictError);
      const big = '18446744073709551615123';
      const p1 = await catalog.updatePointer(
        t,
        0,
        epoch,
        update(big, {
          committedLsn: asLsn(5n),
          metadataLocation: 's3://b/t/metadata/00001.metadata.json',
          metadataKey: 't/metadata/00001.metadata.json',
          checkpoints: { 'shardId-000000000001': '4968', 'shardId-000000000000': '1' },
        }),
      );
      expect(p1).toMatchObject({
        table: t,
        version: 1,
        epoch,
        lsn: lsnFromText(big),
        committedLsn: asLsn(5n),
      });
      expect(typeof p1.updatedAt).toBe('string');
      const read = await catalog.getPointer(t);
      expect(read).toEqual(p1);
      // Key order of checkpoints is kept (writers compare pointers by their JSON).
      expect(JSON.stringify(read?.checkpoints)).toBe(
        JSON.stringify({ 'shardId-000000000001': '4968', 'shardId-000000000000': '1' }),
      );
      await expect(catalog.updatePointer(t, 0, epoch, update('2'))).rejects.toBeInstanceOf(ConflictError);
      // Fields missing from an update are removed.
      const p2 = await catalog.updatePointer(t, 1, epoch, { lsn: asLsn(3n), committedLsn: asLsn(3n) });
      expect(p2.version).toBe(2);
      const read2 = await catalog.getPointer(t);
      expect(read2).toEqual(p2);
      expect(read2?.snapshotKey).toBeUndefined();
      expect(read2?.metadataKey).toBeUndefined();
      expect(read2?.checkpoints).toBeUndefined();
      // Concurrent swaps from one version: exactly one wins.
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => catalog.updatePointer(t, 2, epoch, update(String(10 + i)))),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError);
      expect((await catalog.getPointer(t))?.version).toBe(3);
      await expect(catalog.updatePointer(uniqueTable('missing'), 0, 1, update('1'))).rejects.toBeInstanceOf(
        ConflictError,
      );
    });

    it('keeps leases: put, get by id, list (expired included), delete once', async () => {
      const t = uniqueTable();
      const other = uniqueTable();
      await catalog.createTable(tableDef(t));
      await catalog.createTable(tableDef(other));
      const now = Date.now();
      const leases: Lease[] = [
        { leaseId: `${t}.aaa`, table: t, snapshotKey: 's/1', expiresAt: now + 60_000 },
        { leaseId: `${t}.bbb`, table: t, snapshotKey: 's/2', expiresAt: now - 1000 },
        { leaseId: `${other}.ccc`, table: other, snapshotKey: 's/3', expiresAt: now + 60_000 },
      ];
      for (const l of leases) await catalog.putLease(l);
      expect(await catalog.getLease(`${t}.aaa`)).toEqual(leases[0]);
      expect(await catalog.getLease(`${t}.zzz`)).toBeUndefined();
      expect(await catalog.getLease('no-dot')).toBeUndefined();
      expect(await catalog.getLease(`${uniqueTable('missing')}.x`)).toBeUndefined();
      const listed = (await catalog.listLeases(t)).sort((a, b) => (a.leaseId < b.leaseId ? -1 : 1));
      expect(listed).toEqual([leases[0], leases[1]]);
      // A put replaces (renewal).
      await catalog.putLease({ ...leases[0], expiresAt: now + 120_000 });
      expect((await catalog.getLease(`${t}.aaa`))?.expiresAt).toBe(now + 120_000);
      expect(await catalog.deleteLease(`${t}.aaa`)).toBe(true);
      expect(await catalog.deleteLease(`${t}.aaa`)).toBe(false);
      expect(await catalog.deleteLease(`${t}.never`)).toBe(false);
      expect(await catalog.getLease(`${t}.aaa`)).toBeUndefined();
      expect((await catalog.listLeases(t)).map((l) => l.leaseId)).toEqual([`${t}.bbb`]);
      expect((await catalog.listLeases(other)).map((l) => l.leaseId)).toEqual([`${other}.ccc`]);
      expect(await catalog.listLeases(uniqueTable('missing'))).toEqual([]);
      const missing = uniqueTable('missing');
      await expect(
        catalog.putLease({ leaseId: `${missing}.x`, table: missing, snapshotKey: 's', expiresAt: now }),
      ).rejects.toBeInstanceOf(ConflictError);
      // Concurrent deletes of one lease: exactly one reports it.
      const results = await Promise.all(Array.from({ length: 4 }, () => catalog.deleteLease(`${other}.ccc`)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('drops a table with its pointer and leases; a new table of that name starts fresh', async () => {
      const t = uniqueTable();
      await catalog.createTable(tableDef(t));
      const epoch = await catalog.acquireEpoch(t);
      await catalog.updatePointer(t, 0, epoch, update('7'));
      await catalog.putLease({
        leaseId: `${t}.l1`,
        table: t,
        snapshotKey: 's',
        expiresAt: Date.now() + 1000,
      });
      await catalog.dropTable(t);
      expect(await catalog.getTable(t)).toBeUndefined();
      expect(await catalog.getPointer(t)).toBeUndefined();
      expect(await catalog.listLeases(t)).toEqual([]);
      expect(await catalog.getLease(`${t}.l1`)).toBeUndefined();
      expect((await catalog.listTables()).some((d) => d.name === t)).toBe(false);
      await catalog.dropTable(t);
      await catalog.dropTable(uniqueTable('missing'));
      const def = tableDef(t);
      await catalog.createTable(def);
      expect(await catalog.getTable(t)).toEqual(def);
      expect(await catalog.getPointer(t)).toBeUndefined();
      const e = await catalog.acquireEpoch(t);
      const p = await catalog.updatePointer(t, 0, e, update('1'));
      expect(p.version).toBe(1);
    });

    it('renames a table: definition and pointer move, LSNs raised, old name free; refusals', async () => {
      const from = uniqueTable('rf');
      const to = uniqueTable('rt');
      const def = tableDef(from);
      await catalog.createTable(def);
      const epoch = await catalog.acquireEpoch(from);
      const before = await catalog.updatePointer(
        from,
        0,
        epoch,
        update('12', {
          committedLsn: asLsn(10n),
          metadataLocation: 'file:///m/v2.metadata.json',
          metadataKey: 'm',
        }),
      );
      await catalog.putLease({
        leaseId: `${from}.l1`,
        table: from,
        snapshotKey: 's',
        expiresAt: Date.now() + 1e5,
      });
      const renamed = { ...def, name: to, location: from };
      // A stale writer, a missing table and a taken name are refused, and change nothing.
      await expect(catalog.renameTable(from, renamed, epoch + 1, asLsn(0n))).rejects.toBeInstanceOf(
        FencedError,
      );
      await expect(
        catalog.renameTable(uniqueTable('none'), renamed, epoch, asLsn(0n)),
      ).rejects.toBeInstanceOf(ConflictError);
      const taken = uniqueTable('taken');
      await catalog.createTable(tableDef(taken));
      await expect(
        catalog.renameTable(from, { ...renamed, name: taken }, epoch, asLsn(0n)),
      ).rejects.toBeInstanceOf(TableExistsError);
      expect(await catalog.getTable(from)).toEqual(def);

      await catalog.renameTable(from, renamed, epoch, asLsn(11n));
      expect(await catalog.getTable(from)).toBeUndefined();
      expect(await catalog.getPointer(from)).toBeUndefined();
      expect(await catalog.listLeases(from)).toEqual([]);
      expect(await catalog.getTable(to)).toEqual(renamed);
      const names = (await catalog.listTables()).map((d) => d.name);
      expect(names).toContain(to);
      expect(names).not.toContain(from);
      const after = await catalog.getPointer(to);
      expect(after).toMatchObject({
        table: to,
        epoch,
        lsn: asLsn(12n),
        committedLsn: asLsn(11n),
        metadataLocation: before.metadataLocation,
        snapshotKey: before.snapshotKey,
      });
      // The writer that renamed it goes on with the pointer under the new name.
      const next = await catalog.acquireEpoch(to);
      await catalog.updatePointer(to, after?.version ?? 0, next, update('13', { committedLsn: asLsn(13n) }));
      // The old name can be created again, as a new table.
      const again = tableDef(from);
      await catalog.createTable(again);
      expect(await catalog.getTable(from)).toEqual(again);
      expect(await catalog.getPointer(from)).toBeUndefined();
    });
  });
}
