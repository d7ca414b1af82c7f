/**
 * The embedded durable log: per table, append-only segment files on local disk. Appends are
 * group-committed (one write and one fdatasync for every append waiting at that moment). Each
 * record is framed as [u32 length][u32 crc32][u64 lsn][payload]; a torn tail after a crash is
 * detected by length/CRC and cut off on open.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Lsn } from '../lsn.ts';
import { TABLE_NAME_PATTERN } from '../schema/table-schema.ts';
import { fsyncDir } from '../util/fs-atomic.ts';
import type { DurableLog, LogEntry, LogSubscription } from './durable-log.ts';

const HEADER = 16;
const SEGMENT_MAX_BYTES = 64 * 1024 * 1024;

interface Pending {
  entry: LogEntry;
  frame: Uint8Array;
  resolve: (lsn: Lsn) => void;
  reject: (e: unknown) => void;
}

interface Segment {
  firstLsn: Lsn;
  file: string;
}

function segmentName(firstLsn: Lsn): string {
  return `${firstLsn.toString().padStart(20, '0')}.log`;
}

function frame(lsn: Lsn, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, payload.length, true);
  dv.setBigUint64(8, lsn, true);
  out.set(payload, HEADER);
  dv.setUint32(4, crc32(out.subarray(8)), true);
  return out;
}

/** Parses records from a segment; stops at the first torn or corrupt one. */
function parseSegment(buf: Uint8Array): { entries: LogEntry[]; validBytes: number } {
  const entries: LogEntry[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  while (at + HEADER <= buf.length) {
    const len = dv.getUint32(at, true);
    if (at + HEADER + len > buf.length) break;
    const crc = dv.getUint32(at + 4, true);
    if (crc32(buf.subarray(at + 8, at + HEADER + len)) !== crc) break;
    entries.push({ lsn: dv.getBigUint64(at + 8, true), payload: buf.slice(at + HEADER, at + HEADER + len) });
    at += HEADER + len;
  }
  return { entries, validBytes: at };
}

class TableLog {
  segments: Segment[] = [];
  fh: fs.FileHandle | undefined;
  activeBytes = 0;
  nextLsn: Lsn = 1n;
  durableLsn: Lsn = 0n;
  queue: Pending[] = [];
  flushing = false;
  subscribers = new Set<(e: LogEntry) => void>();

  constructor(readonly dir: string) {}

  async open(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const names = (await fs.readdir(this.dir)).filter((n) => /^\d{20}\.log$/.test(n)).sort();
    this.segments = names.map((n) => ({ firstLsn: BigInt(n.slice(0, 20)), file: path.join(this.dir, n) }));
    if (this.segments.length === 0) {
      await this.roll(1n);
      return;
    }
    const last = this.segments[this.segments.length - 1];
    const buf = new Uint8Array(await fs.readFile(last.file));
    const { entries, validBytes } = parseSegment(buf);
    if (validBytes < buf.length) await fs.truncate(last.file, validBytes);
    this.nextLsn = entries.length > 0 ? entries[entries.length - 1].lsn + 1n : last.firstLsn;
    this.durableLsn = this.nextLsn - 1n;
    this.fh = await fs.open(last.file, 'a');
    this.activeBytes = validBytes;
  }

  async roll(firstLsn: Lsn): Promise<void> {
    await this.fh?.close();
    const file = path.join(this.dir, segmentName(firstLsn));
    this.fh = await fs.open(file, 'a');
    await fsyncDir(this.dir);
    this.segments.push({ firstLsn, file });
    this.activeBytes = 0;
    // nextLsn is left alone: an append made while the old file was closing already took
    // firstLsn (and is written to the new file, after this roll).
  }

  /** Serializes file work (batch writes, segment rolls) on this table's log. */
  private io: Promise<void> = Promise.resolve();

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.io.then(fn);
    this.io = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  append(payload: Uint8Array, decoded: unknown): Promise<Lsn> {
    const lsn = this.nextLsn++;
    return new Promise((resolve, reject) => {
      this.queue.push({ entry: { lsn, payload, decoded }, frame: frame(lsn, payload), resolve, reject });
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
      try {
        const total = batch.reduce((s, p) => s + p.frame.length, 0);
        const buf = new Uint8Array(total);
        let at = 0;
        for (const p of batch) {
          buf.set(p.frame, at);
          at += p.frame.length;
        }
        await this.fh!.write(buf);
        await this.fh!.datasync();
        this.activeBytes += total;
        this.durableLsn = batch[batch.length - 1].entry.lsn;
        for (const p of batch) for (const s of this.subscribers) s(p.entry);
        for (const p of batch) p.resolve(p.entry.lsn);
        if (this.activeBytes > SEGMENT_MAX_BYTES && this.queue.length === 0) await this.roll(this.nextLsn);
      } catch (e) {
        // The file may hold part of the batch; cut it back to the last durable record.
        for (const p of batch) p.reject(e);
        for (const p of this.queue.splice(0)) p.reject(e);
        this.nextLsn = this.durableLsn + 1n;
        await this.fh?.truncate(this.activeBytes).catch(() => undefined);
      }
    }
    this.flushing = false;
  }

  async readStored(afterLsn: Lsn, throughLsn: Lsn): Promise<LogEntry[]> {
    const out: LogEntry[] = [];
    for (let i = 0; i < this.segments.length; i++) {
      const next = this.segments[i + 1];
      if (next && next.firstLsn <= afterLsn + 1n) continue;
      let buf: Uint8Array;
      try {
        buf = new Uint8Array(await fs.readFile(this.segments[i].file));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      for (const e of parseSegment(buf).entries) if (e.lsn > afterLsn && e.lsn <= throughLsn) out.push(e);
    }
    return out;
  }
}

export class LocalLog implements DurableLog {
  readonly description: string;
  private readonly tables = new Map<string, Promise<TableLog>>();

  constructor(readonly dir: string) {
    this.description = `local:${path.resolve(dir)}`;
  }

  private table(name: string): Promise<TableLog> {
    if (!TABLE_NAME_PATTERN.test(name)) throw new Error(`invalid table name ${JSON.stringify(name)}`);
    let t = this.tables.get(name);
    if (!t) {
      const log = new TableLog(path.join(this.dir, name));
      t = log.open().then(() => log);
      this.tables.set(name, t);
      t.catch(() => this.tables.delete(name));
    }
    return t;
  }

  async append(table: string, payload: Uint8Array, decoded?: unknown): Promise<Lsn> {
    return (await this.table(table)).append(payload, decoded);
  }

  async subscribe(
    table: string,
    afterLsn: Lsn,
    onEntry: (entry: LogEntry) => void,
  ): Promise<LogSubscription> {
    const t = await this.table(table);
    // Everything ≤ the durable LSN now is on disk; later entries arrive live. Buffer live ones
    // until the stored ones have been delivered, so order holds.
    const through = t.durableLsn;
    const buffered: LogEntry[] = [];
    let replaying = true;
    let stopped = false;
    const live = (e: LogEntry): void => {
      if (stopped || e.lsn <= afterLsn) return;
      if (replaying) buffered.push(e);
      else onEntry(e);
    };
    t.subscribers.add(live);
    const stored = await t.readStored(afterLsn, through);
    for (const e of stored) if (!stopped) onEntry(e);
    for (const e of buffered) if (!stopped && e.lsn > through) onEntry(e);
    replaying = false;
    return {
      stop: () => {
        stopped = true;
        t.subscribers.delete(live);
      },
    };
  }

  async lastLsn(table: string): Promise<Lsn> {
    return (await this.table(table)).durableLsn;
  }

  async truncate(table: string, throughLsn: Lsn): Promise<void> {
    const t = await this.table(table);
    await t.exclusive(async () => {
      if (t.durableLsn <= throughLsn && t.queue.length === 0 && t.activeBytes > 0) {
        // Everything in the active segment is covered: start a fresh one so the old can go.
        await t.roll(t.nextLsn);
      }
      const keep: Segment[] = [];
      for (let i = 0; i < t.segments.length; i++) {
        const next = t.segments[i + 1];
        if (next && next.firstLsn <= throughLsn + 1n) await fs.rm(t.segments[i].file, { force: true });
        else keep.push(t.segments[i]);
      }
      t.segments = keep;
    });
  }

  async dropTable(table: string): Promise<void> {
    const t = await this.table(table);
    await t.exclusive(async () => t.fh?.close());
    t.subscribers.clear();
    this.tables.delete(table);
    await fs.rm(t.dir, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    for (const p of this.tables.values()) {
      const t = await p.catch(() => undefined);
      if (!t) continue;
      await t.exclusive(async () => t.fh?.close());
    }
    this.tables.clear();
  }
}
