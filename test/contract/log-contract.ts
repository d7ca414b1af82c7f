/**
 * The behaviour every DurableLog adapter must show. `logContract(name, make)` defines a describe
 * block; `make` is called for every test. Table names are unique per test, so a shared backend
 * (one Kinesis stream) works.
 */

import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DurableLog, LogEntry, LogSubscription } from '../../lib/log/durable-log.ts';
import type { Lsn } from '../../lib/lsn.ts';
import { asLsn } from '../../lib/lsn.ts';

export interface LogFixture {
  log: DurableLog;
  cleanup(): Promise<void>;
}

export interface LogCapabilities {
  /** How long to wait for an entry to arrive (default 10 s). */
  deliveryTimeoutMs?: number;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function uniqueLogTable(prefix = 'log'): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

export function txnPayload(i: number, extra = ''): Uint8Array {
  return enc(`{"ops":[{"op":"upsert","row":{"id":${i},"v":"value ${i}"${extra}}}]}`);
}

export async function waitUntil(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function sorted(lsns: Lsn[]): Lsn[] {
  return [...lsns].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function logContract(name: string, make: () => Promise<LogFixture>, caps: LogCapabilities = {}): void {
  const timeout = caps.deliveryTimeoutMs ?? 10_000;
  describe(`DurableLog contract: ${name}`, () => {
    let f: LogFixture;
    let log: DurableLog;
    const subs: LogSubscription[] = [];
    beforeEach(async () => {
      f = await make();
      log = f.log;
    });
    afterEach(async () => {
      for (const s of subs.splice(0)) s.stop();
      await f.cleanup();
    });

    async function collect(table: string, after: Lsn): Promise<LogEntry[]> {
      const seen: LogEntry[] = [];
      subs.push(await log.subscribe(table, after, (e) => seen.push(e)));
      return seen;
    }

    it('gives increasing LSNs and reports the last one', async () => {
      const t = uniqueLogTable();
      expect(await log.lastLsn(t)).toBe(0n);
      const lsns: Lsn[] = [];
      for (let i = 0; i < 5; i++) lsns.push(await log.append(t, txnPayload(i)));
      for (let i = 1; i < lsns.length; i++) expect(lsns[i] > lsns[i - 1]).toBe(true);
      expect(lsns[0] > 0n).toBe(true);
      expect(await log.lastLsn(t)).toBe(lsns[4]);
    });

    it('replays stored entries, then delivers live ones, in order, with no gap or duplicate', async () => {
      const t = uniqueLogTable();
      const appended = new Map<Lsn, string>();
      for (let i = 0; i < 6; i++) {
        const p = txnPayload(i);
        appended.set(await log.append(t, p), dec(p));
      }
      const seen = await collect(t, asLsn(0n));
      await waitUntil('replayed entries', () => seen.length >= 6, timeout);
      // Live: sequential and concurrent appends.
      for (let i = 6; i < 10; i++) {
        const p = txnPayload(i);
        appended.set(await log.append(t, p), dec(p));
      }
      const concurrent = Array.from({ length: 8 }, (_, k) => txnPayload(100 + k));
      const lsns = await Promise.all(concurrent.map((p) => log.append(t, p)));
      for (const [k, l] of lsns.entries()) appended.set(l, dec(concurrent[k]));
      expect(appended.size).toBe(18);
      await waitUntil('live entries', () => seen.length >= 18, timeout);
      await new Promise((r) => setTimeout(r, 100));
      expect(seen.map((e) => e.lsn)).toEqual(sorted([...appended.keys()]));
      for (const e of seen) expect(dec(e.payload)).toBe(appended.get(e.lsn));
    });

    it('subscribes from a middle LSN: only later entries', async () => {
      const t = uniqueLogTable();
      const lsns: Lsn[] = [];
      for (let i = 0; i < 8; i++) lsns.push(await log.append(t, txnPayload(i)));
      const seen = await collect(t, lsns[4]);
      await waitUntil('entries after the middle', () => seen.length >= 3, timeout);
      const more = await log.append(t, txnPayload(8));
      await waitUntil('the live entry', () => seen.length >= 4, timeout);
      await new Promise((r) => setTimeout(r, 100));
      expect(seen.map((e) => e.lsn)).toEqual([lsns[5], lsns[6], lsns[7], more]);
      expect(dec(seen[0].payload)).toBe(dec(txnPayload(5)));
      const none = await collect(t, more);
      await new Promise((r) => setTimeout(r, 300));
      expect(none).toEqual([]);
    });

    it('keeps payload bytes exact: big integers, long decimals, unicode, escapes', async () => {
      const t = uniqueLogTable();
      const text =
        '{"ops":[{"op":"insert","row":{"id":123456789012345678901234567890,"d":0.1234567890123456789012345,' +
        '"neg":-9223372036854775809,"e":1.5e+300,"s":"caf\\u00e9 \\"q\\" ✓ 😀","n":null,"b":true}}]}';
      const lsn = await log.append(t, enc(text));
      const seen = await collect(t, asLsn(0n));
      await waitUntil('the entry', () => seen.length >= 1, timeout);
      expect(seen[0].lsn).toBe(lsn);
      expect(dec(seen[0].payload)).toBe(text);
    });

    it('keeps tables apart', async () => {
      const a = uniqueLogTable('a');
      const b = uniqueLogTable('b');
      const mine: Lsn[] = [];
      for (let i = 0; i < 6; i++) {
        mine.push(await log.append(a, txnPayload(i)));
        await log.append(b, txnPayload(1000 + i));
      }
      const seenA = await collect(a, asLsn(0n));
      const seenB = await collect(b, asLsn(0n));
      await waitUntil('both tables', () => seenA.length >= 6 && seenB.length >= 6, timeout);
      await new Promise((r) => setTimeout(r, 100));
      expect(seenA.map((e) => e.lsn)).toEqual(mine);
      expect(seenB).toHaveLength(6);
      for (const e of seenB) expect(dec(e.payload)).toMatch(/"id":10\d\d/);
      expect(await log.lastLsn(a)).toBe(mine[5]);
    });

    it('stops delivering after stop()', async () => {
      const t = uniqueLogTable();
      await log.append(t, txnPayload(1));
      const seen: LogEntry[] = [];
      const sub = await log.subscribe(t, asLsn(0n), (e) => seen.push(e));
      await waitUntil('the entry', () => seen.length >= 1, timeout);
      sub.stop();
      await log.append(t, txnPayload(2));
      await new Promise((r) => setTimeout(r, 300));
      expect(seen).toHaveLength(1);
    });
  });
}
