/** Lambda entry point: the tables routes of the public API (see functions/api.ts ROUTES). */
import { createApiHandler } from '../api.ts';
import { awsServices } from '../aws-services.ts';

export const handler = createApiHandler(awsServices(), ['health', 'tables', 'catalog']);
