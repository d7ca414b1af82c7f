/**
 * A flushed data file as the writer tracks it: where it is, what it holds, and its deletion
 * vector: the live one (every delete applied so far) and the one last committed to Iceberg.
 */

import type { ColumnStats } from '../columns/column-stats.ts';
import { RoaringBitmap64 } from '../iceberg/roaring.ts';
import type { Lsn } from '../lsn.ts';
import type { PartitionTuple } from '../schema/partition-spec.ts';
import type { FileId, ObjectKey } from '../store/object-keys.ts';
import type { DeletionVectorRef } from './mem-slice.ts';

export interface DataFile {
  fileId: FileId;
  objectKey: ObjectKey;
  rowCount: number;
  sizeBytes: number;
  /** The file holds transactions up to this LSN. */
  addedLsn: Lsn;
  stats: Map<number, ColumnStats>;
  /** Every deleted position, now. */
  deletes: RoaringBitmap64;
  /** Deleted positions as of the last Iceberg commit that included this file. */
  committedDeletes: RoaringBitmap64;
  /** The deletion vector changed since the last published read snapshot. */
  dvDirty: boolean;
  /** The blob the last published read snapshot points to. */
  dvRef?: DeletionVectorRef;
  /** The file is part of the current Iceberg snapshot. */
  inIceberg: boolean;
  /** Set when a TRUNCATE at this LSN emptied the table; the file leaves at the next commit. */
  removedLsn?: Lsn;
  /** The partition spec the file was written with, its partition under it, its sort order. */
  specId: number;
  partition: PartitionTuple;
  sortOrderId: number;
  /** When the file was written (ms; 0 when it was found in Iceberg at recovery): small files of a partition merge as they age. */
  addedAt: number;
}

export function newDataFile(
  init: Omit<
    DataFile,
    | 'deletes'
    | 'committedDeletes'
    | 'dvDirty'
    | 'inIceberg'
    | 'specId'
    | 'partition'
    | 'sortOrderId'
    | 'addedAt'
  > &
    Partial<Pick<DataFile, 'specId' | 'partition' | 'sortOrderId' | 'addedAt'>>,
): DataFile {
  return {
    specId: 0,
    partition: [],
    sortOrderId: 0,
    addedAt: Date.now(),
    ...init,
    deletes: new RoaringBitmap64(),
    committedDeletes: new RoaringBitmap64(),
    dvDirty: false,
    inIceberg: false,
  };
}

export function liveRowCount(f: DataFile): number {
  return f.rowCount - f.deletes.size;
}

/**
 * Deletes on flushed files since the last Iceberg commit, with their LSNs, so a commit at LSN C
 * takes exactly the deletes with LSN ≤ C even while later transactions keep applying.
 */
export class PendingDeletes {
  private lsns: Lsn[] = [];
  private fileIds: number[] = [];
  private positions: number[] = [];

  get size(): number {
    return this.lsns.length;
  }

  add(lsn: Lsn, fileId: number, pos: number): void {
    this.lsns.push(lsn);
    this.fileIds.push(fileId);
    this.positions.push(pos);
  }

  /** Visits entries with LSN ≤ `through` without removing them. */
  forEachThrough(through: Lsn, cb: (fileId: number, pos: number) => void): void {
    for (let i = 0; i < this.lsns.length; i++)
      if (this.lsns[i] <= through) cb(this.fileIds[i], this.positions[i]);
  }

  /** Removes and returns entries with LSN ≤ `through`, grouped by file. */
  takeThrough(through: Lsn): Map<number, number[]> {
    const out = new Map<number, number[]>();
    const keep = new PendingDeletes();
    for (let i = 0; i < this.lsns.length; i++) {
      if (this.lsns[i] <= through) {
        const list = out.get(this.fileIds[i]);
        if (list) list.push(this.positions[i]);
        else out.set(this.fileIds[i], [this.positions[i]]);
      } else {
        keep.add(this.lsns[i], this.fileIds[i], this.positions[i]);
      }
    }
    this.lsns = keep.lsns;
    this.fileIds = keep.fileIds;
    this.positions = keep.positions;
    return out;
  }

  /** Rewrites entries of compacted files to their new location (or drops them). */
  remap(map: (fileId: number, pos: number) => [number, number] | undefined): void {
    const keep = new PendingDeletes();
    for (let i = 0; i < this.lsns.length; i++) {
      const to = map(this.fileIds[i], this.positions[i]);
      if (to) keep.add(this.lsns[i], to[0], to[1]);
    }
    this.lsns = keep.lsns;
    this.fileIds = keep.fileIds;
    this.positions = keep.positions;
  }
}
