/**
 * Repairing a damaged table log, deliberately (`npm run repair -- --table T --skip-damaged`).
 * Without `skipDamaged` it only reports what it found. With it:
 * - the damaged segment and every segment after it are moved, untouched, into a
 *   `damaged-<time>/` folder beside the log;
 * - every intact record they hold is written to a fresh segment with its own LSN;
 * - the LSNs that were lost are recorded as skipped (`skipped-lsns.json`), so the log opens
 *   across the gap and never hands those LSNs out again; when bad bytes end a segment, as many
 *   LSNs as they could have held are reserved too;
 * - what was skipped is appended to `repairs.json` (time, segments, bad byte ranges, LSNs).
 */
import path from 'node:path';
import { lsnAfter, lsnBefore, lsnFromText, minLsn } from '../lsn.ts';
import type { LogDamage, LogEntry } from './durable-log.ts';
import { LocalLog, readSkips, SKIPS_FILE } from './local-log.ts';
import { concat, type LogFs, nodeLogFs, writeDurably, writeFully } from './log-fs.ts';
import {
  frameRecord,
  type LsnRange,
  parseSegmentFileName,
  recordHeaderBytes,
  salvageSegment,
  segmentFileName,
} from './log-segment.ts';

export const REPAIRS_FILE = 'repairs.json';

export interface RepairReport {
  table: string;
  damage: LogDamage | undefined;
  /** Whether anything was changed (false for a report-only run or an undamaged log). */
  repaired: boolean;
  /** Where the damaged segments were moved. */
  keptIn?: string;
  segments: { name: string; badRanges: { offset: number; bytes: number }[]; recordsKept: number }[];
  skipped: { from: string; to: string }[];
  recordsKept: number;
}

export async function repairLog(
  logDir: string,
  table: string,
  options: { skipDamaged?: boolean; fs?: LogFs; now?: Date } = {},
): Promise<RepairReport> {
  const fs = options.fs ?? nodeLogFs;
  const probe = new LocalLog(logDir, { fs });
  const damage = await probe.damage(table);
  await probe.close();
  const report: RepairReport = { table, damage, repaired: false, segments: [], skipped: [], recordsKept: 0 };
  if (!damage) return report;

  const dir = path.join(logDir, table);
  const names = (await fs.readdir(dir))
    .map((n) => ({ n, name: parseSegmentFileName(n) }))
    .filter((x): x is { n: string; name: NonNullable<typeof x.name> } => x.name !== undefined)
    .sort((a, b) => (a.name.firstLsn < b.name.firstLsn ? -1 : 1));
  const from = names.findIndex((x) => x.n === damage.segment);
  if (from < 0) throw new Error(`${damage.segment}: the damaged segment is gone from ${dir}`);
  const affected = names.slice(from);

  // Salvage every intact record of the damaged segment and the ones after it, in LSN order.
  const kept: LogEntry[] = [];
  const skips: LsnRange[] = [];
  // From the damaged segment's start: records before the damage in it are intact and kept. When
  // a whole segment is missing, from the LSN that was expected there.
  const firstLsn = affected[0].name.firstLsn;
  let expected = minLsn(lsnFromText(damage.lsn), firstLsn);
  for (const { n, name } of affected) {
    const buf = await fs.readFile(path.join(dir, n));
    const { entries, badRanges } = salvageSegment(buf, name);
    let segKept = 0;
    for (const e of entries) {
      if (e.lsn < expected) continue; // a stray older copy
      if (e.lsn > expected) skips.push({ from: expected, to: lsnBefore(e.lsn) });
      kept.push(e);
      segKept++;
      expected = lsnAfter(e.lsn);
    }
    // Bad bytes at the end of the newest segment may have held records whose LSNs nothing
    // after them tells: reserve as many as could have fit, so none is handed out again.
    const last = badRanges.at(-1);
    if (name === affected.at(-1)?.name && last && last.offset + last.bytes === buf.length) {
      const most = BigInt(Math.ceil(last.bytes / recordHeaderBytes(name.format)));
      skips.push({ from: expected, to: lsnAfter(expected, most - 1n) });
      expected = lsnAfter(expected, most);
    }
    report.segments.push({ name: n, badRanges, recordsKept: segKept });
  }
  report.skipped = skips.map((s) => ({ from: s.from.toString(), to: s.to.toString() }));
  report.recordsKept = kept.length;
  if (!options.skipDamaged) return report;

  const stamp = (options.now ?? new Date()).toISOString().replace(/[:.]/g, '-');
  const aside = path.join(dir, `damaged-${stamp}`);
  await fs.mkdir(aside);
  for (const { n } of affected) await fs.rename(path.join(dir, n), path.join(aside, n));
  if (kept.length > 0) {
    const file = path.join(dir, segmentFileName(kept[0].lsn));
    const f = await fs.open(file);
    try {
      await writeFully(f, concat(kept.map((e) => frameRecord(e.lsn, e.payload))), 0, file);
      await f.datasync();
    } finally {
      await f.close();
    }
  }
  const names2 = await fs.readdir(dir);
  const before = names2.includes(SKIPS_FILE)
    ? readSkips(new TextDecoder().decode(await fs.readFile(path.join(dir, SKIPS_FILE))))
    : [];
  const allSkips = [...before, ...skips].map((s) => ({ from: s.from.toString(), to: s.to.toString() }));
  await writeDurably(fs, path.join(dir, SKIPS_FILE), JSON.stringify(allSkips));
  const history = names2.includes(REPAIRS_FILE)
    ? (JSON.parse(new TextDecoder().decode(await fs.readFile(path.join(dir, REPAIRS_FILE)))) as unknown[])
    : [];
  const at = (options.now ?? new Date()).toISOString();
  report.repaired = true;
  report.keptIn = aside;
  history.push({ at, ...report });
  await writeDurably(fs, path.join(dir, REPAIRS_FILE), JSON.stringify(history, null, 2));
  await fs.syncDir(dir);
  return report;
}
