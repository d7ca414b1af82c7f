/** `GET /tables/{name}/snapshot` (leased read state) and `DELETE /leases/{id}`. */

import { tableOfLease } from '../../lib/catalog/catalog.ts';
import { snapshotSchema } from '../../lib/engine/snapshot-manifest.ts';
import { lsnFromText, lsnToJson } from '../../lib/lsn.ts';
import { schemaToIcebergJson } from '../../lib/schema/schema-json.ts';
import { notFound } from '../api-error.ts';
import { type HttpEvent, type HttpResult, json, lsnParam, noContent, tableParam } from '../http.ts';
import type { Services } from '../services.ts';
import { leaseSnapshot } from '../snapshot-lease.ts';

export async function snapshotRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const minLsn = lsnParam(event, 'minLsn');
  const def = await s.tables.get(name);
  if (!def) throw notFound(`table "${name}"`);
  const { manifest, lease } = await leaseSnapshot(s, name, minLsn);
  const ttl = Math.ceil(s.limits.leaseTtlMs / 1000);
  const dataFiles = await Promise.all(
    manifest.files.map(async (f) => ({
      path: s.store.uri(f.path),
      url: await s.store.readUrl(f.path, ttl),
      kind: f.kind,
      rowCount: f.rowCount,
      sizeBytes: f.sizeBytes,
      ...(f.partition ? { specId: f.specId, partition: f.partition } : {}),
      ...(f.deletes
        ? {
            deletes: {
              format: 'deletion-vector-v1',
              path: s.store.uri(f.deletes.key),
              url: await s.store.readUrl(f.deletes.key, ttl),
              offset: f.deletes.offset,
              length: f.deletes.length,
              cardinality: f.deletes.cardinality,
            },
          }
        : {}),
    })),
  );
  return json(200, {
    lsn: lsnToJson(lsnFromText(manifest.lsn)),
    schemaId: manifest.schemaId,
    // Files written before a schema change hold older columns: engines match them by field id.
    schema: schemaToIcebergJson(snapshotSchema(manifest, def)),
    dataFiles,
    leaseId: lease.leaseId,
    expiresAt: new Date(lease.expiresAt).toISOString(),
  });
}

export async function releaseLeaseRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const id = event.pathParameters?.id ?? '';
  if (!tableOfLease(id) || !/^[A-Za-z0-9_]+\.[A-Za-z0-9_-]{8,64}$/.test(id)) throw notFound(`lease "${id}"`);
  if (!(await s.catalog.deleteLease(id))) throw notFound(`lease "${id}"`);
  return noContent();
}
