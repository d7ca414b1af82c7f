/**
 * One table's part of the embedded log: its folder of segment files (framing in
 * log-segment.ts), the active segment, group commit of appends, and what open() found — a torn
 * tail cut off, or damage that stops appends. The {@link LocalLog} it belongs to owns what is
 * shared across tables: the file system, the bound on open files, and write health.
 */
import path from 'node:path';
import { type Lsn, lsnAfter, lsnBefore, lsnFromText, ZERO_LSN } from '../lsn.ts';
import { classifyIoError } from '../util/io-errors.ts';
import type { Logger } from '../util/logger.ts';
import { type LogDamage, LogDamagedError, type LogEntry } from './durable-log.ts';
import { type LogFile, type LogFs, writeDurably, writePartsFully } from './log-fs.ts';
import {
  frameHeader,
  type LsnRange,
  parseSegmentFileName,
  type SegmentName,
  scanSegment,
  segmentFileName,
} from './log-segment.ts';

/** LSN ranges a repair gave up, kept beside the segments (see log-repair.ts). */
export const SKIPS_FILE = 'skipped-lsns.json';

/** What a table's log needs from the log it belongs to. */
export interface TableLogOwner<D = unknown> {
  readonly fs: LogFs;
  readonly logger: Logger | undefined;
  readonly segmentMaxBytes: number;
  /** A use counter, for least-recently-used closing. */
  tick(): number;
  /** Waits until a file may be opened without passing the limit; held until {@link slotTaken}. */
  fileSlot(t: TableLog<D>): Promise<void>;
  slotTaken(): void;
  fileOpened(t: TableLog<D>): void;
  fileClosed(t: TableLog<D>): void;
  /** The table is done writing for now. */
  release(): void;
  writeFailed(table: string, e: Error, bytes: number): void;
  writeSucceeded(): void;
}

interface Pending<D> {
  entry: LogEntry<D>;
  /** The record's header, written before its payload (log-segment.ts). */
  header: Uint8Array;
  resolve: (lsn: Lsn) => void;
  reject: (e: unknown) => void;
}

export interface Segment {
  name: SegmentName;
  file: string;
}

export function readSkips(text: string): LsnRange[] {
  const raw = JSON.parse(text) as { from: string; to: string }[];
  return raw.map((r) => ({ from: lsnFromText(r.from), to: lsnFromText(r.to) }));
}

export class TableLog<D = unknown> {
  segments: Segment[] = [];
  /** The segment appends go to; its file exists once `created`. */
  active!: Segment & { created: boolean };
  file: LogFile | undefined;
  activeBytes = 0;
  /** The active file may hold bytes past `activeBytes` (a failed write) to cut before the next write. */
  cutPending = false;
  nextLsn: Lsn = lsnAfter(ZERO_LSN);
  durableLsn: Lsn = ZERO_LSN;
  queue: Pending<D>[] = [];
  flushing = false;
  lastUsed = 0;
  subscribers = new Set<(e: LogEntry<D>) => void>();
  damage: LogDamage | undefined;
  skips: LsnRange[] = [];
  /** What open() read, handed to a subscriber before any append instead of reading the files again. */
  private opened: LogEntry<D>[] | undefined;

  constructor(
    readonly dir: string,
    readonly table: string,
    private readonly owner: TableLogOwner<D>,
  ) {}

  private get fs(): LogFs {
    return this.owner.fs;
  }

