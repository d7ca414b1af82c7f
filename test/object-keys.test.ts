/**
 * Object keys (lib/store/object-keys.ts): table locations — derived, stored, and chosen so no
 * two tables overlap — and every key builder round-tripped through parseObjectKey.
 */

import { describe, expect, it } from 'vitest';
import {
  asFileId,
  dataFileKey,
  derivedLocation,
  ephemeralRootOf,
  fileIdFromKey,
  icebergDvKey,
  idempotencyKey,
  indexRunKey,
  locationForNew,
  locationOf,
  locationsOverlap,
  manifestKey,
  manifestListKey,
  metadataKeyFor,
  metadataVersion,
  parseObjectKey,
  positionDeleteKey,
  snapshotDvKey,
  snapshotManifestKey,
  tableRootOf,
  tableRootOfMetadata,
  tailFileKey,
  versionHintKey,
} from '../lib/store/object-keys.ts';

const uuid = '0123abcd-4567-89ef-0123-456789abcdef';

describe('table locations', () => {
  it('derives tables/<name> and tables/<ns>/<name>, and prefers a stored location', () => {
    expect(derivedLocation('orders')).toBe('orders');
    expect(derivedLocation('analytics.events')).toBe('analytics/events');
    expect(tableRootOf({ name: 'analytics.events' })).toBe('tables/analytics/events');
    expect(ephemeralRootOf({ name: 'orders' })).toBe('tmp/tables/orders');
    expect(locationOf({ name: 'sales.orders', location: 'orders' })).toBe('orders');
    expect(tableRootOf({ name: 'sales.orders', location: 'orders' })).toBe('tables/orders');
    expect(() => derivedLocation('1bad')).toThrow(/invalid table name/);
  });

  it('overlap is equality or one under the other, on path boundaries', () => {
    expect(locationsOverlap('a', 'a')).toBe(true);
    expect(locationsOverlap('a', 'a/b')).toBe(true);
    expect(locationsOverlap('a/b', 'a')).toBe(true);
    expect(locationsOverlap('a', 'ab')).toBe(false);
    expect(locationsOverlap('a/b', 'a/c')).toBe(false);
  });

  it('a new table gets its derived place unless a renamed table holds (or contains) it', () => {
    expect(locationForNew('orders', uuid, [{ name: 'other' }])).toBe('orders');
    // "orders" was renamed to sales.orders and kept tables/orders/.
    const renamed = [{ name: 'sales.orders', location: 'orders' }];
    const fresh = locationForNew('orders', uuid, renamed);
    expect(fresh).toBe('orders-0123abcd4567');
    // A default-namespace table "x" renamed away still holds tables/x/: tables of a later
    // namespace "x" may not go under it (a purge of one would delete the other).
    const inside = locationForNew('x.t', uuid, [{ name: 'y', location: 'x' }]);
    expect(inside).toBe('x__t-0123abcd4567');
    expect(locationsOverlap(inside, 'x')).toBe(false);
    // No name derives a place with "-": nothing can later land at or under a chosen one.
    expect(/^[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)?$/.test(fresh)).toBe(false);
  });
});

describe('object keys', () => {
  const roots = [
    { name: 'orders' },
    { name: 'analytics.events' },
    { name: 'sales.orders', location: 'orders-0123abcd4567' },
  ];
  const ids = [uuid, 'ffffffff-ffff-4fff-8fff-ffffffffffff'];

  it('every builder round-trips through parseObjectKey, under every kind of table root', () => {
    for (const place of roots) {
      const root = tableRootOf(place);
      const tmp = ephemeralRootOf(place);
      for (const id of ids) {
        for (const fileId of [0, 42, 99_999_999, 1_234_567_890].map(asFileId)) {
          const key = dataFileKey(root, fileId, id);
          expect(parseObjectKey(key)).toEqual({ kind: 'data-file', fileId });
          expect(fileIdFromKey(key)).toBe(fileId);
          expect(key.startsWith(`${root}/`)).toBe(true);
        }
        expect(parseObjectKey(indexRunKey(root, id))).toEqual({ kind: 'index-run' });
        expect(parseObjectKey(idempotencyKey(root, id))).toEqual({ kind: 'idempotency' });
        expect(parseObjectKey(tailFileKey(tmp, id))).toEqual({ kind: 'tail-file' });
        expect(parseObjectKey(snapshotDvKey(tmp, id))).toEqual({ kind: 'snapshot-dv' });
        for (const [lsn, seq] of [
          [0n, 1],
          [785n, 12],
          [2n ** 64n - 1n, 99_999],
        ] as const) {
          const key = snapshotManifestKey(tmp, lsn, seq, id);
          expect(parseObjectKey(key)).toEqual({ kind: 'snapshot-manifest', lsn, seq });
          expect(key.startsWith(`${tmp}/`)).toBe(true);
        }
        expect(parseObjectKey(icebergDvKey(root, id))).toEqual({ kind: 'iceberg-dv' });
        expect(parseObjectKey(positionDeleteKey(root, id))).toEqual({ kind: 'position-deletes' });
        expect(parseObjectKey(manifestKey(root, id, 3))).toEqual({ kind: 'manifest' });
        expect(parseObjectKey(manifestListKey(root, 4_503_599_627_370_495, id))).toEqual({
          kind: 'manifest-list',
          snapshotId: 4_503_599_627_370_495,
        });
      }
      for (const version of [1, 2, 10, 123_456]) {
        const key = metadataKeyFor(root, version);
        expect(parseObjectKey(key)).toEqual({ kind: 'metadata', version });
        expect(metadataVersion(key)).toBe(version);
        expect(tableRootOfMetadata(key)).toBe(root);
      }
      expect(parseObjectKey(versionHintKey(root))).toEqual({ kind: 'version-hint' });
    }
  });

  it('snapshot manifests sort by LSN as text, as the collector lists them', () => {
    const tmp = ephemeralRootOf({ name: 'orders' });
    const keys = [9n, 10n, 100n, 2n ** 63n].map((lsn) => snapshotManifestKey(tmp, lsn, 1, uuid));
    expect([...keys].sort()).toEqual(keys);
  });

  it('parses nothing it does not build', () => {
    for (const key of [
      'tables/orders/data/42-x.parquet',
      'tables/orders/data/00000042.parquet',
      'tables/orders/metadata/v1.json',
      'tables/orders/readme.txt',
      'tmp/tables/orders/snapshots/785-1-abc.json',
    ])
      expect(parseObjectKey(key), key).toBeUndefined();
  });
});
