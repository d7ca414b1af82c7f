/** Lambda entry point: the flush routes of the public API (only these are in its bundle). */
import { createApiHandler } from '../api.ts';
import { awsServices } from '../aws-services.ts';
import { routes as flush } from '../groups/flush.ts';

export const handler = createApiHandler(awsServices(), [flush]);