  async open(): Promise<void> {
    await this.fs.mkdir(this.dir);
    const names = await this.fs.readdir(this.dir);
    if (names.includes(SKIPS_FILE))
      this.skips = readSkips(
        new TextDecoder().decode(await this.fs.readFile(path.join(this.dir, SKIPS_FILE))),
      );
    const found: Segment[] = [];
    for (const n of names) {
      const name = parseSegmentFileName(n);
      if (name) found.push({ name, file: path.join(this.dir, n) });
    }
    found.sort((a, b) =>
      a.name.firstLsn < b.name.firstLsn ? -1 : a.name.firstLsn > b.name.firstLsn ? 1 : 0,
    );
    const entries: LogEntry<D>[] = [];
    let expected: Lsn | undefined;
    let lastBytes = 0;
    for (let i = 0; i < found.length; i++) {
      const seg = found[i];
      const buf = await this.fs.readFile(seg.file);
      // An empty segment holds nothing (a roll that failed, or a crash right after one).
      if (
        buf.length === 0 &&
        (i < found.length - 1 || (expected !== undefined && seg.name.firstLsn !== expected))
      ) {
        await this.fs.rm(seg.file);
        continue;
      }
      if (
        expected !== undefined &&
        seg.name.firstLsn !== expected &&
        !this.skipped(expected, seg.name.firstLsn)
      ) {
        this.setDamage(
          seg,
          0,
          expected,
          `segment starts at LSN ${seg.name.firstLsn} where ${expected} was expected (a segment is missing)`,
          true,
        );
        break;
      }
      const isLast = i === found.length - 1;
      const scan = scanSegment(buf, seg.name, isLast, this.skips);
      entries.push(...scan.entries);
      this.segments.push(seg);
      expected = scan.nextLsn;
      lastBytes = scan.validBytes;
      if (!scan.problem) continue;
      const p = scan.problem;
      if (p.kind === 'torn') {
        this.owner.logger?.warn(
          'log: dropped a torn last record (a crash cut it short; it was never acknowledged)',
          {
            table: this.table,
            segment: path.basename(seg.file),
            offset: p.offset,
            lsn: p.expectedLsn.toString(),
            bytesDropped: buf.length - p.offset,
            reason: p.reason,
          },
        );
        const f = await this.fs.open(seg.file);
        try {
          await f.truncate(scan.validBytes);
          await f.datasync();
        } finally {
          await f.close();
        }
        continue;
      }
      this.setDamage(seg, p.offset, p.expectedLsn, p.reason, p.resume !== undefined || !isLast);
      break;
    }
    // LSNs a repair gave up are never handed out again.
    const reserved = this.skips.reduce((m, r) => (r.to >= m ? lsnAfter(r.to) : m), lsnAfter(ZERO_LSN));
    this.nextLsn = expected === undefined || expected < reserved ? reserved : expected;
    this.durableLsn = lsnBefore(this.nextLsn);
    this.opened = entries;
    const last = this.segments.at(-1);
    if (last && last.name.format === 'seg' && !this.damage) {
      this.active = { ...last, created: true };
      this.activeBytes = lastBytes;
    } else {
      // A new table, or one whose newest segment is in the old framing: start a `.seg` segment.
      this.active = this.newSegment(this.nextLsn);
    }
  }

  private skipped(expected: Lsn, got: Lsn): boolean {
    return this.skips.some((s) => s.from <= expected && s.to >= got - 1n);
  }

  private setDamage(seg: Segment, offset: number, lsn: Lsn, reason: string, intactAfter: boolean): void {
    this.damage = {
      table: this.table,
      segment: path.basename(seg.file),
      offset,
      lsn: lsn.toString(),
      reason,
      intactAfter,
    };
    this.owner.logger?.error('log: table log is damaged; the table takes no writes until it is repaired', {
      ...this.damage,
    });
  }

  private newSegment(firstLsn: Lsn): Segment & { created: boolean } {
    const name: SegmentName = { firstLsn, format: 'seg' };
    return { name, file: path.join(this.dir, segmentFileName(firstLsn)), created: false };
  }

  /** The active file, opened (and created) on demand, with any failed write cut off. */
  private async handle(): Promise<LogFile> {
    if (!this.file) {
      await this.owner.fileSlot(this);
      try {
        this.file = await this.fs.open(this.active.file);
      } finally {
        this.owner.slotTaken();
      }
      this.owner.fileOpened(this);
    }
    if (!this.active.created) {
      await this.fs.syncDir(this.dir);
      this.active.created = true;
      this.segments.push(this.active);
    }
    if (this.cutPending) {
      await this.cutBack(this.file);
      this.cutPending = false;
    }
    return this.file;
  }

  /** Cuts the active file back to its last complete record (never past its end). */
  private async cutBack(f: LogFile): Promise<void> {
    if ((await f.size()) > this.activeBytes) await f.truncate(this.activeBytes);
    await f.datasync();
  }

  async closeHandle(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    if (f) {
      this.owner.fileClosed(this);
      await f.close().catch(() => undefined);
    }
  }

  get idle(): boolean {
    return !this.flushing && this.queue.length === 0;
  }

  /** Starts a new segment at `firstLsn`; on failure the current one stays active. */
  async roll(firstLsn: Lsn): Promise<void> {
    const next = this.newSegment(firstLsn);
    let f: LogFile | undefined;
    try {
      f = await this.fs.open(next.file);
      await this.fs.syncDir(this.dir);
    } catch (e) {
      await f?.close().catch(() => undefined);
      // An empty segment left behind is harmless (open removes it), but try now.
      await this.fs.rm(next.file).catch(() => undefined);
      throw classifyIoError(e, next.file);
    }
    await this.closeHandle();
    next.created = true;
    this.segments.push(next);
    this.active = next;
    this.file = f;
    this.owner.fileOpened(this);
    this.activeBytes = 0;
    this.cutPending = false;
    // nextLsn is left alone: an append made while the old file was closing already took
    // firstLsn (and is written to the new file, after this roll).
  }

