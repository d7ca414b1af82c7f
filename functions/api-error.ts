/**
 * API errors: every error leaves as `{"error": {"code", "message", ...}}` with a 4xx/5xx status.
 * Domain errors from lib/ are mapped here, in one place.
 */

import {
  ConflictError,
  FencedError,
  NamespaceExistsError,
  NoSuchTableError,
  RenameRefusedError,
  TableDamagedError,
  TableExistsError,
  TableNotReadyError,
  TableRenamingError,
} from '../lib/catalog/catalog.ts';
import { LogDamagedError } from '../lib/log/durable-log.ts';
import { InvalidLsnError } from '../lib/lsn.ts';
import { NamespaceNotEmptyError, NameTakenError, NoSuchNamespaceError } from '../lib/namespace-admin.ts';
import {
  InferenceError,
  InvalidTransactionError,
  PropertyChangeError,
  SchemaChangeError,
  SchemaChangeRefusedError,
  SchemaError,
} from '../lib/schema/errors.ts';
import { JsonSyntaxError } from '../lib/schema/exact-json.ts';
import { TableNameError } from '../lib/schema/table-name.ts';
import { ImportRefusedError, ImportSourceError } from '../lib/sources/import/import-errors.ts';
import { ConnectionSecretError } from '../lib/sources/postgres/connection-secret.ts';
import { DataFileMissingError, NotFoundError } from '../lib/store/object-store.ts';
import {
  classifyIoError,
  errnoOf,
  StorageFullError,
  StorageIoError,
  TooManyOpenFilesError,
} from '../lib/util/io-errors.ts';
import { BackpressureError } from '../lib/util/memory-budget.ts';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} not found`);
export const badRequest = (message: string, details?: Record<string, unknown>): ApiError =>
  new ApiError(400, 'invalid_request', message, details);

/** Maps any thrown value to an ApiError (unknown errors become a 500 without internals). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  // A raw system error (ENOSPC, EMFILE, EIO …) from any store: classified, not an opaque 500.
  if (errnoOf(e)) return toApiError(classifyIoError(e, 'storage'));
  if (e instanceof JsonSyntaxError) return new ApiError(400, 'malformed_json', e.message);
  if (e instanceof InvalidTransactionError) {
    return new ApiError(400, 'invalid_request', e.message, e.index === undefined ? {} : { index: e.index });
  }
  if (e instanceof SchemaError) return new ApiError(400, 'invalid_schema', e.message);
  if (e instanceof SchemaChangeError) return new ApiError(400, e.code, e.message, { index: e.index });
  if (e instanceof SchemaChangeRefusedError) return new ApiError(409, e.code, e.message);
  if (e instanceof InferenceError) return new ApiError(400, e.code, e.message);
  if (e instanceof TableExistsError) return new ApiError(409, 'table_exists', e.message);
  if (e instanceof ConnectionSecretError) return new ApiError(400, 'invalid_source', e.message);
  if (e instanceof TableNameError || e instanceof PropertyChangeError)
    return new ApiError(400, e.code, e.message);
  if (e instanceof NoSuchNamespaceError) return new ApiError(404, e.code, e.message);
  if (e instanceof ImportSourceError) return new ApiError(400, e.code, e.message);
  if (e instanceof ImportRefusedError) return new ApiError(409, e.code, e.message);
  if (e instanceof NamespaceExistsError || e instanceof NameTakenError)
    return new ApiError(409, e.code, e.message);
  if (e instanceof NamespaceNotEmptyError)
    return new ApiError(409, e.code, e.message, { tables: e.tables.slice(0, 100) });
  if (e instanceof FencedError)
    return new ApiError(
      503,
      'writer_moved',
      'the table is moving to another writer; retry',
      {},
      { 'Retry-After': '1' },
    );
  if (e instanceof TableNotReadyError)
    return new ApiError(503, 'table_not_ready', e.message, {}, { 'Retry-After': '1' });
  if (e instanceof ConflictError) return new ApiError(409, 'conflict', e.message);
  // Local storage and damage: each says what is wrong and whether a retry can help.
  if (e instanceof StorageFullError) return new ApiError(507, e.code, e.message, {}, { 'Retry-After': '5' });
  if (e instanceof TooManyOpenFilesError || e instanceof StorageIoError)
    return new ApiError(503, e.code, e.message, {}, { 'Retry-After': '5' });
  if (e instanceof LogDamagedError)
    return new ApiError(503, e.code, e.message, { damage: e.damage }, { 'Retry-After': '60' });
  if (e instanceof BackpressureError)
    return new ApiError(
      503,
      e.code,
      e.message,
      { usedBytes: e.usedBytes, budgetBytes: e.budgetBytes },
      { 'Retry-After': '1' },
    );
  if (e instanceof TableDamagedError) return new ApiError(503, e.code, e.message, { damage: e.details });
  if (e instanceof TableRenamingError)
    return new ApiError(503, e.code, e.message, { renamedTo: e.to }, { 'Retry-After': '1' });
  if (e instanceof RenameRefusedError) return new ApiError(409, e.code, e.message);
  if (e instanceof DataFileMissingError)
    return new ApiError(503, e.code, e.message, { object: e.key }, { 'Retry-After': '60' });
  if (e instanceof NotFoundError)
    return new ApiError(
      503,
      'data_file_missing',
      `object ${e.key}, which the table refers to, is missing from the object store`,
      { object: e.key },
      { 'Retry-After': '60' },
    );
  if (e instanceof InvalidLsnError) return new ApiError(400, 'invalid_request', e.message);
  // Dropped while the request was under way (the route found it moments before).
  if (e instanceof NoSuchTableError) return new ApiError(404, 'table_not_found', e.message);
  const status = (e as { statusCode?: number }).statusCode;
  // middy's JSON body parser answers 415 for a body that is not JSON; ours says 400 like every route.
  const cause = (e as { cause?: { package?: string; message?: string } }).cause;
  if (cause?.package === '@middy/http-json-body-parser' && /JSON/.test((e as Error).message))
    return new ApiError(
      400,
      'malformed_json',
      `malformed JSON body${cause.message ? `: ${cause.message}` : ''}`,
    );
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = (e as Error).message || 'request failed';
    return new ApiError(
      status,
      status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : 'invalid_request',
      message,
    );
  }
  return new ApiError(500, 'internal', 'internal error');
}

export function errorBody(e: ApiError): string {
  return JSON.stringify({ error: { code: e.code, message: e.message, ...e.details } });
}

/** Our error codes as the Iceberg REST spec's exception types. */
const ICEBERG_TYPES: Record<string, string> = {
  table_not_found: 'NoSuchTableException',
  namespace_not_found: 'NoSuchNamespaceException',
  table_exists: 'AlreadyExistsException',
  namespace_exists: 'AlreadyExistsException',
  name_taken: 'AlreadyExistsException',
  namespace_not_empty: 'NamespaceNotEmptyException',
  commit_failed: 'CommitFailedException',
  unsupported: 'UnsupportedOperationException',
  not_implemented: 'NotImplementedException',
  unauthorized: 'NotAuthorizedException',
  forbidden: 'ForbiddenException',
  duplicate_property: 'UnprocessableEntityException',
  rename_refused: 'UnsupportedOperationException',
};

/** The Iceberg REST catalog's `ErrorModel`: `{"error": {"message", "type", "code"}}`, code = status. */
export function icebergErrorBody(e: ApiError): string {
  const type =
    ICEBERG_TYPES[e.code] ??
    (e.statusCode >= 500
      ? e.statusCode === 503
        ? 'ServiceUnavailableException'
        : 'InternalServerError'
      : e.statusCode === 404
        ? 'NotFoundException'
        : 'BadRequestException');
  return JSON.stringify({ error: { message: e.message, type, code: e.statusCode } });
}
