/**
 * Errors of requests that do not fit the schema, apart from the code that finds them (the API
 * maps them without loading the decoders, zod or Arrow: each Lambda bundle stays small).
 */

/** A table definition (or a change of it) that cannot be (400 `invalid_schema`). */
export class SchemaError extends Error {
  readonly code = 'invalid_schema';
}

/** A transaction that does not fit its table (400 `invalid_request`); `index` is the operation. */
export class InvalidTransactionError extends Error {
  readonly code = 'invalid_request';
  constructor(
    message: string,
    readonly index?: number,
  ) {
    super(message);
  }
}

/** Table properties a client may not change, or a change that contradicts itself (400). */
export class PropertyChangeError extends Error {
  readonly code = 'invalid_properties';
}

/** A schema change that cannot be applied (400); `index` is the first bad change of the request. */
export class SchemaChangeError extends Error {
  readonly code = 'invalid_schema_change';
  constructor(
    message: string,
    readonly index: number,
  ) {
    super(`changes[${index}]: ${message}`);
  }
}

/** A schema change refused for the table as a whole (409: its source owns its shape). */
export class SchemaChangeRefusedError extends Error {
  readonly code = 'schema_change_refused';
}

/** A record's new field whose column cannot be added (its type cannot be told; 400). */
export class InferenceError extends Error {
  readonly code = 'invalid_request';
}