  /** Serializes file work (batch writes, segment rolls, closing the file) on this table's log. */
  private io: Promise<void> = Promise.resolve();

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.io.then(fn);
    this.io = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Makes the next LSN handed out greater than `lsn`: the LSNs up to it are recorded as skipped
   * (as a repair records those it gave up), so the log opens across the gap.
   */
  startAfter(lsn: Lsn): Promise<void> {
    return this.exclusive(async () => {
      if (this.nextLsn > lsn) return;
      this.skips = [...this.skips, { from: this.nextLsn, to: lsn }];
      const text = JSON.stringify(this.skips.map((r) => ({ from: r.from.toString(), to: r.to.toString() })));
      await writeDurably(this.fs, path.join(this.dir, SKIPS_FILE), text);
      await this.fs.syncDir(this.dir);
      this.nextLsn = lsnAfter(lsn);
      this.durableLsn = lsn;
    });
  }

  append(payload: Uint8Array, decoded: D | undefined): Promise<Lsn> {
    if (this.damage) return Promise.reject(new LogDamagedError(this.damage));
    const lsn = this.nextLsn;
    this.nextLsn = lsnAfter(lsn);
    this.lastUsed = this.owner.tick();
    return new Promise((resolve, reject) => {
      this.queue.push({
        entry: { lsn, payload, decoded },
        header: frameHeader(lsn, payload),
        resolve,
        reject,
      });
      if (!this.flushing) {
        this.flushing = true;
        void this.exclusive(() => this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const total = batch.reduce((s, p) => s + p.header.length + p.entry.payload.length, 0);
      try {
        const f = await this.handle();
        const parts = batch.flatMap((p) => [p.header, p.entry.payload]);
        await writePartsFully(f, parts, this.activeBytes, this.active.file);
        if (!f.writesDurable) await f.datasync();
      } catch (e) {
        const err = classifyIoError(e, this.active.file);
        for (const p of batch) p.reject(err);
        for (const p of this.queue.splice(0)) p.reject(err);
        this.nextLsn = lsnAfter(this.durableLsn);
        this.owner.writeFailed(this.table, err, total);
        // The file may hold part of the batch: cut it back now, or before the next write.
        const f = this.file;
        if (f) {
          await this.cutBack(f).catch(() => {
            this.cutPending = true;
          });
          // After a failed sync the kernel may have dropped pages it then reports clean: use a
          // fresh descriptor from here on.
          await this.closeHandle();
        }
        continue;
      }
      this.activeBytes += total;
      this.durableLsn = batch[batch.length - 1].entry.lsn;
      this.opened = undefined; // no longer all there is
      this.owner.writeSucceeded();
      for (const p of batch) for (const s of this.subscribers) s(p.entry);
      for (const p of batch) p.resolve(p.entry.lsn);
      if (this.activeBytes > this.owner.segmentMaxBytes && this.queue.length === 0) {
        await this.roll(this.nextLsn).catch((e) =>
          this.owner.logger?.warn('log: could not start a new segment; the current one grows', {
            table: this.table,
            error: e,
          }),
        );
      }
    }
    this.flushing = false;
    this.owner.release();
  }

  async readStored(afterLsn: Lsn, throughLsn: Lsn): Promise<LogEntry<D>[]> {
    const opened = this.opened;
    this.opened = undefined;
    const out: LogEntry<D>[] = [];
    if (opened) {
      for (const e of opened) if (e.lsn > afterLsn && e.lsn <= throughLsn) out.push(e);
      return out;
    }
    for (let i = 0; i < this.segments.length; i++) {
      const seg = this.segments[i];
      const next = this.segments[i + 1];
      if (next && next.name.firstLsn <= afterLsn + 1n) continue;
      let buf: Uint8Array;
      try {
        buf = await this.fs.readFile(seg.file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw classifyIoError(e, seg.file);
      }
      const scan = scanSegment(buf, seg.name, seg === this.segments.at(-1), this.skips);
      for (const e of scan.entries) if (e.lsn > afterLsn && e.lsn <= throughLsn) out.push(e);
    }
    return out;
  }
}
