/** Lambda entry point: the ingest routes of the public API (only these are in its bundle). */
import { createApiHandler } from '../api.ts';
import { awsServices } from '../aws-services.ts';
import { routes as ingest } from '../groups/ingest.ts';

export const handler = createApiHandler(awsServices(), [ingest]);
