/**
 * A LogFs over the real disk that injects what disks do: short writes, ENOSPC (a write that
 * gets part of its bytes down and then fails, a sync or a file creation that fails), EIO on
 * fsync. `fault(op, n)` decides for the n-th call overall; `ops` counts calls so a test can
 * place a fault at every point of a sequence.
 */
import type { LogFile, LogFs } from '../../lib/log/log-fs.ts';
import { nodeLogFs } from '../../lib/log/log-fs.ts';

export type FsOp = 'open' | 'write' | 'datasync' | 'truncate' | 'syncDir' | 'rename' | 'readFile';
export type Fault = 'ok' | 'ENOSPC' | 'EIO' | { short: number };

export function errnoError(code: string, op: string, file: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: injected, ${op} '${file}'`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

/** The first `n` bytes of the buffers, as buffers. */
function prefix(bufs: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of bufs) {
    if (n <= 0) break;
    out.push(b.subarray(0, Math.min(n, b.length)));
    n -= b.length;
  }
  return out;
}

export class FaultyLogFs implements LogFs {
  ops = 0;
  injected: Record<string, number> = {};
  constructor(public fault: (op: FsOp, n: number, file: string) => Fault = () => 'ok') {}

  private decide(op: FsOp, file: string): Fault {
    const f = this.fault(op, this.ops++, file);
    if (f !== 'ok') {
      const k = `${op}:${typeof f === 'string' ? f : 'short'}`;
      this.injected[k] = (this.injected[k] ?? 0) + 1;
    }
    return f;
  }

  private raise(f: Fault, op: string, file: string): void {
    if (f === 'ENOSPC' || f === 'EIO') throw errnoError(f, op, file);
  }

  async open(file: string): Promise<LogFile> {
    this.raise(this.decide('open', file), 'open', file);
    const inner = await nodeLogFs.open(file);
    const outer = this;
    return {
      // Every write is followed by a datasync, so a failing fdatasync can be injected too.
      writesDurable: false,
      async write(buf, offset, length, position) {
        const f = outer.decide('write', file);
        if (typeof f === 'object') return inner.write(buf, offset, Math.min(length, f.short), position);
        if (f !== 'ok') {
          // A full disk takes part of the bytes, then refuses.
          if (length > 1) await inner.write(buf, offset, Math.floor(length / 2), position);
          outer.raise(f, 'write', file);
        }
        return inner.write(buf, offset, length, position);
      },
      async writev(bufs, position) {
        const f = outer.decide('write', file);
        const total = bufs.reduce((s, b) => s + b.length, 0);
        if (typeof f === 'object') return inner.writev(prefix(bufs, Math.min(total, f.short)), position);
        if (f !== 'ok') {
          if (total > 1) await inner.writev(prefix(bufs, Math.floor(total / 2)), position);
          outer.raise(f, 'write', file);
        }
        return inner.writev(bufs, position);
      },
      async datasync() {
        outer.raise(outer.decide('datasync', file), 'fdatasync', file);
        return inner.datasync();
      },
      async truncate(length) {
        outer.raise(outer.decide('truncate', file), 'ftruncate', file);
        return inner.truncate(length);
      },
      size: () => inner.size(),
      close: () => inner.close(),
    };
  }

  async readFile(file: string): Promise<Uint8Array> {
    this.raise(this.decide('readFile', file), 'read', file);
    return nodeLogFs.readFile(file);
  }
  readdir(dir: string): Promise<string[]> {
    return nodeLogFs.readdir(dir);
  }
  mkdir(dir: string): Promise<void> {
    return nodeLogFs.mkdir(dir);
  }
  async rename(from: string, to: string): Promise<void> {
    this.raise(this.decide('rename', from), 'rename', from);
    return nodeLogFs.rename(from, to);
  }
  rm(file: string): Promise<void> {
    return nodeLogFs.rm(file);
  }
  async syncDir(dir: string): Promise<void> {
    this.raise(this.decide('syncDir', dir), 'fsync', dir);
    return nodeLogFs.syncDir(dir);
  }
}
