import { constants, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogEntry } from '../lib/log/durable-log.ts';
import { LocalLog } from '../lib/log/local-log.ts';
import { asLsn, type Lsn } from '../lib/lsn.ts';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'mlog-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('LocalLog', () => {
  it.skipIf(process.platform !== 'linux')(
    'writes its segments through a descriptor opened O_DSYNC (each write durable when it returns, no fdatasync after it)',
    async () => {
      const dir = await tmp();
      const log = new LocalLog(dir);
      await log.append('t', enc('one'));
      // The open descriptors of this process that point at the table's segment.
      const segDir = await fs.realpath(path.join(dir, 't'));
      const flags: number[] = [];
      for (const fd of await fs.readdir('/proc/self/fd')) {
        const target = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => '');
        if (!target.startsWith(`${segDir}/`) || !target.endsWith('.seg')) continue;
        const info = await fs.readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
        flags.push(Number.parseInt(/flags:\s+([0-7]+)/.exec(info)?.[1] ?? '0', 8));
      }
      expect(flags.length).toBe(1);
      expect(flags[0] & constants.O_DSYNC).toBe(constants.O_DSYNC);
      await log.close();
      const again = new LocalLog(dir);
      expect(await again.lastLsn('t')).toBe(1n);
      await again.close();
    },
  );

  it('startAfter: a new or behind log hands out LSNs after the given one, also after reopen; a seal refuses appends', async () => {
    const dir = await tmp();
    const log = new LocalLog(dir);
    await log.startAfter('fresh', asLsn(500n));
    expect(await log.lastLsn('fresh')).toBe(500n);
    expect(await log.append('fresh', enc('a'))).toBe(501n);
    // Already past it: nothing changes.
    await log.startAfter('fresh', asLsn(10n));
    expect(await log.append('fresh', enc('b'))).toBe(502n);
    // A log with records, behind: the gap is skipped, and the segment still reads across it.
    await log.append('behind', enc('x'));
    await log.startAfter('behind', asLsn(40n));
    expect(await log.append('behind', enc('y'))).toBe(41n);
    const sealed = new Error('renaming');
    log.seal('behind', sealed);
    await expect(log.append('behind', enc('z'))).rejects.toBe(sealed);
    log.seal('behind', undefined);
    expect(await log.append('behind', enc('z'))).toBe(42n);
    await log.close();
    const again = new LocalLog(dir);
    expect(await again.lastLsn('fresh')).toBe(502n);
    expect(await again.lastLsn('behind')).toBe(42n);
    expect(await again.damage('behind')).toBeUndefined();
    const seen: LogEntry[] = [];
    const sub = await again.subscribe('behind', asLsn(0n), (e) => seen.push(e));
    expect(seen.map((e) => [e.lsn, dec(e.payload)])).toEqual([
      [1n, 'x'],
      [41n, 'y'],
      [42n, 'z'],
    ]);
    expect(await again.append('fresh', enc('c'))).toBe(503n);
    sub.stop();
    await again.close();
  });

  it('assigns increasing LSNs, group-commits concurrent appends and survives reopen', async () => {
    const dir = await tmp();
    const log = new LocalLog(dir);
    const lsns = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append('t', enc(`r${i}`))));
    expect(lsns).toEqual(Array.from({ length: 200 }, (_, i) => BigInt(i + 1)));
    await log.close();
    const again = new LocalLog(dir);
    expect(await again.lastLsn('t')).toBe(200n);
    const seen: LogEntry[] = [];
    const sub = await again.subscribe('t', asLsn(150n), (e) => seen.push(e));
    expect(seen.map((e) => e.lsn)).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(151 + i)));
    expect(dec(seen[0].payload)).toBe('r150');
    expect(await again.append('t', enc('next'))).toBe(201n);
    await new Promise((r) => setTimeout(r, 10));
    expect(seen.at(-1)?.lsn).toBe(201n);
    sub.stop();
    await again.close();
  });

  it('delivers stored then live entries in order without gaps while appends race the subscription', async () => {
    const log = new LocalLog(await tmp());
    for (let i = 0; i < 50; i++) await log.append('t', enc(String(i)));
    const seen: bigint[] = [];
    const appends = Array.from({ length: 100 }, (_, i) => log.append('t', enc(String(50 + i))));
    const sub = await log.subscribe('t', asLsn(0n), (e) => seen.push(e.lsn));
    await Promise.all(appends);
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => BigInt(i + 1)));
    sub.stop();
    await log.close();
  });

  it('cuts a torn tail after a crash and keeps LSNs after truncation', async () => {
    const dir = await tmp();
    const log = new LocalLog(dir);
    for (let i = 0; i < 10; i++) await log.append('t', enc(`x${i}`));
    await log.close();
    const seg = path.join(dir, 't', (await fs.readdir(path.join(dir, 't')))[0]);
    await fs.appendFile(seg, Buffer.from([1, 2, 3, 4, 5, 6, 7]));
    const reopened = new LocalLog(dir);
    expect(await reopened.lastLsn('t')).toBe(10n);
    await reopened.truncate('t', asLsn(10n));
    await reopened.close();
    const third = new LocalLog(dir);
    expect(await third.lastLsn('t')).toBe(10n);
    expect(await third.append('t', enc('y'))).toBe(11n);
    const seen: bigint[] = [];
    (await third.subscribe('t', asLsn(0n), (e) => seen.push(e.lsn))).stop();
    expect(seen).toEqual([11n]);
    await third.close();
  });

  it('never hands out an LSN twice when appends race a truncation rolling the segment', async () => {
    const dir = await tmp();
    const log = new LocalLog(dir);
    const all: Lsn[] = [];
    for (let round = 0; round < 20; round++) {
      all.push(await log.append('t', enc(`a${round}`)));
      // The truncation covers everything, so it closes the segment and opens the next one while
      // these appends take their LSNs.
      const truncated = log.truncate('t', all[all.length - 1]);
      const racing: Promise<Lsn>[] = [];
      for (let i = 0; i < 3; i++) {
        // Land at different points of the roll (before, during and after the file switch).
        for (let hop = 0; hop < (round + i) % 5; hop++) await new Promise((r) => setImmediate(r));
        racing.push(log.append('t', enc(`b${round}.${i}`)));
      }
      await truncated;
      all.push(...(await Promise.all(racing)));
    }
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort((a, b) => (a < b ? -1 : 1))).toEqual(all.slice().sort((a, b) => (a < b ? -1 : 1)));
    await log.close();
    // Reopened, the entries after the last truncation are all there, once each, in order.
    const again = new LocalLog(dir);
    const seen: LogEntry[] = [];
    const sub = await again.subscribe('t', all[all.length - 4], (e) => seen.push(e));
    expect(seen.map((e) => e.lsn)).toEqual(all.slice(-3));
    expect(seen.map((e) => dec(e.payload))).toEqual(['b19.0', 'b19.1', 'b19.2']);
    expect(await again.append('t', enc('next'))).toBe(all[all.length - 1] + 1n);
    sub.stop();
    await again.close();
  });

  it('keeps tables apart and drops a table', async () => {
    const log = new LocalLog(await tmp());
    await log.append('a', enc('1'));
    await log.append('b', enc('1'));
    expect(await log.append('a', enc('2'))).toBe(2n);
    await log.dropTable('a');
    expect(await log.lastLsn('a')).toBe(0n);
    expect(await log.lastLsn('b')).toBe(1n);
    await expect(log.append('../x', enc('1'))).rejects.toThrow(/invalid table name/);
    await log.close();
  });
});
