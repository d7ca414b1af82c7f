/** Deletes every object under a prefix, a thousand keys per request; returns how many. */
import type { ObjectStore } from './object-store.ts';

export async function deletePrefix(store: ObjectStore, prefix: string): Promise<number> {
  let batch: string[] = [];
  let n = 0;
  for await (const o of store.list(prefix)) {
    batch.push(o.key);
    if (batch.length === 1000) {
      await store.deleteMany(batch);
      n += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) await store.deleteMany(batch);
  return n + batch.length;
}
