/** Lambda entry point: the tables routes of the public API (only these are in its bundle). */
import { createApiHandler } from '../api.ts';
import { awsServices } from '../aws-services.ts';
import { routes as catalog } from '../groups/catalog.ts';
import { routes as health } from '../groups/health.ts';
import { routes as tables } from '../groups/tables.ts';
import { icebergTableConfigFor } from '../vended-table-config.ts';

export const handler = createApiHandler(awsServices(process.env, icebergTableConfigFor), [
  health,
  tables,
  catalog,
]);
