/** Lambda entry point: the read routes of the public API (only these are in its bundle). */
import { createApiHandler } from '../api.ts';
import { awsServices } from '../aws-services.ts';
import { routes as read } from '../groups/read.ts';

export const handler = createApiHandler(awsServices(), [read]);
