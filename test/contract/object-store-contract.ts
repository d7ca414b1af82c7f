/**
 * The behaviour every ObjectStore adapter must show. `objectStoreContract(name, make)` defines a
 * describe block; `make` is called for every test and returns a fresh, empty store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  listAll,
  NotFoundError,
  type ObjectStore,
  PreconditionFailedError,
} from '../../lib/store/object-store.ts';

export interface StoreFixture {
  store: ObjectStore;
  cleanup(): Promise<void>;
}

export interface ObjectStoreCapabilities {
  /** Why create-only puts (`ifNoneMatch`) cannot be checked on this backend; the test is skipped. */
  conditionalPutUnsupported?: string;
  /** `readUrl` returns an http(s) URL the test can fetch. */
  httpReadUrl?: boolean;
  /** Size of a body that takes the adapter's large-object path (e.g. multipart), if any. */
  largeBodyBytes?: number;
  /**
   * Why byte order cannot be checked where a key sorts between a "folder" and its contents
   * (`a-b` < `a/` < `a0`); the test is skipped.
   */
  listByteOrderUnsupported?: string;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export function objectStoreContract(
  name: string,
  make: () => Promise<StoreFixture>,
  caps: ObjectStoreCapabilities = {},
): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let f: StoreFixture;
    let store: ObjectStore;
    beforeEach(async () => {
      f = await make();
      store = f.store;
    });
    afterEach(async () => {
      await f.cleanup();
    });

    it('returns the bytes it was given; a put replaces the object', async () => {
      await store.put('t/data/a.parquet', enc('first'));
      expect(await store.get('t/data/a.parquet')).toEqual(enc('first'));
      await store.put('t/data/a.parquet', enc('second, longer'), { contentType: 'application/octet-stream' });
      expect(await store.get('t/data/a.parquet')).toEqual(enc('second, longer'));
      await store.put('t/empty', new Uint8Array(0));
      expect(await store.get('t/empty')).toEqual(new Uint8Array(0));
      await store.put('t/ephemeral', enc('tail'), { ephemeral: true });
      expect(await store.get('t/ephemeral')).toEqual(enc('tail'));
    });

    it('reports a missing key: get and getRange throw NotFoundError, head is undefined', async () => {
      await expect(store.get('nope/x')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.getRange('nope/x', 0, 10)).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.getRange('nope/x', 0, 0)).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.head('nope/x')).toBeUndefined();
    });

    it('reads ranges: exact, cut short at the end, empty past the end', async () => {
      const body = bytes(1000);
      await store.put('r/obj', body);
      expect(await store.getRange('r/obj', 0, 10)).toEqual(body.slice(0, 10));
      expect(await store.getRange('r/obj', 123, 456)).toEqual(body.slice(123, 579));
      expect(await store.getRange('r/obj', 990, 50)).toEqual(body.slice(990));
      expect(await store.getRange('r/obj', 999, 1)).toEqual(body.slice(999));
      expect((await store.getRange('r/obj', 1000, 10)).length).toBe(0);
      expect((await store.getRange('r/obj', 5, 0)).length).toBe(0);
    });

    it('heads an object: size and modification time', async () => {
      const before = Date.now();
      await store.put('h/obj', bytes(321));
      const info = await store.head('h/obj');
      expect(info?.key).toBe('h/obj');
      expect(info?.size).toBe(321);
      // Clocks of a remote store may differ a little; seconds precision on S3.
      expect(Math.abs(info!.lastModified.getTime() - before)).toBeLessThan(60_000);
    });

    it('lists every object under a prefix, in key order, across pages', async () => {
      const keys = [
        'l/b/2',
        'l/a',
        'l/b/1',
        'l/ab',
        'l/b/10',
        'l/c/d/e',
        'm/outside',
        'k-sibling',
        ...Array.from({ length: 17 }, (_, i) => `l/many/${String(i).padStart(3, '0')}`),
      ];
      await Promise.all(keys.map((k, i) => store.put(k, bytes(i + 1, i))));
      const all = await listAll(store, 'l/');
      const expected = keys.filter((k) => k.startsWith('l/')).sort();
      expect(all.map((o) => o.key)).toEqual(expected);
      for (const o of all) expect(o.size).toBe(keys.indexOf(o.key) + 1);
      expect((await listAll(store, 'l/b/')).map((o) => o.key)).toEqual(['l/b/1', 'l/b/10', 'l/b/2']);
      // A prefix is a string prefix, not a folder.
      expect((await listAll(store, 'l/a')).map((o) => o.key)).toEqual(['l/a', 'l/ab']);
      expect((await listAll(store, 'l/b/1')).map((o) => o.key)).toEqual(['l/b/1', 'l/b/10']);
      expect(await listAll(store, 'zzz/')).toEqual([]);
      expect((await listAll(store, '')).map((o) => o.key)).toEqual([...keys].sort());
    });

    it('lists in byte order where keys and folders interleave', async (ctx) => {
      if (caps.listByteOrderUnsupported) ctx.skip(caps.listByteOrderUnsupported);
      // (No key equal to a folder's name: a local folder cannot be both.)
      const keys = ['o/a/1', 'o/a-b', 'o/a.c', 'o/a0', 'o/a/2', 'o/a_d'];
      await Promise.all(keys.map((k) => store.put(k, enc(k))));
      expect((await listAll(store, 'o/')).map((o) => o.key)).toEqual([...keys].sort());
      expect((await listAll(store, 'o/a')).map((o) => o.key)).toEqual([...keys].sort());
    });

    it('deletes: a missing key is fine; deleteMany takes many keys, present or not', async () => {
      await store.put('d/1', enc('1'));
      await store.delete('d/1');
      expect(await store.head('d/1')).toBeUndefined();
      await store.delete('d/1');
      await store.delete('never/was');
      const present = Array.from({ length: 12 }, (_, i) => `d/many/${i}`);
      await Promise.all(present.map((k) => store.put(k, enc(k))));
      await store.put('d/keep', enc('keep'));
      // More keys than one S3 DeleteObjects request takes (1000).
      const missing = Array.from({ length: 1100 }, (_, i) => `d/missing/${i}`);
      await store.deleteMany([...missing.slice(0, 600), ...present, ...missing.slice(600), present[0]]);
      expect((await listAll(store, 'd/')).map((o) => o.key)).toEqual(['d/keep']);
      await store.deleteMany([]);
    });

    it('creates only once with ifNoneMatch', async (ctx) => {
      if (caps.conditionalPutUnsupported) ctx.skip(caps.conditionalPutUnsupported);
      await store.put('c/once', enc('a'), { ifNoneMatch: true });
      await expect(store.put('c/once', enc('b'), { ifNoneMatch: true })).rejects.toBeInstanceOf(
        PreconditionFailedError,
      );
      expect(await store.get('c/once')).toEqual(enc('a'));
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => store.put('c/race', enc(`w${i}`), { ifNoneMatch: true })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PreconditionFailedError);
      }
    });

    it('round-trips locations: keyFromUri(uri(k)) === k; foreign locations are undefined', async () => {
      for (const k of ['a', 'tbl/data/part-0001.parquet', 'x/y=1/z.avro']) {
        const uri = store.uri(k);
        expect(uri).toMatch(/^[a-z0-9]+:\/\//);
        expect(store.keyFromUri(uri)).toBe(k);
      }
      expect(store.keyFromUri('gopher://elsewhere/a')).toBeUndefined();
      expect(store.keyFromUri(`${store.uri('a').replace(/a$/, '')}../other`)).not.toBe('a');
    });

    it('rejects unsafe keys', async () => {
      for (const k of ['/abs', 'a/../b', 'a//b', 'sp ace', 'a/./b', '']) {
        await expect(store.put(k, enc('x'))).rejects.toThrow(/unsafe/);
      }
    });

    it('gives a read URL for an object', async () => {
      await store.put('u/obj', enc('served'));
      const url = await store.readUrl('u/obj', 60);
      expect(typeof url).toBe('string');
      if (caps.httpReadUrl) {
        const res = await fetch(url);
        expect(res.status).toBe(200);
        expect(new Uint8Array(await res.arrayBuffer())).toEqual(enc('served'));
      }
    });

    it('stores large bodies intact', async (ctx) => {
      if (!caps.largeBodyBytes) ctx.skip('the adapter has no separate large-object path');
      const body = bytes(caps.largeBodyBytes!, 7);
      await store.put('big/obj', body);
      expect((await store.head('big/obj'))?.size).toBe(body.length);
      // Compared as bytes (a deep equality of megabytes takes the test's heap).
      const got = await store.get('big/obj');
      expect(got.length).toBe(body.length);
      expect(Buffer.compare(got, body)).toBe(0);
      const mid = Math.floor(body.length / 2);
      expect(await store.getRange('big/obj', mid - 5, 10)).toEqual(body.slice(mid - 5, mid + 5));
    });
  });
}
