/**
 * The local log under disk faults, on real files with faults injected under it (FaultyLogFs):
 * short writes, ENOSPC at every point of an append and of a segment roll, EIO on fsync, a torn
 * last record, a flipped byte at random offsets, a missing segment, and many tables under a
 * small open-file limit. Every test ends with every acknowledged record present exactly once,
 * or the table loudly damaged with its evidence kept.
 */

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogDamagedError, type LogEntry } from '../lib/log/durable-log.ts';
import { LocalLog } from '../lib/log/local-log.ts';
import { repairLog } from '../lib/log/log-repair.ts';
import { frameRecordV1, segmentFileName } from '../lib/log/log-segment.ts';
import { asLsn, type Lsn, maxLsn, ZERO_LSN } from '../lib/lsn.ts';
import type { Logger } from '../lib/util/logger.ts';
import { type Fault, FaultyLogFs, type FsOp } from './support/faulty-log-fs.ts';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'mlog-faults-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

interface Outcome {
  acked: Map<Lsn, string>;
  failed: { payload: string; error: unknown }[];
}

/** `n` appends in waves of up to 4 concurrent ones (so groups of several records form). */
async function workload(log: LocalLog, table: string, n: number, tag: string): Promise<Outcome> {
  const out: Outcome = { acked: new Map(), failed: [] };
  for (let i = 0; i < n; ) {
    const wave = Math.min(1 + (i % 4), n - i);
    await Promise.all(
      Array.from({ length: wave }, (_, j) => {
        const payload = `${tag}-${i + j}-${'x'.repeat((i + j) % 50)}`;
        return log.append(table, enc(payload)).then(
          (lsn) => {
            expect(out.acked.has(lsn)).toBe(false);
            out.acked.set(lsn, payload);
          },
          (error) => out.failed.push({ payload, error }),
        );
      }),
    );
    i += wave;
  }
  return out;
}

async function readBack(dir: string, table: string): Promise<LogEntry[]> {
  const log = new LocalLog(dir);
  const seen: LogEntry[] = [];
  (await log.subscribe(table, asLsn(0n), (e) => seen.push(e))).stop();
  await log.close();
  return seen;
}

/** Every acknowledged record is there once, with its payload; nothing else is. */
function expectExactly(seen: LogEntry[], acked: Map<Lsn, string>): void {
  const lsns = seen.map((e) => e.lsn);
  expect(new Set(lsns).size).toBe(lsns.length);
  for (let i = 1; i < lsns.length; i++) expect(lsns[i] > lsns[i - 1]).toBe(true);
  expect(new Map(seen.map((e) => [e.lsn, dec(e.payload)]))).toEqual(acked);
}

function recordingLogger(): Logger & {
  lines: { level: string; message: string; extra?: Record<string, unknown> }[];
} {
  const lines: { level: string; message: string; extra?: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, extra?: Record<string, unknown>): void => {
      lines.push({ level, message, extra });
    };
  const l: Logger & { lines: typeof lines } = {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => l,
  };
  return l;
}

