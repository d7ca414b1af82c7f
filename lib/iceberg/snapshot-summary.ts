/**
 * Snapshot summaries (spec Appendix F, "Optional Snapshot Summary Fields"): what a commit
 * changed and the table totals after it. Totals carry forward from the parent's summary, so a
 * commit never walks the whole table to fill them in.
 */
import type { SnapshotJson } from './table-metadata.ts';

export type Operation = 'append' | 'overwrite' | 'replace' | 'delete';

export interface Totals {
  records: number;
  dataFiles: number;
  deleteFiles: number;
  positionDeletes: number;
  filesSize: number;
}

export interface CommitChanges {
  addedDataFiles: number;
  deletedDataFiles: number;
  addedRecords: number;
  deletedRecords: number;
  addedDeleteFiles: number;
  removedDeleteFiles: number;
  addedPositionDeletes: number;
  removedPositionDeletes: number;
  addedFilesSize: number;
  removedFilesSize: number;
  manifestsCreated: number;
  manifestsKept: number;
  manifestsReplaced: number;
}

const TOTAL_KEYS: Record<keyof Totals, string> = {
  records: 'total-records',
  dataFiles: 'total-data-files',
  deleteFiles: 'total-delete-files',
  positionDeletes: 'total-position-deletes',
  filesSize: 'total-files-size',
};

/** The totals a snapshot's summary records, or undefined if any is missing. */
export function totalsOf(s: SnapshotJson): Totals | undefined {
  const out: Partial<Totals> = {};
  for (const [k, key] of Object.entries(TOTAL_KEYS) as [keyof Totals, string][]) {
    const v = s.summary[key];
    if (v === undefined || !/^\d+$/.test(v)) return undefined;
    out[k] = Number(v);
  }
  return out as Totals;
}

export function totalsAfter(before: Totals, c: CommitChanges): Totals {
  return {
    records: before.records + c.addedRecords - c.deletedRecords,
    dataFiles: before.dataFiles + c.addedDataFiles - c.deletedDataFiles,
    deleteFiles: before.deleteFiles + c.addedDeleteFiles - c.removedDeleteFiles,
    positionDeletes: before.positionDeletes + c.addedPositionDeletes - c.removedPositionDeletes,
    filesSize: before.filesSize + c.addedFilesSize - c.removedFilesSize,
  };
}

/** The operation a commit is, when the caller does not say. */
export function defaultOperation(c: CommitChanges, deletesChanged: boolean): Operation {
  const removes = c.deletedDataFiles > 0;
  if (removes && c.addedDataFiles > 0 && !deletesChanged) return 'replace';
  if (removes || deletesChanged) return c.addedDataFiles > 0 ? 'overwrite' : 'delete';
  return 'append';
}

/**
 * The summary map: the caller's properties first, then the standard ones (which win).
 * Deletion vectors are also counted as `added-dvs`/`removed-dvs` (v3), position delete files as
 * `added-position-delete-files`/`removed-position-delete-files` (v2).
 */
export function buildSummary(
  operation: Operation,
  c: CommitChanges,
  totals: Totals,
  formatVersion: 2 | 3,
  extra: Record<string, string>,
): Record<string, string> {
  const kind = formatVersion >= 3 ? 'dvs' : 'position-delete-files';
  return {
    ...extra,
    operation,
    'added-data-files': String(c.addedDataFiles),
    'deleted-data-files': String(c.deletedDataFiles),
    'added-records': String(c.addedRecords),
    'deleted-records': String(c.deletedRecords),
    'added-delete-files': String(c.addedDeleteFiles),
    [`added-${kind}`]: String(c.addedDeleteFiles),
    'removed-delete-files': String(c.removedDeleteFiles),
    [`removed-${kind}`]: String(c.removedDeleteFiles),
    'added-position-deletes': String(c.addedPositionDeletes),
    'removed-position-deletes': String(c.removedPositionDeletes),
    'added-files-size': String(c.addedFilesSize),
    'removed-files-size': String(c.removedFilesSize),
    [TOTAL_KEYS.records]: String(totals.records),
    [TOTAL_KEYS.dataFiles]: String(totals.dataFiles),
    [TOTAL_KEYS.deleteFiles]: String(totals.deleteFiles),
    [TOTAL_KEYS.positionDeletes]: String(totals.positionDeletes),
    'total-equality-deletes': '0',
    [TOTAL_KEYS.filesSize]: String(totals.filesSize),
    'manifests-created': String(c.manifestsCreated),
    'manifests-kept': String(c.manifestsKept),
    'manifests-replaced': String(c.manifestsReplaced),
  };
}
