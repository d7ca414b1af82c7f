/**
 * Local-disk errors classified once: a full disk, too many open files, and other I/O failures
 * each become an error with a stable `code` that the API answers with its own status and a
 * Retry-After, instead of an opaque 500.
 */

/** The disk (or the quota) is full: nothing was acknowledged; retry once space is freed. */
export class StorageFullError extends Error {
  readonly code = 'storage_full';
  constructor(
    readonly where: string,
    options?: { cause?: unknown },
  ) {
    super(
      `no space left on the device holding ${where}; nothing was acknowledged — free space and retry`,
      options,
    );
  }
}

/** The process reached its open-file limit (`ulimit -n`). */
export class TooManyOpenFilesError extends Error {
  readonly code = 'too_many_open_files';
  constructor(
    readonly where: string,
    options?: { cause?: unknown },
  ) {
    super(
      `the process has too many open files (ulimit -n) while opening ${where}; raise the limit or lower MOONLINK_LOG_MAX_OPEN_FILES`,
      options,
    );
  }
}

/** Any other failed read, write or sync of local storage (EIO, EROFS, a short write that made no progress). */
export class StorageIoError extends Error {
  readonly code = 'storage_error';
  constructor(
    readonly where: string,
    readonly errno: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`storage error on ${where}${errno ? ` (${errno})` : ''}: ${message}`, options);
  }
}

export type LocalIoError = StorageFullError | TooManyOpenFilesError | StorageIoError;

const FULL = new Set(['ENOSPC', 'EDQUOT']);
const DESCRIPTORS = new Set(['EMFILE', 'ENFILE']);

/** The errno of a Node file-system error, if it has one. */
export function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Wraps a file-system error in its class (already classified errors pass through). */
export function classifyIoError(e: unknown, where: string): Error {
  if (e instanceof StorageFullError || e instanceof TooManyOpenFilesError || e instanceof StorageIoError)
    return e;
  const errno = errnoOf(e);
  if (errno && FULL.has(errno)) return new StorageFullError(where, { cause: e });
  if (errno && DESCRIPTORS.has(errno)) return new TooManyOpenFilesError(where, { cause: e });
  return new StorageIoError(where, errno, (e as Error)?.message ?? String(e), { cause: e });
}