describe('local log under disk faults', () => {
  it('continues short writes until every byte is down', async () => {
    const dir = await tmp();
    const faulty = new FaultyLogFs((op) => (op === 'write' ? { short: 7 } : 'ok'));
    const log = new LocalLog(dir, { fs: faulty, segmentMaxBytes: 2000 });
    const r = await workload(log, 't', 120, 'a');
    expect(r.failed).toEqual([]);
    expect(faulty.injected['write:short']).toBeGreaterThan(0);
    await log.close();
    expectExactly(await readBack(dir, 't'), r.acked);
  });

  for (const kind of ['ENOSPC', 'EIO'] as const) {
    const ops: FsOp[] = kind === 'EIO' ? ['datasync'] : ['open', 'write', 'datasync', 'syncDir'];
    it(`${kind} at every point of appends and segment rolls: failures acknowledge nothing, writing resumes`, async () => {
      // One clean run counts the operations; then a fault (lasting 3 operations) starts at each.
      const probeDir = await tmp();
      const counter = new FaultyLogFs();
      const probe = new LocalLog(probeDir, { fs: counter, segmentMaxBytes: 600 });
      await workload(probe, 't', 30, 'p');
      await probe.close();
      const total = counter.ops;
      let failures = 0;
      for (let start = 0; start < total; start++) {
        const dir = await tmp();
        const faulty = new FaultyLogFs(
          (op: FsOp, n: number): Fault => (n >= start && n < start + 3 && ops.includes(op) ? kind : 'ok'),
        );
        const logger = recordingLogger();
        const log = new LocalLog(dir, { fs: faulty, segmentMaxBytes: 600, logger });
        const r = await workload(log, 't', 30, 'a');
        failures += r.failed.length;
        for (const f of r.failed)
          expect((f.error as { code?: string }).code).toBe(
            kind === 'ENOSPC' ? 'storage_full' : 'storage_error',
          );
        if (r.failed.length > 0) {
          expect(logger.lines.some((l) => l.level === 'error' && /write failed/.test(l.message))).toBe(true);
        }
        // The fault is over: the same log takes writes again without a restart.
        const after = await workload(log, 't', 5, 'b');
        expect(after.failed).toEqual([]);
        expect((await log.health()).writable).toBe(true);
        await log.close();
        expectExactly(await readBack(dir, 't'), new Map([...r.acked, ...after.acked]));
        await fs.rm(dir, { recursive: true, force: true });
      }
      expect(failures).toBeGreaterThan(0);
    });
  }

  it('reports a full disk in health until a write gets through again', async () => {
    const dir = await tmp();
    let full = true;
    const faulty = new FaultyLogFs((op) => (full && op === 'write' ? 'ENOSPC' : 'ok'));
    const log = new LocalLog(dir, { fs: faulty });
    await expect(log.append('t', enc('x'))).rejects.toMatchObject({ code: 'storage_full' });
    const h = await log.health();
    expect(h.writable).toBe(false);
    expect(h.error).toMatchObject({ code: 'storage_full', table: 't' });
    full = false;
    expect((await log.health()).writable).toBe(true);
    expect(await log.append('t', enc('y'))).toBe(1n);
    await log.close();
    expectExactly(await readBack(dir, 't'), new Map([[asLsn(1n), 'y']]));
  });

  it('drops a torn last record with a WARN naming table, segment, offset and LSN', async () => {
    const dir = await tmp();
    const log = new LocalLog(dir);
    const r = await workload(log, 't', 10, 'a');
    await log.close();
    const segDir = path.join(dir, 't');
    const seg = path.join(segDir, (await fs.readdir(segDir)).find((n) => n.endsWith('.seg'))!);
    const size = (await fs.stat(seg)).size;
    await fs.truncate(seg, size - 5); // a crash mid-write of the last record
    const logger = recordingLogger();
    const reopened = new LocalLog(dir, { logger });
    expect(await reopened.damage('t')).toBeUndefined();
    expect(await reopened.lastLsn('t')).toBe(9n);
    const warn = logger.lines.find((l) => l.level === 'warn');
    expect(warn?.extra).toMatchObject({ table: 't', segment: path.basename(seg), lsn: '10' });
    expect(warn?.extra?.offset).toBeGreaterThan(0);
    await reopened.close();
    r.acked.delete(asLsn(10n));
    expectExactly(await readBack(dir, 't'), r.acked);
  });

  it('a flipped byte anywhere leaves the table damaged (never short), evidence kept, and a repair skips only the bad record', async () => {
    const base = await tmp();
    const log = new LocalLog(base, { segmentMaxBytes: 1500 });
    const r = await workload(log, 't', 60, 'a');
    await log.close();
    const segDir = path.join(base, 't');
    const segs = (await fs.readdir(segDir)).filter((n) => n.endsWith('.seg')).sort();
    expect(segs.length).toBeGreaterThan(1);
    const sizes = await Promise.all(segs.map(async (n) => (await fs.stat(path.join(segDir, n))).size));
    const totalBytes = sizes.reduce((a, b) => a + b, 0);
    let seed = 7;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const lastAcked = [...r.acked.keys()].reduce(maxLsn, ZERO_LSN);
    for (let round = 0; round < 60; round++) {
      const dir = await tmp();
      await fs.cp(base, dir, { recursive: true });
      // A random byte of a random segment, every bit pattern but the original.
      let at = Math.floor(rand() * totalBytes);
      let s = 0;
      while (at >= sizes[s]) at -= sizes[s++];
      const file = path.join(dir, 't', segs[s]);
      const bytes = await fs.readFile(file);
      bytes[at] ^= 1 + Math.floor(rand() * 255);
      await fs.writeFile(file, bytes);

      const logger = recordingLogger();
      const damaged = new LocalLog(dir, { logger });
      const damage = await damaged.damage('t');
      expect(damage, `flip at ${segs[s]}+${at}`).toMatchObject({ table: 't', segment: segs[s] });
      expect(logger.lines.some((l) => l.level === 'error' && /damaged/.test(l.message))).toBe(true);
      await expect(damaged.append('t', enc('refused'))).rejects.toBeInstanceOf(LogDamagedError);
      // The intact prefix is delivered; nothing at or after the damage is.
      const prefix: LogEntry[] = [];
      (await damaged.subscribe('t', asLsn(0n), (e) => prefix.push(e))).stop();
      expect(prefix.every((e) => e.lsn < BigInt(damage!.lsn))).toBe(true);
      expect(prefix.map((e) => dec(e.payload))).toEqual(prefix.map((e) => r.acked.get(e.lsn)));
      await damaged.truncate('t', lastAcked); // never removes evidence
      await damaged.close();
      expect(await fs.readFile(file)).toEqual(bytes); // untouched

      const report = await repairLog(dir, 't', { skipDamaged: true });
      expect(report.repaired).toBe(true);
      expect(report.skipped.length).toBeGreaterThan(0);
      expect(await fs.readFile(path.join(report.keptIn!, segs[s]))).toEqual(bytes); // kept aside
      const seen = await readBack(dir, 't');
      const skipped = new Set<bigint>();
      for (const k of report.skipped) for (let l = BigInt(k.from); l <= BigInt(k.to); l++) skipped.add(l);
      // Everything not reported skipped is there, exactly once.
      const expected = new Map([...r.acked].filter(([l]) => !skipped.has(l)));
      expectExactly(seen, expected);
      expect(r.acked.size - expected.size).toBeLessThanOrEqual(2);
      const again = new LocalLog(dir);
      expect(await again.damage('t')).toBeUndefined();
      expect(await again.append('t', enc('next'))).toBeGreaterThan(lastAcked); // LSNs never reused
      await again.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a missing segment is damage, not a shorter log', async () => {
    const dir = await tmp();
    const log = new LocalLog(dir, { segmentMaxBytes: 500 });
    await workload(log, 't', 40, 'a');
    await log.close();
    const segDir = path.join(dir, 't');
    const segs = (await fs.readdir(segDir)).filter((n) => n.endsWith('.seg')).sort();
    expect(segs.length).toBeGreaterThan(2);
    await fs.rm(path.join(segDir, segs[1]));
    const reopened = new LocalLog(dir);
    expect(await reopened.damage('t')).toMatchObject({
      segment: segs[2],
      reason: expect.stringMatching(/missing/),
    });
    await reopened.close();
    const report = await repairLog(dir, 't', { skipDamaged: false });
    expect(report.repaired).toBe(false); // report only
    expect(report.skipped.length).toBe(1);
  });

  it('reads segments in the old framing and writes new records to a new segment', async () => {
    const dir = await tmp();
    const segDir = path.join(dir, 't');
    await fs.mkdir(segDir, { recursive: true });
    const old = [1n, 2n, 3n].map(asLsn).map((l) => frameRecordV1(l, enc(`old${l}`)));
    await fs.writeFile(path.join(segDir, segmentFileName(asLsn(1n), 'log')), Buffer.concat(old));
    const log = new LocalLog(dir);
    expect(await log.lastLsn('t')).toBe(3n);
    expect(await log.append('t', enc('new4'))).toBe(4n);
    await log.close();
    expect((await fs.readdir(segDir)).sort()).toEqual([
      segmentFileName(asLsn(1n), 'log'),
      segmentFileName(asLsn(4n)),
    ]);
    expect((await readBack(dir, 't')).map((e) => dec(e.payload))).toEqual(['old1', 'old2', 'old3', 'new4']);
  });

  it('keeps at most maxOpenFiles segment files open across 300 tables', async () => {
    const dir = await tmp();
    const log = new LocalLog(dir, { maxOpenFiles: 16 });
    let peak = 0;
    const acked = new Map<string, Map<Lsn, string>>();
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 300 }, async (_, i) => {
          const t = `t${i}`;
          const payload = `${t}-${round}`;
          const lsn = await log.append(t, enc(payload));
          peak = Math.max(peak, log.openFileCount);
          if (!acked.has(t)) acked.set(t, new Map());
          acked.get(t)!.set(lsn, payload);
        }),
      );
      await new Promise((r) => setTimeout(r, 20));
      expect(log.openFileCount).toBeLessThanOrEqual(16);
    }
    expect(peak).toBeLessThan(300);
    await log.close();
    for (const [t, m] of acked) expectExactly(await readBack(dir, t), m);
  });
});
