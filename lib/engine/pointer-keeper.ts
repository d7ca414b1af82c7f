/**
 * Keeps a table's catalog pointer: one update at a time, each a compare-and-swap on the
 * version this writer last saw and on its fencing epoch. When the outcome of an update is
 * unknown (an error after the request may have landed, e.g. a lost response), the stored pointer
 * is read back: if it is exactly what we wrote, under our epoch, the update succeeded. If another
 * writer moved it, this writer is fenced and every later update fails with {@link FencedError}.
 */

import {
  type Catalog,
  ConflictError,
  FencedError,
  type PointerUpdate,
  type TablePointer,
} from '../catalog/catalog.ts';
import { ZERO_LSN } from '../lsn.ts';

export class PointerKeeper {
  private chain: Promise<unknown> = Promise.resolve();
  private fenced: FencedError | undefined;
  /** An update whose outcome is unknown (we could not read the pointer back after an error). */
  private uncertain: PointerUpdate | undefined;

  constructor(
    private readonly catalog: Catalog,
    readonly table: string,
    readonly epoch: number,
    private current: TablePointer | undefined,
  ) {}

  get pointer(): TablePointer | undefined {
    return this.current;
  }

  get fencedBy(): FencedError | undefined {
    return this.fenced;
  }

  /** Applies `change` to the latest pointer and stores it; updates run in call order. */
  update(change: (p: PointerUpdate) => PointerUpdate): Promise<TablePointer> {
    const run = this.chain.then(async () => {
      if (this.fenced) throw this.fenced;
      if (this.uncertain) await this.settle(this.uncertain);
      const next = change(this.base());
      try {
        this.current = await this.catalog.updatePointer(
          this.table,
          this.current?.version ?? 0,
          this.epoch,
          next,
        );
        return this.current;
      } catch (e) {
        if (e instanceof FencedError) {
          this.fenced = e;
          throw e;
        }
        const landed = await this.settle(next).catch(() => {
          this.uncertain = next;
          return false;
        });
        if (landed) return this.current!;
        if (this.fenced) throw this.fenced;
        if (e instanceof ConflictError) {
          this.fenced = new FencedError(this.table, this.epoch, this.epoch + 1);
          throw this.fenced;
        }
        throw e; // transient; nothing changed, the caller retries
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private base(): PointerUpdate {
    const c = this.current;
    return c
      ? {
          snapshotKey: c.snapshotKey,
          lsn: c.lsn,
          metadataLocation: c.metadataLocation,
          metadataKey: c.metadataKey,
          committedLsn: c.committedLsn,
          checkpoints: c.checkpoints,
        }
      : { lsn: ZERO_LSN, committedLsn: ZERO_LSN };
  }

  /**
   * Reads the stored pointer after an update of unknown outcome. Returns true (and adopts it)
   * when our update landed; false when nothing changed; fences when another writer moved it.
   */
  private async settle(attempted: PointerUpdate): Promise<boolean> {
    const now = await this.catalog.getPointer(this.table);
    this.uncertain = undefined;
    const version = this.current?.version ?? 0;
    if (now && now.epoch === this.epoch && now.version === version + 1 && samePointer(now, attempted)) {
      this.current = now;
      return true;
    }
    // Same version: our update did not land and no one else's did (the pointer's epoch is that
    // of its last writer, which may be an earlier epoch of ours or our predecessor's).
    if ((now?.version ?? 0) === version) return false;
    this.fenced = new FencedError(this.table, this.epoch, now?.epoch ?? this.epoch + 1);
    return false;
  }
}

function samePointer(p: TablePointer, u: PointerUpdate): boolean {
  return (
    p.snapshotKey === u.snapshotKey &&
    p.lsn === u.lsn &&
    p.metadataKey === u.metadataKey &&
    p.committedLsn === u.committedLsn &&
    JSON.stringify(p.checkpoints ?? {}) === JSON.stringify(u.checkpoints ?? {})
  );
}
