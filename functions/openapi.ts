/**
 * The OpenAPI 3.1 document of the public API, served at `GET /openapi.json` and kept in the
 * repository as docs/openapi.json (test/openapi.test.ts holds both to the routes in api.ts).
 * The Iceberg REST catalog under `/iceberg/v1` follows Apache Iceberg's own OpenAPI document;
 * its paths are listed here with a pointer to it.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonBody = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const table = {
  name: 'name',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: '`name` or `namespace.name`',
};
const minLsn = {
  name: 'minLsn',
  in: 'query',
  schema: { type: 'string' },
  description: 'Wait (up to MOONLINK_MAX_WAIT_MS) until a snapshot covers this LSN',
};
const errors = {
  '400': { description: 'Bad request (names the problem)', ...jsonBody(ref('Error')) },
  '404': { description: 'No such table', ...jsonBody(ref('Error')) },
  '503': { description: 'Unavailable for now (Retry-After)', ...jsonBody(ref('Error')) },
};
const ok = (description: string, schema: unknown) => ({
  '200': { description, ...jsonBody(schema) },
  ...errors,
});
const icebergOp = (summary: string) => ({
  summary,
  description:
    'Apache Iceberg REST catalog; see open-api/rest-catalog-open-api.yaml in apache/iceberg and docs/catalogs.md',
  tags: ['iceberg'],
  responses: { default: { description: 'As the Iceberg REST catalog specification defines' } },
});
const ns = { name: 'namespace', in: 'path', required: true, schema: { type: 'string' } };
const tbl = { name: 'table', in: 'path', required: true, schema: { type: 'string' } };

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Moonlink Serverless',
    version: '0.1.0',
    description:
      'Stream inserts, upserts and deletes into Apache Iceberg tables; read them fresh. Embedded (`npm start`), local AWS emulation (`npm run local`) and AWS (SigV4, service execute-api) serve the same API.',
  },
  servers: [{ url: 'http://127.0.0.1:8080' }],
  paths: {
    '/openapi.json': {
      get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } },
    },
    '/health': {
      get: {
        summary: 'Ready: every table open and undamaged, the log writable',
        responses: {
          '200': { description: 'ready', ...jsonBody(ref('Health')) },
          '503': { description: 'not ready, with the problems', ...jsonBody(ref('Health')) },
        },
      },
    },
    '/health/live': {
      get: { summary: 'The process answers', responses: { '200': { description: 'alive' } } },
    },
    '/tables': {
      post: {
        summary: 'Create a table',
        requestBody: { required: true, ...jsonBody(ref('CreateTable')) },
        responses: {
          '201': { description: 'created', ...jsonBody(ref('Table')) },
          ...errors,
          '409': { description: 'exists', ...jsonBody(ref('Error')) },
        },
      },
      get: {
        summary: 'List tables',
        responses: ok('tables', {
          type: 'object',
          properties: { tables: { type: 'array', items: ref('Table') } },
        }),
      },
    },
    '/tables/{name}': {
      get: { summary: 'Describe a table', parameters: [table], responses: ok('the table', ref('Table')) },
      delete: {
        summary: 'Drop a table (data, log, catalog entries)',
        parameters: [table],
        responses: { '204': { description: 'dropped' }, ...errors },
      },
    },
    '/tables/{name}/rows': {
      post: {
        summary: 'Write one transaction',
        parameters: [
          table,
          { name: 'wait', in: 'query', schema: { enum: ['durable', 'visible'] } },
          {
            name: 'op',
            in: 'query',
            schema: { enum: ['insert', 'upsert', 'delete'] },
            description: 'NDJSON bodies of bare rows',
          },
          {
            name: 'Idempotency-Key',
            in: 'header',
            schema: { type: 'string', pattern: '^[!-~]{1,255}$' },
            description:
              'A retry with the same key answers the original result and applies nothing (422 if the request differs)',
          },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: ref('Transaction') },
            'application/x-ndjson': {
              schema: { type: 'string', description: 'One {"op","row"} per line, or bare rows with ?op=' },
            },
            'application/vnd.apache.arrow.stream': {
              schema: {
                type: 'string',
                format: 'binary',
                description: "An Arrow IPC stream: the table's columns by name and an optional _op column",
              },
            },
          },
        },
        responses: ok('durable', ref('WriteResult')),
      },
      get: {
        summary: 'Read rows (deletes applied), paged',
        parameters: [
          table,
          minLsn,
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1 } },
          { name: 'columns', in: 'query', schema: { type: 'string' }, description: 'comma-separated' },
          {
            name: 'filter',
            in: 'query',
            schema: { type: 'string' },
            description:
              'Comparisons joined by commas, all must hold: column op value, ops = != < <= > >=, values bare (42, true, 2024-05-01T00:00:00Z) or a "JSON string". Files whose partition cannot match are skipped unread.',
          },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: ok('rows', {
          type: 'object',
          properties: {
            lsn: ref('Lsn'),
            rows: { type: 'array', items: { type: 'object' } },
            filesScanned: { type: 'integer', description: 'files read for this page' },
            filesSkipped: { type: 'integer', description: 'files skipped by partition for this page' },
            nextCursor: { type: 'string' },
          },
        }),
      },
    },
    '/tables/{name}/snapshot': {
      get: {
        summary: 'A leased snapshot: its data files and deletion vectors',
        parameters: [table, minLsn],
        responses: ok('snapshot', ref('Snapshot')),
      },
    },
    '/tables/{name}/rename': {
      post: {
        summary: 'Rename a table: its data, files and history stay; the old name is free at once',
        description:
          'Tables fed by a Postgres source cannot be renamed (409 rename_refused). Writes to the old name during the rename are refused with 503 table_renaming; on AWS the rename takes about 6 s while writes made with a cached definition drain.',
        parameters: [table],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['name'],
                properties: { name: { type: 'string', description: 'the new name, `name` or `ns.name`' } },
              },
            },
          },
        },
        responses: ok('renamed', {
          type: 'object',
          properties: {
            name: { type: 'string' },
            renamedFrom: { type: 'string' },
            metadataLocation: { type: ['string', 'null'] },
          },
        }),
      },
    },
    '/tables/{name}/schema': {
      post: {
        summary: 'Change the schema: add, drop, rename, widen columns, make them nullable (all or nothing)',
        description:
          'The change is a record in the log, ordered with the writes: writes after it are checked against the new schema, rows written before read null in an added column (or its initialDefault, v3 tables). Iceberg gets a new schema id; field ids are never reused. Nested struct fields by dotted path ("address.zip"). A bad change is 400 invalid_schema_change with the index of the first bad one, and nothing is applied. Tables fed by a Postgres source follow its schema (409 schema_change_refused).',
        parameters: [table],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['changes'],
                properties: {
                  changes: {
                    type: 'array',
                    minItems: 1,
                    maxItems: 100,
                    items: {
                      type: 'object',
                      required: ['action'],
                      properties: {
                        action: {
                          enum: [
                            'add-column',
                            'drop-column',
                            'rename-column',
                            'widen-column',
                            'make-nullable',
                            'set-partitioning',
                          ],
                          description:
                            'set-partitioning (at most one per request, with column changes or alone): a new partition spec; new files use it, old files keep theirs until compaction rewrites them',
                        },
                        partitionBy: {
                          type: 'array',
                          items: ref('PartitionField'),
                          description: 'set-partitioning: the new spec ([] for unpartitioned)',
                        },
                        name: { type: 'string', description: 'the column, or a struct field by dotted path' },
                        type: { type: 'string', description: 'add-column, widen-column: a type name' },
                        newName: { type: 'string', description: 'rename-column' },
                        nullable: { type: 'boolean', description: 'add-column: must be true (the default)' },
                        initialDefault: {
                          type: ['string', 'number', 'boolean'],
                          description: 'add-column on format version 3 tables: what older rows read as',
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
        responses: ok('the new schema', {
          type: 'object',
          properties: {
            schemaId: { type: 'integer' },
            columns: { type: 'array', items: { type: 'object' } },
            lsn: { type: ['integer', 'string'] },
          },
        }),
      },
    },
    '/tables/{name}/source/resync': {
      post: {
        summary: 'Copy a source-fed table again from its source, as it is now (its columns included)',
        description:
          'The way out of a Postgres change the table could not follow (source.state "error"): a new slot, the table emptied and copied from its snapshot, then streaming from there. 202; follow it in GET /tables/{name} (source.state).',
        parameters: [table],
        responses: { '202': { description: 'copying' } },
      },
    },
    '/tables/{name}/imports': {
      post: {
        summary: 'Import files from object storage as one transaction (run by the writer)',
        description:
          'Reads every file the URI names (a folder ending in /, a glob, or one file; s3:// or, where MOONLINK_IMPORT_ROOTS allows, file://) as one streamed transaction: nothing is visible until it commits, a failure applies nothing, a restart runs it again. Follow it at the Location.',
        parameters: [table],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['uri'],
                properties: {
                  uri: {
                    type: 'string',
                    examples: ['s3://landing/orders/2026-12-01/', 'file:///data/*.parquet'],
                  },
                  format: {
                    enum: ['parquet', 'arrow', 'csv', 'ndjson'],
                    description: 'default: from each file name',
                  },
                  op: { enum: ['insert', 'upsert'], default: 'insert' },
                },
              },
            },
          },
        },
        responses: {
          '202': { description: 'queued', ...jsonBody(ref('Import')) },
          '409': {
            description: 'The table cannot take imports (a source feeds it)',
            ...jsonBody(ref('Error')),
          },
          ...errors,
        },
      },
    },
    '/tables/{name}/imports/{id}': {
      get: {
        summary: 'An import: its state and progress',
        parameters: [table, { name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: ok('the import', ref('Import')),
      },
    },
    '/tables/{name}/flush': {
      post: {
        summary: 'Make everything acknowledged Parquet and an Iceberg commit',
        parameters: [table],
        responses: ok('committed', {
          type: 'object',
          properties: { lsn: ref('Lsn'), metadataLocation: { type: ['string', 'null'] } },
        }),
      },
    },
    '/leases/{id}': {
      delete: {
        summary: 'Release a snapshot lease early',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '204': { description: 'released' }, ...errors },
      },
    },
    '/files/{proxy}': {
      get: {
        summary: 'Embedded only: the data folder over HTTP (Range supported)',
        parameters: [{ name: 'proxy', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the object' },
          '206': { description: 'a range' },
          '404': { description: 'no such object' },
        },
      },
    },
    '/iceberg/v1/config': { get: icebergOp('Catalog configuration') },
    '/iceberg/v1/namespaces': { get: icebergOp('List namespaces'), post: icebergOp('Create a namespace') },
    '/iceberg/v1/namespaces/{namespace}': {
      parameters: [ns],
      get: icebergOp('Load a namespace'),
      head: icebergOp('Namespace exists'),
      delete: icebergOp('Drop an empty namespace'),
    },
    '/iceberg/v1/namespaces/{namespace}/properties': {
      parameters: [ns],
      post: icebergOp('Set and remove namespace properties'),
    },
    '/iceberg/v1/namespaces/{namespace}/tables': {
      parameters: [ns],
      get: icebergOp('List tables'),
      post: icebergOp('Create a table'),
    },
    '/iceberg/v1/namespaces/{namespace}/tables/{table}': {
      parameters: [ns, tbl],
      get: icebergOp('Load a table'),
      head: icebergOp('Table exists'),
      post: icebergOp('Commit (table properties only)'),
      delete: icebergOp('Drop a table'),
    },
    '/iceberg/v1/namespaces/{namespace}/tables/{table}/metrics': {
      parameters: [ns, tbl],
      post: icebergOp('Metrics report (accepted, not kept)'),
    },
    '/iceberg/v1/tables/rename': { post: icebergOp('Rename a table (its objects stay where they are)') },
  },
  components: {
    schemas: {
      Import: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          table: { type: 'string' },
          uri: { type: 'string' },
          format: { type: 'string' },
          op: { enum: ['insert', 'upsert'] },
          state: { enum: ['queued', 'running', 'committing', 'committed', 'failed'] },
          attempt: { type: 'integer', description: 'runs so far (a restart runs it again)' },
          files: { type: 'integer' },
          filesDone: { type: 'integer' },
          rows: { type: 'integer' },
          bytes: { type: 'integer' },
          totalBytes: { type: 'integer' },
          current: { type: 'string', description: 'the file being read' },
          error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
          lsn: { type: 'string', description: 'the commit LSN, once committed' },
          metadataLocation: { type: 'string' },
          createdAt: { type: 'string' },
          updatedAt: { type: 'string' },
          finishedAt: { type: 'string' },
        },
      },
      Lsn: {
        oneOf: [{ type: 'integer' }, { type: 'string', pattern: '^[0-9]+$' }],
        description: 'Log sequence number (a string beyond 2^53)',
      },
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' }, index: { type: 'integer' } },
          },
        },
      },
      Health: {
        type: 'object',
        properties: {
          status: { enum: ['ok', 'unavailable'] },
          problems: { type: 'array', items: { type: 'object' } },
        },
      },
      Column: {
        type: 'object',
        required: ['name', 'type'],
        properties: {
          name: { type: 'string' },
          type: { type: 'string', description: 'Iceberg type name, e.g. long, decimal(10,2), list<string>' },
          nullable: { type: 'boolean' },
        },
      },
      CreateTable: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string' },
          columns: { type: 'array', items: ref('Column') },
          primaryKey: { type: 'array', items: { type: 'string' } },
          formatVersion: { enum: [2, 3] },
          source: {
            type: 'object',
            description:
              'e.g. {"postgres": {"connection": "env:PG_SHOP", "table": "public.orders"}}; "connection" is env:NAME, a Secrets Manager secret ARN or a connection string, or give "secretArn" instead',
          },
          schemaEvolution: {
            enum: ['none', 'add-columns'],
            description:
              'add-columns: a JSON or NDJSON write with a new top-level field adds a nullable column for it (type inferred from the value) before it is checked',
          },
          partitionBy: { type: 'array', items: ref('PartitionField') },
          sortBy: { type: 'array', items: ref('SortField') },
        },
        additionalProperties: false,
      },
      PartitionField: {
        type: 'object',
        required: ['column'],
        additionalProperties: false,
        properties: {
          column: { type: 'string', description: 'a column, or a struct field by dotted path' },
          transform: {
            type: 'string',
            description: 'identity (default), year, month, day, hour, bucket[N], truncate[W], void',
          },
          name: { type: 'string', description: "the partition field's name (default e.g. placed_at_day)" },
        },
      },
      SortField: {
        type: 'object',
        required: ['column'],
        additionalProperties: false,
        properties: {
          column: { type: 'string' },
          direction: { enum: ['asc', 'desc'] },
          nulls: { enum: ['first', 'last'], description: 'default first for asc, last for desc' },
        },
      },
      Table: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          columns: { type: 'array', items: ref('Column') },
          schemaId: {
            type: 'integer',
            description: 'the current schema id (0 until the first schema change)',
          },
          primaryKey: { type: 'array', items: { type: 'string' } },
          formatVersion: { enum: [2, 3] },
          partitionBy: { type: 'array', items: ref('PartitionField') },
          partitionSpecId: { type: 'integer' },
          sortBy: { type: 'array', items: ref('SortField') },
          metadataLocation: { type: ['string', 'null'] },
          lsn: ref('Lsn'),
          committedLsn: ref('Lsn'),
          state: { enum: ['open', 'recovering', 'damaged', 'failed'] },
          catalogs: {
            type: 'object',
            description:
              'Outside catalogs (Glue on AWS): state, syncedLocation, syncedAt, lagSeconds, lastError',
          },
        },
      },
      Transaction: {
        type: 'object',
        required: ['ops'],
        properties: {
          ops: {
            type: 'array',
            items: {
              type: 'object',
              required: ['op', 'row'],
              properties: { op: { enum: ['insert', 'upsert', 'delete'] }, row: { type: 'object' } },
            },
          },
        },
      },
      WriteResult: { type: 'object', properties: { lsn: ref('Lsn'), count: { type: 'integer' } } },
      Snapshot: {
        type: 'object',
        properties: {
          lsn: ref('Lsn'),
          leaseId: { type: 'string' },
          expiresAt: { type: 'string', format: 'date-time' },
          dataFiles: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                path: { type: 'string' },
                url: { type: 'string' },
                kind: { type: 'string' },
                rowCount: { type: 'integer' },
                sizeBytes: { type: 'integer' },
                specId: { type: 'integer', description: 'partitioned data files: their partition spec' },
                partition: {
                  type: 'object',
                  description: 'partitioned data files: partition field name → Iceberg partition value',
                },
                deletes: { type: 'object' },
              },
            },
          },
        },
      },
    },
  },
} as const;
