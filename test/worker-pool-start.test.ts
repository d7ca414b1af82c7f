/**
 * A worker pool says when its threads have loaded their code: `starting()` is true from
 * `warm()` until every worker has answered the pool's first question (its eager job modules
 * loaded), `started()` resolves then, and a writer on such a pool is not ready (`GET /health`
 * lists the `workers` component as `starting`) meanwhile. Closing the pool ends the wait, and
 * the wait is bounded.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { workersStarting } from '../lib/engine/writer-health.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import '../lib/engine/worker-jobs.ts';

const pools: ParquetWorkerPool[] = [];
afterAll(() => Promise.all(pools.map((p) => p.close())));

function pool(size: number, eager: string[]): ParquetWorkerPool {
  const p = new ParquetWorkerPool(size, { eager });
  pools.push(p);
  return p;
}

describe('worker pool start', () => {
  it('is starting from warm() until its workers have loaded their eager jobs', async () => {
    // A pool that loads nothing: its workers answer as soon as they run.
    const bare = pool(1, []);
    bare.warm();
    expect(bare.starting()).toBe(true);
    let t0 = performance.now();
    await bare.started();
    const bareMs = performance.now() - t0;
    expect(bare.starting()).toBe(false);

    const p = pool(2, ['columns']);
    expect(p.starting()).toBe(false);
    expect(workersStarting(p)).toBeUndefined();
    p.warm();
    expect(p.starting()).toBe(true);
    expect(workersStarting(p)).toEqual({
      component: 'workers',
      state: 'starting',
      error: { code: 'starting', message: 'worker threads are still loading their code' },
    });
    t0 = performance.now();
    await p.started();
    // The column encoder's module graph (Arrow among it) through tsx: the answer waited for it.
    expect(performance.now() - t0).toBeGreaterThan(bareMs);
    expect(p.starting()).toBe(false);
    expect(workersStarting(p)).toBeUndefined();
    // The workers serve jobs once started.
    await expect(p.runJob('no-such-job', {}, [])).rejects.toThrow(/no job "no-such-job"/);
  });

  it('closing a starting pool ends the wait, and started() is bounded', async () => {
    const p = pool(1, ['columns', 'decode-request']);
    p.warm();
    const waiting = p.started();
    await p.close();
    await waiting;
    expect(p.starting()).toBe(false);
    const q = pool(1, ['columns']);
    q.warm();
    const t0 = performance.now();
    await q.started(1);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(q.starting()).toBe(true);
  });
});
