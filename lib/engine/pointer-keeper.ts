/**
 * Keeps a table's catalog pointer: one update at a time, each a compare-and-swap on the
 * version this writer last saw and on its fencing epoch. A conflict or a newer epoch means
 * another writer owns the table; every later update fails with {@link FencedError}.
 */
import {
  type Catalog,
  ConflictError,
  FencedError,
  type PointerUpdate,
  type TablePointer,
} from '../catalog/catalog.ts';

export class PointerKeeper {
  private chain: Promise<unknown> = Promise.resolve();
  private fenced: FencedError | undefined;

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
      const base: PointerUpdate = this.current
        ? {
            snapshotKey: this.current.snapshotKey,
            lsn: this.current.lsn,
            metadataLocation: this.current.metadataLocation,
            metadataKey: this.current.metadataKey,
            committedLsn: this.current.committedLsn,
            checkpoints: this.current.checkpoints,
          }
        : { lsn: '0', committedLsn: '0' };
      const next = change(base);
      try {
        this.current = await this.catalog.updatePointer(
          this.table,
          this.current?.version ?? 0,
          this.epoch,
          next,
        );
        return this.current;
      } catch (e) {
        if (e instanceof FencedError) this.fenced = e;
        else if (e instanceof ConflictError) {
          // A retried request whose first attempt succeeded looks like a conflict: if the stored
          // pointer is exactly what we wrote, under our epoch, it was ours.
          const now = await this.catalog.getPointer(this.table);
          if (now && now.epoch === this.epoch && samePointer(now, next)) {
            this.current = now;
            return now;
          }
          this.fenced = new FencedError(this.table, this.epoch, now?.epoch ?? this.epoch + 1);
        }
        throw this.fenced ?? e;
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
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
